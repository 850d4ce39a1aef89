"""A timeout is not a reuse: a refresh the store interrupted after it consumed the token
is finished by the client's retry with the tokens it chose; a token whose rotation did
give tokens is handed out again inside refresh_grace and is a reuse after it (RFC 9700
§4.14.2), as before.

Each test runs on the embedded store and on Redis, with the store's faults made by
:class:`tests.flows.faults.FaultyStore` and time moved by :class:`tests.flows.faults.Clock`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from proxy.config.settings import Lifetimes, StoreSettings
from proxy.oauth.grants import ROTATION_IN_FLIGHT
from tests.flows.faults import Clock, FaultyStore, When, clock, faulty_store
from tests.flows.harness import (
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    PUBLIC,
    DPoPKey,
    World,
    WorldFactory,
)

__all__ = ["clock", "faulty_store"]  # the fixtures

GRACE = 10  # lifetimes.refresh_grace


@pytest.fixture(params=["memory", "redis"])
async def world(request: pytest.FixtureRequest, world_factory: WorldFactory,
                faulty_store: Callable[[], FaultyStore]) -> World:  # fmt: skip
    store = StoreSettings(url="memory://") if request.param == "memory" else None
    built: World = await world_factory(store=store, lifetimes=Lifetimes(refresh_grace=GRACE))
    # the bank's tokens outlive the new access tokens: no rotation here goes to the bank
    # (a grant write lost after the bank's own refresh is the limit docs/security.md names)
    built.bank_a.access_token_lifetime = 3600
    await built.proxy.tokens()  # connections open, scripts loaded: only the test's calls fail
    return built


def surely_over(world: World) -> float:
    """Seconds after which a rotation that has not finished was surely interrupted: its
    store calls and the slowest bank's refresh (grants.refresh_in_flight)."""
    return ROTATION_IN_FLIGHT + max(b.timeout for b in world.proxy.config.banks) + 0.5


def refresh_form(tokens: dict[str, Any]) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": PUBLIC}


async def error_of(resp: aiohttp.ClientResponse) -> tuple[int, str]:
    body: dict[str, Any] = await resp.json()
    return resp.status, body["error"]


async def active(world: World, access_token: str) -> bool:
    return bool((await world.proxy.introspect(access_token))["active"])


# the store calls of a rotation after its consume, in order: the grant's write (replace),
# the tokens' (add), the pair kept for refresh_grace (upsert), the settle
STAGES = [("consume", "after"), ("replace", "before"), ("replace", "after"),
          ("add", "before"), ("add", "after"), ("upsert", "before"), ("upsert", "after"),
          ("settle", "before")]


@pytest.mark.parametrize(("method", "when"), STAGES)
async def test_an_interrupted_rotation_is_finished_by_its_retry(
    world: World, faulty_store: Callable[[], FaultyStore], clock: Clock, method: str,
    when: When,
) -> None:
    store = faulty_store()
    tokens = await world.proxy.tokens()
    added = (store.added["at"], store.added["rt"])
    store.fail(method, when)
    first = await world.proxy.refresh(tokens["refresh_token"])
    assert await error_of(first) == (503, "temporarily_unavailable")

    clock.advance(surely_over(world))  # the client retries once the first is surely over
    retry = await world.proxy.refresh(tokens["refresh_token"])
    assert retry.status == 200, await retry.text()
    rotated = await retry.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert await active(world, rotated["access_token"])
    # each new token was written once, whether the first use wrote it or the retry did
    assert (store.added["at"], store.added["rt"]) == (added[0] + 1, added[1] + 1)
    # the login goes on
    again = await world.proxy.refresh(rotated["refresh_token"])
    assert again.status == 200, await again.text()

    # the old token was rotated now: used after refresh_grace it is a reuse, which revokes
    clock.advance(GRACE + 1)
    reuse = await world.proxy.refresh(tokens["refresh_token"])
    assert await error_of(reuse) == (400, "invalid_grant")
    assert not await active(world, (await again.json())["access_token"])


async def test_a_retry_inside_the_window_gets_the_same_tokens_as_another(
    world: World, faulty_store: Callable[[], FaultyStore], clock: Clock
) -> None:
    """Two retries of one interrupted rotation (an app retrying from two threads) get the
    same tokens: no second set exists."""
    store = faulty_store()
    tokens = await world.proxy.tokens()
    store.fail("add", "before")
    assert await error_of(await world.proxy.refresh(tokens["refresh_token"])) == (
        503, "temporarily_unavailable")
    clock.advance(surely_over(world))
    one, two = await asyncio.gather(world.proxy.refresh(tokens["refresh_token"]),
                                    world.proxy.refresh(tokens["refresh_token"]))
    assert (one.status, two.status) == (200, 200), (await one.text(), await two.text())
    first, second = await one.json(), await two.json()
    assert first["access_token"] == second["access_token"]
    assert first["refresh_token"] == second["refresh_token"]


async def test_the_retry_window_ends_without_revoking(
    world: World, faulty_store: Callable[[], FaultyStore], clock: Clock
) -> None:
    """Later than refresh_grace after the first use was surely over, the interrupted
    rotation is not finished (its access token would be issued already expired): the
    token is refused, and the login's other tokens stay live (nothing was issued)."""
    store = faulty_store()
    tokens = await world.proxy.tokens()
    store.fail("add", "before")
    assert await error_of(await world.proxy.refresh(tokens["refresh_token"])) == (
        503, "temporarily_unavailable")
    clock.advance(surely_over(world) + GRACE + 0.5)
    late = await world.proxy.refresh(tokens["refresh_token"])
    assert await error_of(late) == (400, "invalid_grant")
    assert await active(world, tokens["access_token"])


@pytest.mark.parametrize("who", ["another client", "no DPoP key"])
async def test_a_retry_by_someone_else_is_refused_and_takes_nothing(
    world: World, faulty_store: Callable[[], FaultyStore], clock: Clock, who: str
) -> None:
    """A retry is the same client's (and, for a DPoP-bound token, the same key's); anyone
    else is refused, and the client's own retry still finishes the rotation."""
    store = faulty_store()
    if who == "no DPoP key":
        key = DPoPKey.generate()
        tokens = await world.proxy.dpop_tokens(key)
    else:
        tokens = await world.proxy.tokens()
    store.fail("add", "before")
    if who == "no DPoP key":
        first = await world.proxy.dpop_post("/token", refresh_form(tokens), key)
    else:
        first = await world.proxy.refresh(tokens["refresh_token"])
    assert await error_of(first) == (503, "temporarily_unavailable")
    clock.advance(surely_over(world))

    if who == "another client":
        other = await world.proxy.post("/token", {
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": CONFIDENTIAL, "client_secret": CONFIDENTIAL_SECRET})
    else:
        other = await world.proxy.refresh(tokens["refresh_token"])
    assert await error_of(other) == (400, "invalid_grant")
    if who == "no DPoP key":
        own = await world.proxy.dpop_post("/token", refresh_form(tokens), key)
    else:
        own = await world.proxy.refresh(tokens["refresh_token"])
    assert own.status == 200, await own.text()
