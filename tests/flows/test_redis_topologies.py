"""Whole logins on Redis Cluster, and through a Sentinel failover (servers of our own:
tests/redisfarm.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from proxy.config.settings import StoreSettings
from tests.flows.harness import (
    APP_REDIRECT,
    PUBLIC,
    RS_PLAIN,
    Proxy,
    World,
    WorldFactory,
    app_redirect_params,
    new_request,
)
from tests.redisfarm import Cluster, SentinelFarm

# -- Redis Cluster -----------------------------------------------------------------


async def test_whole_login_on_redis_cluster(
    world_factory: WorldFactory, redis_cluster: Cluster, cluster_prefix: str
) -> None:
    """authorize -> bank -> callback -> token -> refresh -> introspect -> revoke, with the
    records of one login spread over the slots of three masters."""
    store = StoreSettings(url=redis_cluster.url, cluster=True, prefix=cluster_prefix)
    world: World = await world_factory(store=store)
    assert (await world.proxy.http.get(f"{world.proxy.issuer}/readyz")).status == 200

    login = await world.proxy.login()
    first = await world.proxy.exchange(login)
    assert first.status == 200, await first.text()
    tokens = await first.json()
    replay = await world.proxy.exchange(login)  # the consume marker, on its own slot
    assert (await replay.json())["error"] == "invalid_grant"
    assert (await world.proxy.introspect(tokens["access_token"]))["active"] is False

    tokens = await world.proxy.tokens()
    refreshed = await world.proxy.refresh(tokens["refresh_token"])
    assert refreshed.status == 200, await refreshed.text()
    pair = await refreshed.json()
    info = await world.proxy.introspect(pair["access_token"], rs=RS_PLAIN)
    assert info["active"] is True and info["client_id"] == PUBLIC
    userinfo = await world.proxy.http.get(
        f"{world.proxy.issuer}/userinfo",
        headers={"Authorization": f"Bearer {pair['access_token']}"},
    )
    assert userinfo.status == 200 and (await userinfo.json())["sub"] == info["sub"]

    revoked = await world.proxy.post("/revoke", {"token": pair["refresh_token"],
                                                 "client_id": PUBLIC})
    assert revoked.status == 200
    assert await world.proxy.introspect(pair["access_token"]) == {"active": False}
    again = await world.proxy.refresh(pair["refresh_token"])
    assert (await again.json())["error"] == "invalid_grant"

    client = RedisCluster.from_url(redis_cluster.url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{cluster_prefix}*")]
        ttls = [await client.ttl(k) for k in keys]
        assert all(ttl > 0 for ttl in ttls), ttls
    finally:
        await client.aclose()
    # no hash tags: a login's records land on slots of their own, and nothing above
    # needed two of them in one command
    assert len(keys) >= 8
    assert len({key_slot(k) for k in keys}) > len(keys) // 2


# -- Redis Sentinel ---------------------------------------------------------------

# A request must answer within this, failover or not (the store gives up on a dead
# Redis within about a second).
REQUEST_BOUND = 3.0
WORKERS = 4


@dataclass
class Answer:
    path: str
    status: int
    at: float  # when the request was sent (time.monotonic)
    seconds: float
    outcome: str  # "ok", "unavailable", or what else it was


@dataclass
class Stream:
    """Logins run by a few workers in a loop, every proxy answer noted."""

    proxy: Proxy
    answers: list[Answer] = field(default_factory=list)
    logins: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of each
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _call(self, method: str, url: str, expect: int, **kwargs: Any) -> (
            tuple[str, aiohttp.ClientResponse | None]):
        path = url.removeprefix(self.proxy.issuer).split("?")[0]
        started = time.monotonic()
        resp = None
        try:
            resp = await self.proxy.http.request(
                method, url, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=REQUEST_BOUND * 3), **kwargs,
            )
            outcome = _classify(resp, await resp.text(), expect)
        except TimeoutError:
            outcome = "no answer: hung"
        except aiohttp.ClientError as exc:
            outcome = f"no answer: {exc!r}"
        status = resp.status if resp is not None else 0
        self.answers.append(Answer(path, status, started, time.monotonic() - started, outcome))
        return outcome, resp

    async def _login(self) -> bool:
        """One login to an active token; False when an answer said to come back later."""
        proxy = self.proxy
        login, query = new_request()
        outcome, resp = await self._call("GET", f"{proxy.issuer}/authorize", 302, params=query)
        if resp is None or outcome != "ok":
            return False
        # the bank (not the proxy) approves, and sends the browser back to /callback
        bank = await proxy.http.get(resp.headers["Location"], allow_redirects=False)
        await bank.read()
        assert bank.status == 302, await bank.text()
        outcome, resp = await self._call("GET", bank.headers["Location"], 302)
        if resp is None or outcome != "ok":
            return False
        code = app_redirect_params(resp)["code"]
        outcome, resp = await self._call("POST", f"{proxy.issuer}/token", 200, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT,
            "client_id": PUBLIC, "code_verifier": login.verifier,
        })
        if resp is None or outcome != "ok":
            return False
        access_token = (await resp.json())["access_token"]
        outcome, resp = await self._call(
            "POST", f"{proxy.issuer}/introspect", 200, data={"token": access_token},
            headers={"Authorization": aiohttp.encode_basic_auth(*RS_PLAIN)},
        )
        if resp is None or outcome != "ok":
            return False
        if not (await resp.json())["active"]:
            self.answers[-1].outcome = "token issued but not active"
            return False
        return True

    async def worker(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            if await self._login():
                self.logins.append((started, time.monotonic()))
            else:
                await asyncio.sleep(0.05)  # what Retry-After asks, shortened

    def succeeded_after(self, moment: float) -> int:
        return sum(1 for start, _ in self.logins if start > moment)


def _classify(resp: aiohttp.ClientResponse, text: str, expect: int) -> str:
    """The expected answer is "ok"; a clean temporarily_unavailable, in whatever form this
    endpoint gives errors, is "unavailable"; anything else is described."""
    if resp.status == expect and not (
        resp.status == 302 and "error=" in resp.headers.get("Location", "")
    ):
        return "ok"
    location = resp.headers.get("Location", "")
    if resp.status == 302 and location.startswith(APP_REDIRECT):
        # the client's redirect URI is known: the app hears of it there
        if app_redirect_params(resp).get("error") == "temporarily_unavailable":
            return "unavailable"
    if resp.status == 503 and resp.headers.get("Retry-After"):
        if resp.content_type == "application/json" and '"temporarily_unavailable"' in text:
            return "unavailable"
        if resp.content_type == "text/html" and "<code>temporarily_unavailable</code>" in text:
            return "unavailable"
    return f"{resp.status} {location or text[:200]}"


async def test_logins_ride_through_a_sentinel_failover(
    world_factory: WorldFactory, redis_sentinel: SentinelFarm
) -> None:
    """The master dies (SIGKILL) under a stream of logins: every answer is a success or a
    clean temporarily_unavailable, in bounded time; logins work again once the sentinel
    has promoted the replica; and tokens replicated before the kill are still good."""
    store = StoreSettings(url=redis_sentinel.url, prefix="a2a-failover:")
    world: World = await world_factory(store=store)
    before = [await world.proxy.tokens() for _ in range(3)]
    # Replication is asynchronous: only what a replica acknowledged survives a failover
    # for sure. WAIT makes that so for everything written so far.
    master = aioredis.Redis(host="127.0.0.1", port=redis_sentinel.master.port)
    try:
        assert await master.execute_command("WAIT", 1, 2000) == 1
    finally:
        await master.aclose()

    stream = Stream(world.proxy)
    workers = [asyncio.create_task(stream.worker()) for _ in range(WORKERS)]
    try:
        await _until(lambda: len(stream.logins) >= WORKERS, 10, "logins before the kill")
        killed = time.monotonic()
        redis_sentinel.master.kill()
        # polled off the event loop, which serves the proxy meanwhile
        await asyncio.to_thread(redis_sentinel.wait_for_failover)
        failed_over = time.monotonic()
        await _until(lambda: stream.succeeded_after(failed_over) >= 5, 15,
                     "logins after the failover")
    finally:
        stream.stop.set()
        await asyncio.gather(*workers)

    odd = [a for a in stream.answers if a.outcome not in ("ok", "unavailable")]
    assert not odd, odd
    slow = [a for a in stream.answers if a.seconds > REQUEST_BOUND]
    assert not slow, slow
    unavailable = [a for a in stream.answers if a.outcome == "unavailable"]
    assert unavailable, "no request met the outage: the test proved nothing"
    # the outage lasted as long as the failover, not longer
    late = [a for a in unavailable if not killed - REQUEST_BOUND < a.at < failed_over + 1.0]
    assert not late, (late, killed, failed_over)

    for tokens in before:
        info = await world.proxy.introspect(tokens["access_token"])
        assert info["active"] is True
        refreshed = await world.proxy.refresh(tokens["refresh_token"])
        assert refreshed.status == 200, await refreshed.text()
        pair = await refreshed.json()
        assert (await world.proxy.introspect(pair["access_token"]))["active"] is True


async def _until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)
