"""A timeout is not a replay: a code exchange the store interrupted is finished by the
client's retry; a code that did give tokens, or is presented with another verifier or by
another client, is a replay and revokes its grant (RFC 6749 §4.1.2, §10.5).

Each test runs on the embedded store and on Redis, with the store's faults made by
:class:`tests.flows.faults.FaultyStore` and time moved by :class:`tests.flows.faults.Clock`
(no sleeping). The same faults on the wire, in front of a real Redis, are in
tests/security/test_faults.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from proxy.config.settings import Lifetimes, StoreSettings
from proxy.model.tokens import AUTHORIZATION_CODE, grant_of
from proxy.oauth.grants import IN_FLIGHT
from tests.flows.faults import Clock, FaultyStore, When, clock, faulty_store
from tests.flows.harness import CONFIDENTIAL, CONFIDENTIAL_SECRET, Login, World, WorldFactory

__all__ = ["clock", "faulty_store"]  # the fixtures

GRACE = 10  # lifetimes.refresh_grace: how long after IN_FLIGHT a retry may come


@pytest.fixture(params=["memory", "redis"])
async def world(request: pytest.FixtureRequest, world_factory: WorldFactory,
                faulty_store: Callable[[], FaultyStore]) -> World:  # fmt: skip
    store = StoreSettings(url="memory://") if request.param == "memory" else None
    built: World = await world_factory(store=store, lifetimes=Lifetimes(refresh_grace=GRACE))
    await built.proxy.tokens()  # connections open, scripts loaded: only the test's calls fail
    return built


async def error_of(resp: aiohttp.ClientResponse) -> tuple[int, str]:
    body: dict[str, Any] = await resp.json()
    return resp.status, body["error"]


async def grant_exists(store: FaultyStore, login: Login) -> bool:
    grant_id = grant_of(AUTHORIZATION_CODE, login.code)
    assert grant_id is not None
    return await store.inner.find("grant", grant_id) is not None


async def assert_live(world: World, tokens: dict[str, Any]) -> None:
    assert (await world.proxy.introspect(tokens["access_token"]))["active"] is True


async def assert_revoked(world: World, tokens: dict[str, Any]) -> None:
    assert await world.proxy.introspect(tokens["access_token"]) == {"active": False}
    refreshed = await world.proxy.refresh(tokens["refresh_token"])
    assert await error_of(refreshed) == (400, "invalid_grant")


# the store calls of an exchange, in order: the consume of the code (with the grant's
# read), the writes of the tokens, the settle that marks the code used
STAGES = [("consume", "before"), ("consume", "after"), ("add", "before"), ("add", "after"),
          ("settle", "before")]


@pytest.mark.parametrize(("method", "when"), STAGES)
async def test_an_interrupted_exchange_is_finished_by_its_retry(
    world: World, faulty_store: Callable[[], FaultyStore], clock: Clock, method: str,
    when: When,
) -> None:
    store = faulty_store()
    login = await world.proxy.login()
    store.fail(method, when)
    first = await world.proxy.exchange(login)
    assert await error_of(first) == (503, "temporarily_unavailable")
    assert first.headers["Retry-After"] == "1"

    clock.advance(IN_FLIGHT + 1)  # the client retries once the first is surely over
    retry = await world.proxy.exchange(login)
    assert retry.status == 200, await retry.text()
    tokens = await retry.json()
    await assert_live(world, tokens)
    # each token was written once, whether the first exchange wrote it or the retry did
    assert (store.added["at"], store.added["rt"]) == (2, 2)  # this login's and the warm-up's

    # now the code has given tokens: using it again is a replay, which revokes them
    replay = await world.proxy.exchange(login)
    assert await error_of(replay) == (400, "invalid_grant")
    await assert_revoked(world, tokens)


async def test_the_retry_window_is_exact(
    world: World, faulty_store: Callable[[], FaultyStore], clock: Clock
) -> None:
    """A retry is honoured up to IN_FLIGHT + refresh_grace after the code was consumed,
    to the millisecond; later it is refused without revoking anything (nothing was
    issued)."""
    store = faulty_store()
    inside, outside = await world.proxy.login(), await world.proxy.login()
    consumed_at = clock.freeze()
    for login in (inside, outside):
        store.fail("add", "before")
        assert await error_of(await world.proxy.exchange(login)) == (
            503, "temporarily_unavailable")

    clock.advance(IN_FLIGHT + GRACE + 0.001)
    late = await world.proxy.exchange(outside)
    assert await error_of(late) == (400, "invalid_grant")
    assert await grant_exists(store, outside)  # refused, not revoked

    clock.frozen = consumed_at + IN_FLIGHT + GRACE
    ok = await world.proxy.exchange(inside)
    assert ok.status == 200, await ok.text()
    await assert_live(world, await ok.json())


@pytest.mark.parametrize("change", ["code_verifier", "redirect_uri", "client"])
async def test_a_retry_that_is_not_the_same_request_is_a_replay(
    world: World, faulty_store: Callable[[], FaultyStore], clock: Clock, change: str
) -> None:
    """The code leaked, not the verifier: whoever presents it otherwise revokes the login,
    and the client's own retry then gets nothing."""
    store = faulty_store()
    login = await world.proxy.login()
    store.fail("add", "after")
    assert await error_of(await world.proxy.exchange(login)) == (503, "temporarily_unavailable")
    clock.advance(IN_FLIGHT + 1)

    if change == "client":
        other = await world.proxy.exchange(login, client_id=CONFIDENTIAL,
                                           client_secret=CONFIDENTIAL_SECRET)
    elif change == "code_verifier":
        other = await world.proxy.exchange(login, code_verifier="v" * 43)
    else:
        other = await world.proxy.exchange(login, redirect_uri="https://evil.example/cb")
    assert await error_of(other) == (400, "invalid_grant")
    assert not await grant_exists(store, login)
    retry = await world.proxy.exchange(login)
    assert await error_of(retry) == (400, "invalid_grant")


async def test_a_duplicate_sent_alongside_the_first_exchange_is_a_replay(
    world: World, faulty_store: Callable[[], FaultyStore]
) -> None:
    """A second request while the first is still writing the tokens waits for it; the
    first gives tokens, so the second is a replay and revokes them (as the parallel
    redemptions of tests/security/test_token_cases.py)."""
    store = faulty_store()
    login = await world.proxy.login()
    inner_add = store.inner.add

    async def slow_add(*args: Any, **kwargs: Any) -> bool:
        await asyncio.sleep(0.3)
        return await inner_add(*args, **kwargs)

    store.inner.add = slow_add  # type: ignore[method-assign]
    first_task = asyncio.create_task(world.proxy.exchange(login))
    await asyncio.sleep(0.1)  # the first has consumed the code and writes the tokens
    second = await world.proxy.exchange(login)
    first = await first_task
    assert first.status == 200, await first.text()
    assert await error_of(second) == (400, "invalid_grant")
    await assert_revoked(world, await first.json())
