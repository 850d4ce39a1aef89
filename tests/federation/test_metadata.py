"""ProviderMetadata: exact issuer, cache, single-flight, last good document."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from fedfakes import FakeBank, FakeClock, settings_for

from federation.metadata import MetadataUnavailable, ProviderMetadata

DISCOVERY = "/.well-known/openid-configuration"


async def test_fetches_once_and_caches(fake_bank: FakeBank, session: aiohttp.ClientSession):
    meta = ProviderMetadata(settings_for(fake_bank.issuer), session)
    first = await meta.get()
    second = await meta.get()
    assert first["token_endpoint"] == f"{fake_bank.issuer}/token"
    assert second is first
    assert fake_bank.hits[DISCOVERY] == 1
    assert await meta.status() == {"metadata": "ok"}


async def test_issuer_must_match_exactly(fake_bank: FakeBank, session: aiohttp.ClientSession):
    fake_bank.discovery_issuer = fake_bank.issuer + "/"
    meta = ProviderMetadata(settings_for(fake_bank.issuer), session)
    with pytest.raises(MetadataUnavailable, match="issuer does not match"):
        await meta.get()
    status = await meta.status()
    assert status["metadata"] == "unavailable"
    assert "issuer does not match" in status["error"]


async def test_trailing_slash_is_removed_before_the_well_known_path(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    fake_bank.discovery_issuer = fake_bank.issuer + "/"
    meta = ProviderMetadata(settings_for(fake_bank.issuer + "/"), session)
    assert meta.url == f"{fake_bank.issuer}{DISCOVERY}"
    assert (await meta.get())["issuer"] == fake_bank.issuer + "/"


async def test_concurrent_first_fetches_are_one_request(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    fake_bank.delays[DISCOVERY] = 0.1
    meta = ProviderMetadata(settings_for(fake_bank.issuer), session)
    docs = await asyncio.gather(*(meta.get() for _ in range(10)))
    assert fake_bank.hits[DISCOVERY] == 1
    assert all(doc is docs[0] for doc in docs)


async def test_concurrent_failures_are_one_request(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    fake_bank.discovery_status = 500
    fake_bank.delays[DISCOVERY] = 0.05
    meta = ProviderMetadata(settings_for(fake_bank.issuer), session)
    results = await asyncio.gather(*(meta.get() for _ in range(10)), return_exceptions=True)
    assert all(isinstance(r, MetadataUnavailable) for r in results)
    assert fake_bank.hits[DISCOVERY] == 1


async def test_refetches_after_max_age_and_keeps_last_good(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    clock = FakeClock()
    meta = ProviderMetadata(
        settings_for(fake_bank.issuer), session, max_age=3600, retry_after=10, clock=clock
    )
    good = await meta.get()
    clock.now += 3601
    fake_bank.discovery_status = 503
    assert await meta.get() is good  # the re-fetch failed: last good document
    assert fake_bank.hits[DISCOVERY] == 2
    status = await meta.status()
    assert status["metadata"] == "ok"
    assert "HTTP 503" in status["error"]
    clock.now += 5  # inside retry_after: no new request
    await meta.get()
    assert fake_bank.hits[DISCOVERY] == 2
    clock.now += 6
    fake_bank.discovery_status = 200
    fake_bank.extra["marker"] = "new"
    assert (await meta.get())["marker"] == "new"
    assert fake_bank.hits[DISCOVERY] == 3
    assert await meta.status() == {"metadata": "ok"}


async def test_not_json_is_unavailable(fake_bank: FakeBank, session: aiohttp.ClientSession):
    fake_bank.answers[DISCOVERY] = (200, "<html>maintenance</html>")
    meta = ProviderMetadata(settings_for(fake_bank.issuer), session)
    with pytest.raises(MetadataUnavailable, match="not a JSON object"):
        await meta.get()


async def test_timeout_is_bounded_and_reported(fake_bank: FakeBank, session: aiohttp.ClientSession):
    fake_bank.delays[DISCOVERY] = 2.0
    meta = ProviderMetadata(settings_for(fake_bank.issuer, timeout=0.3), session)
    started = time.monotonic()
    status = await meta.status()
    assert time.monotonic() - started < 1.0
    assert status["metadata"] == "unavailable"
    assert "no answer within 0.3s" in status["error"]


async def test_unreachable_bank(session: aiohttp.ClientSession):
    meta = ProviderMetadata(settings_for("http://127.0.0.1:9"), session)
    status = await meta.status()
    assert status["metadata"] == "unavailable"
    assert status["error"]
