"""validate_id_token: each OIDC Core §3.1.3.7 check, failing with its own detail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import jwt
import pytest
from fedfakes import CLIENT_ID, FakeBank, FakeClock, new_key, public, settings_for

from federation.idtoken import DESCRIPTION, validate_id_token
from federation.jwks import JwksCache
from federation.metadata import ProviderMetadata
from federation.protocol import BankError
from federation.settings import BankSettings

NONCE = "n-0"


async def validate(
    bank: FakeBank,
    session: aiohttp.ClientSession,
    token: str,
    *,
    settings: BankSettings | None = None,
    doc: dict[str, Any] | None = None,
    now: float | None = None,
    nonce: str | None = NONCE,
) -> dict[str, Any]:
    settings = settings or settings_for(bank.issuer)
    meta = ProviderMetadata(settings, session)
    jwks = JwksCache(meta, session, clock=FakeClock())
    return await validate_id_token(
        token,
        settings=settings,
        metadata_doc=doc if doc is not None else bank.doc(),
        jwks=jwks,
        nonce=nonce,
        now=now,
    )


async def refused(bank: FakeBank, session: aiohttp.ClientSession, token: str, **kw: Any) -> str:
    with pytest.raises(BankError) as info:
        await validate(bank, session, token, **kw)
    assert info.value.error == "server_error"
    assert info.value.description == DESCRIPTION
    assert token not in info.value.detail
    return info.value.detail


async def test_valid_token(fake_bank: FakeBank, session: aiohttp.ClientSession):
    claims = await validate(fake_bank, session, fake_bank.id_token(acr="loa:high"))
    assert claims["sub"] == "user-1"
    assert claims["acr"] == "loa:high"


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"iss": "https://evil.example"}, "id_token: iss does not match the bank's issuer"),
        ({"aud": "someone-else"}, "id_token: aud does not contain our client_id"),
        ({"aud": None}, "id_token: aud does not contain our client_id"),
        ({"aud": ["someone-else", "other"]}, "id_token: aud does not contain our client_id"),
        ({"aud": [CLIENT_ID, "other"]}, "id_token: several audiences and no azp"),
        ({"azp": "other"}, "id_token: azp is not our client_id"),
        ({"aud": [CLIENT_ID, "x"], "azp": "x"}, "id_token: azp is not our client_id"),
        ({"exp": int(time.time()) - 31}, "id_token: exp is in the past"),
        ({"exp": None}, "id_token: exp is missing or not a number"),
        ({"exp": "tomorrow"}, "id_token: exp is missing or not a number"),
        # RFC 8259 §6: "Infinity and NaN ... are not permitted" (Python's JSON takes them;
        # NaN compares false with everything, so it passed as an exp never reached)
        ({"exp": float("nan")}, "id_token: exp is missing or not a number"),
        ({"exp": float("inf")}, "id_token: exp is missing or not a number"),
        ({"exp": True}, "id_token: exp is missing or not a number"),
        ({"iat": float("nan")}, "id_token: iat is missing or not a number"),
        ({"nbf": float("nan")}, "id_token: nbf is missing or not a number"),
        ({"iat": None}, "id_token: iat is missing or not a number"),
        ({"iat": int(time.time()) + 60}, "id_token: iat is in the future"),
        ({"nbf": int(time.time()) + 60}, "id_token: nbf is in the future"),
        ({"nonce": "other"}, "id_token: nonce does not match the one sent"),
        ({"nonce": None}, "id_token: nonce does not match the one sent"),
        ({"sub": None}, "id_token: sub is missing"),
        ({"sub": ""}, "id_token: sub is missing"),
    ],
)
async def test_claim_checks(
    fake_bank: FakeBank, session: aiohttp.ClientSession, claims: dict[str, Any], detail: str
):
    assert await refused(fake_bank, session, fake_bank.id_token(**claims)) == detail


async def test_multiple_audiences_with_our_azp(fake_bank: FakeBank, session: aiohttp.ClientSession):
    token = fake_bank.id_token(aud=[CLIENT_ID, "other"], azp=CLIENT_ID)
    assert (await validate(fake_bank, session, token))["azp"] == CLIENT_ID


async def test_leeway_applies_to_exp_and_iat(fake_bank: FakeBank, session: aiohttp.ClientSession):
    now = time.time()
    token = fake_bank.id_token(exp=int(now) - 20, iat=int(now) + 20)
    assert await validate(fake_bank, session, token, now=now)  # leeway 30 s
    strict = settings_for(fake_bank.issuer, leeway=0)
    assert "exp is in the past" in await refused(
        fake_bank, session, token, settings=strict, now=now
    )


async def test_acr_must_be_one_requested(fake_bank: FakeBank, session: aiohttp.ClientSession):
    settings = settings_for(fake_bank.issuer, upstream_acr_values=("loa:high",))
    assert await validate(fake_bank, session, fake_bank.id_token(acr="loa:high"), settings=settings)
    assert await validate(fake_bank, session, fake_bank.id_token(), settings=settings)
    detail = await refused(fake_bank, session, fake_bank.id_token(acr="loa:low"), settings=settings)
    assert detail == "id_token: acr is not one of the requested upstream_acr_values"


async def test_alg_none_is_refused(fake_bank: FakeBank, session: aiohttp.ClientSession):
    now = int(time.time())
    claims = {
        "iss": fake_bank.issuer,
        "sub": "u",
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 60,
        "nonce": NONCE,
    }
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    doc = {**fake_bank.doc(), "id_token_signing_alg_values_supported": ["none", "ES256"]}
    assert await refused(fake_bank, session, token, doc=doc) == "id_token: alg 'none' is refused"


async def test_hmac_is_refused(fake_bank: FakeBank, session: aiohttp.ClientSession):
    now = int(time.time())
    claims = {
        "iss": fake_bank.issuer,
        "sub": "u",
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 60,
        "nonce": NONCE,
    }
    token = jwt.encode(claims, "bank-secret-bank-secret-bank-secret!", algorithm="HS256")
    doc = {**fake_bank.doc(), "id_token_signing_alg_values_supported": ["HS256"]}
    assert await refused(fake_bank, session, token, doc=doc) == "id_token: alg 'HS256' is refused"


async def test_alg_must_be_advertised(fake_bank: FakeBank, session: aiohttp.ClientSession):
    doc = {**fake_bank.doc(), "id_token_signing_alg_values_supported": ["RS256"]}
    detail = await refused(fake_bank, session, fake_bank.id_token(), doc=doc)
    assert detail == "id_token: alg 'ES256' is not in id_token_signing_alg_values_supported"


async def test_rs256_is_the_default_when_not_advertised(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    doc = {k: v for k, v in fake_bank.doc().items() if k != "id_token_signing_alg_values_supported"}
    detail = await refused(fake_bank, session, fake_bank.id_token(), doc=doc)
    assert detail == "id_token: alg 'ES256' is not in id_token_signing_alg_values_supported"
    rsa = new_key("RSA", kid="rsa")
    fake_bank.keys.append(rsa)
    assert await validate(fake_bank, session, fake_bank.id_token(rsa, "RS256"), doc=doc)


async def test_signature_by_another_key(fake_bank: FakeBank, session: aiohttp.ClientSession):
    rogue = new_key(kid="k1")  # claims the real key's kid
    detail = await refused(fake_bank, session, fake_bank.id_token(rogue))
    assert detail == "id_token: signature does not verify"


async def test_unknown_kid_refreshes_then_fails(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    detail = await refused(fake_bank, session, fake_bank.id_token(new_key(kid="ghost")))
    assert detail == "id_token: no signing key: no key for kid 'ghost' usable with ES256"
    assert fake_bank.hits["/jwks"] == 1


async def test_rotated_key_is_found_by_refresh(fake_bank: FakeBank, session: aiohttp.ClientSession):
    settings = settings_for(fake_bank.issuer)
    meta = ProviderMetadata(settings, session)
    clock = FakeClock()
    jwks = JwksCache(meta, session, clock=clock)
    doc = fake_bank.doc()
    await validate_id_token(
        fake_bank.id_token(), settings=settings, metadata_doc=doc, jwks=jwks, nonce=NONCE
    )
    rotated = new_key(kid="k2")
    fake_bank.keys = [rotated]
    clock.now += 6
    claims = await validate_id_token(
        fake_bank.id_token(rotated), settings=settings, metadata_doc=doc, jwks=jwks, nonce=NONCE
    )
    assert claims["sub"] == "user-1"
    assert fake_bank.hits["/jwks"] == 2


async def test_token_without_kid(fake_bank: FakeBank, session: aiohttp.ClientSession):
    key = new_key()  # no kid in the key, so none in the header
    fake_bank.keys = [key]
    assert await validate(fake_bank, session, fake_bank.id_token(key))
    fake_bank.keys.append(new_key(kid="k2"))
    detail = await refused(fake_bank, session, fake_bank.id_token(key))
    assert detail == "id_token: no signing key: no kid and 2 keys usable with ES256"


async def test_garbage(fake_bank: FakeBank, session: aiohttp.ClientSession):
    detail = await refused(fake_bank, session, "not.a.jwt")
    assert detail == "id_token: not a JWS compact serialisation"


async def test_no_nonce_sent(fake_bank: FakeBank, session: aiohttp.ClientSession):
    """nonce=None: none was sent (CIBA), so the claim is neither required nor compared."""
    assert await validate(fake_bank, session, fake_bank.id_token(nonce=None), nonce=None)
    claims = await validate(fake_bank, session, fake_bank.id_token(nonce="anything"), nonce=None)
    assert claims["nonce"] == "anything"
    # every other check still applies
    token = fake_bank.id_token(nonce=None, aud="someone-else")
    detail = await refused(fake_bank, session, token, nonce=None)
    assert detail == "id_token: aud does not contain our client_id"
    # and a nonce that was sent is still required
    detail = await refused(fake_bank, session, fake_bank.id_token(nonce=None))
    assert detail == "id_token: nonce does not match the one sent"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_hs256_keyed_with_the_banks_public_key_is_refused(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    """The key-confusion attack: an HMAC over the token with the bank's published key
    (its PEM or its JWK JSON) as the secret. Refused by alg before any key is used."""
    now = int(time.time())
    claims = {"iss": fake_bank.issuer, "sub": "u", "aud": CLIENT_ID, "iat": now,
              "exp": now + 60, "nonce": NONCE}
    public_pem = fake_bank.keys[0].export_to_pem(private_key=False, password=None)
    public_json = json.dumps(public(fake_bank.keys[0])).encode()
    for secret in (public_pem, public_json):
        head = b64url(json.dumps({"alg": "HS256", "kid": fake_bank.keys[0]["kid"]}).encode())
        body = b64url(json.dumps(claims).encode())
        mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        token = f"{head}.{body}.{b64url(mac)}"
        for algs in (["ES256"], ["ES256", "HS256"]):
            doc = {**fake_bank.doc(), "id_token_signing_alg_values_supported": algs}
            assert (await refused(fake_bank, session, token, doc=doc)).startswith(
                "id_token: alg 'HS256'")
