"""JwksCache: unknown kid refresh (single-flight), cooldown, last good key set."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from fedfakes import FakeBank, FakeClock, new_key, public, settings_for

from federation.jwks import JwksCache, JwksError
from federation.metadata import ProviderMetadata


def cache(
    bank: FakeBank, session: aiohttp.ClientSession, clock: FakeClock | None = None, **kw: object
) -> JwksCache:
    clock = clock or FakeClock()
    settings = settings_for(bank.issuer, jwks_cooldown=5.0)
    meta = ProviderMetadata(settings, session, clock=clock)
    return JwksCache(meta, session, clock=clock, **kw)  # type: ignore[arg-type]


async def test_key_by_kid(fake_bank: FakeBank, session: aiohttp.ClientSession):
    jwks = cache(fake_bank, session)
    key = await jwks.get_key("k1", "ES256")
    assert key.public_numbers() == fake_bank.keys[0].get_op_key("verify").public_numbers()
    await jwks.get_key("k1", "ES256")
    assert fake_bank.hits["/jwks"] == 1


async def test_unknown_kid_concurrent_lookups_fetch_once(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    clock = FakeClock()
    jwks = cache(fake_bank, session, clock)
    await jwks.get_key("k1", "ES256")
    assert fake_bank.hits["/jwks"] == 1
    clock.now += 10  # past the cooldown
    fake_bank.keys.append(new_key(kid="k2"))
    fake_bank.delays["/jwks"] = 0.1
    keys = await asyncio.gather(*(jwks.get_key("k2", "ES256") for _ in range(10)))
    assert fake_bank.hits["/jwks"] == 2  # ten lookups, one refresh
    assert all(k.public_numbers() == keys[0].public_numbers() for k in keys)


async def test_unknown_kid_refreshes_at_most_once_per_cooldown(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    clock = FakeClock()
    jwks = cache(fake_bank, session, clock)
    await jwks.get_key("k1", "ES256")
    clock.now += 10
    with pytest.raises(JwksError, match="no key for kid 'nope'"):
        await jwks.get_key("nope", "ES256")
    assert fake_bank.hits["/jwks"] == 2
    clock.now += 4.9  # inside the 5 s cooldown: no fetch, even for a new kid
    fake_bank.keys.append(new_key(kid="k3"))
    with pytest.raises(JwksError):
        await jwks.get_key("k3", "ES256")
    assert fake_bank.hits["/jwks"] == 2
    clock.now += 0.2
    assert await jwks.get_key("k3", "ES256") is not None
    assert fake_bank.hits["/jwks"] == 3


async def test_failed_fetch_keeps_last_good_set(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    clock = FakeClock()
    jwks = cache(fake_bank, session, clock)
    await jwks.get_key("k1", "ES256")
    clock.now += 10
    fake_bank.jwks_status = 500
    with pytest.raises(JwksError, match="HTTP 500"):
        await jwks.get_key("rotated", "ES256")
    assert fake_bank.hits["/jwks"] == 2
    assert jwks.error is not None
    assert await jwks.get_key("k1", "ES256") is not None  # still there


async def test_timeout_keeps_last_good_set(fake_bank: FakeBank, session: aiohttp.ClientSession):
    clock = FakeClock()
    jwks = cache(fake_bank, session, clock)
    await jwks.get_key("k1", "ES256")
    clock.now += 10
    fake_bank.delays["/jwks"] = 1.0
    with pytest.raises(JwksError, match="no answer within"):
        await jwks.get_key("rotated", "ES256")
    assert await jwks.get_key("k1", "ES256") is not None


async def test_empty_or_unusable_set_counts_as_failure(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    clock = FakeClock()
    jwks = cache(fake_bank, session, clock)
    await jwks.get_key("k1", "ES256")
    clock.now += 10
    enc = public(new_key(kid="enc"))
    enc["use"] = "enc"
    fake_bank.jwks_body = {"keys": [enc, {"kty": "oct", "kid": "hs", "k": "c2VjcmV0"}]}
    with pytest.raises(JwksError, match="no usable signature key"):
        await jwks.get_key("hs", "ES256")
    assert await jwks.get_key("k1", "ES256") is not None


async def test_max_age_refreshes_the_set(fake_bank: FakeBank, session: aiohttp.ClientSession):
    clock = FakeClock()
    jwks = cache(fake_bank, session, clock, max_age=60.0)
    await jwks.get_key("k1", "ES256")
    clock.now += 61
    fake_bank.keys = [new_key(kid="k9")]
    with pytest.raises(JwksError, match="no key for kid 'k1'"):
        await jwks.get_key("k1", "ES256")  # dropped by the bank, so dropped here
    assert fake_bank.hits["/jwks"] == 2


async def test_no_kid_needs_exactly_one_usable_key(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    fake_bank.keys = [new_key(kid="ec"), new_key("RSA", kid="rsa")]
    jwks = cache(fake_bank, session)
    assert await jwks.get_key(None, "ES256") is not None  # the only EC key
    assert await jwks.get_key(None, "RS256") is not None  # the only RSA key
    fake_bank.keys.append(new_key(kid="ec2"))
    jwks2 = cache(fake_bank, session)
    with pytest.raises(JwksError, match="no kid and 2 keys usable with ES256"):
        await jwks2.get_key(None, "ES256")


async def test_key_must_suit_the_alg(fake_bank: FakeBank, session: aiohttp.ClientSession):
    fake_bank.keys = [new_key(kid="p384", crv="P-384")]
    jwks = cache(fake_bank, session)
    with pytest.raises(JwksError, match="no key for kid 'p384' usable with ES256"):
        await jwks.get_key("p384", "ES256")
    assert await jwks.get_key("p384", "ES384") is not None
    with pytest.raises(JwksError, match="not an accepted signature algorithm"):
        await jwks.get_key("p384", "HS256")


async def test_jwk_alg_is_respected(fake_bank: FakeBank, session: aiohttp.ClientSession):
    rsa = new_key("RSA", kid="rsa")
    fake_bank.jwks_body = {"keys": [{**public(rsa), "alg": "PS256"}]}
    jwks = cache(fake_bank, session)
    assert await jwks.get_key("rsa", "PS256") is not None
    with pytest.raises(JwksError):
        await jwks.get_key("rsa", "RS256")
