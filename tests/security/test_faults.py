"""Faults between the proxy and what it depends on: Redis refused, blackholed, its
replies lost, its pool exhausted; a bank that hangs.

Every Redis fault is made by :class:`RedisFront`, a TCP front for the real test
Redis that a test breaks on demand, so the faults are deterministic in CI (no
unroutable addresses, no timing of a server restart).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import resource
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from proxy.config.settings import StoreSettings
from proxy.oauth.grants import IN_FLIGHT, ROTATION_IN_FLIGHT
from proxy.store import StoreUnavailable, open_store
from proxy.store.redis import RedisStore
from tests.flows.faults import Clock, clock
from tests.flows.harness import (
    ACR_A,
    ACR_B,
    ACR_C,
    APP_REDIRECT,
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    PUBLIC,
    RS_PLAIN,
    World,
    WorldFactory,
    app_redirect_params,
    new_request,
    query_of,
)

__all__ = ["clock"]  # the fixture

NOW = 1_700_000_000
# a RESP array whose first bulk string is the command name
_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


class _Pipe:
    """One client connection through the front, and its connection to Redis."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter | None):
        self.client = client
        self.upstream = upstream
        self.drop_reply = False
        self.delay_reply = 0.0
        self.replies: asyncio.Task[None] | None = None

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


class RedisFront:
    """A TCP front for a real Redis. ``refuse()``: nothing listens on the port;
    ``blackhole()``: connections are accepted (and existing ones kept) but never
    answered; ``drop_reply_to(name)``: the next such command reaches Redis, then its
    connection closes before the reply gets back; ``delay_reply_to(name, seconds)``: a
    stall, the next such command runs but its reply is held back; ``lose(name)``: the
    next such command never reaches Redis, its connection breaks first; ``restore()``.
    ``skip``: that many such commands pass untouched before the one that fails.
    ``seen`` counts the commands that reached Redis, by name."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._db = parts.path or "/0"
        self.port = 0
        self.mode = "pass"
        self.seen: Counter[str] = Counter()
        # armed faults: [command name, "drop" | "delay" | "lose", skip, seconds]
        self._faults: list[list[Any]] = []
        self._server: asyncio.Server | None = None
        self._pipes: set[_Pipe] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self._db}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        """Redis is gone: the port refuses, and open connections are reset."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for pipe in list(self._pipes):
            pipe.abort()

    def blackhole(self) -> None:
        """Redis is stuck: nothing sent to it is forwarded, nothing comes back."""
        self.mode = "blackhole"

    async def restore(self) -> None:
        self.mode = "pass"
        if self._server is None:
            await self.start()

    def drop_reply_to(self, name: str, *, skip: int = 0) -> None:
        self._faults.append([name, "drop", skip, 0.0])

    def delay_reply_to(self, name: str, seconds: float, *, skip: int = 0) -> None:
        self._faults.append([name, "delay", skip, seconds])

    def lose(self, name: str, *, skip: int = 0) -> None:
        self._faults.append([name, "lose", skip, 0.0])

    def _fault_for(self, name: str) -> tuple[str, float] | None:
        for fault in self._faults:
            if fault[0] != name:
                continue
            if fault[2] > 0:
                fault[2] -= 1
                return None
            self._faults.remove(fault)
            return fault[1], fault[3]
        return None

    async def close(self) -> None:
        await self.refuse()
        await asyncio.sleep(0)  # the aborted connections' tasks end

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        if self.mode == "pass":
            upstream = await asyncio.open_connection(*self._upstream)
        pipe = _Pipe(writer, upstream[1] if upstream else None)
        self._pipes.add(pipe)
        if upstream is not None:
            pipe.replies = asyncio.create_task(self._replies(pipe, upstream[0]))
        try:
            while data := await reader.read(65536):
                names = [m.decode().upper() for m in _COMMAND.findall(data)]
                if self.mode == "blackhole" or pipe.upstream is None:
                    continue
                faults = [f for f in map(self._fault_for, names) if f is not None]
                if any(kind == "lose" for kind, _ in faults):
                    break  # the connection breaks before these commands reach Redis
                self.seen.update(names)
                for kind, seconds in faults:
                    if kind == "drop":
                        pipe.drop_reply = True
                    else:
                        pipe.delay_reply = max(pipe.delay_reply, seconds)
                pipe.upstream.write(data)
        except OSError:
            pass
        finally:
            pipe.abort()
            self._pipes.discard(pipe)

    async def _replies(self, pipe: _Pipe, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(65536):
                if pipe.drop_reply:
                    break
                if pipe.delay_reply:
                    await asyncio.sleep(pipe.delay_reply)
                    pipe.delay_reply = 0.0
                if self.mode != "blackhole":
                    pipe.client.write(data)
        except OSError:
            pass
        finally:
            pipe.abort()


@pytest.fixture
async def front(redis_url: str) -> AsyncIterator[RedisFront]:
    front = RedisFront(redis_url)
    await front.start()
    yield front
    await front.close()


@pytest.fixture
async def store(front: RedisFront, store_prefix: str) -> AsyncIterator[RedisStore]:
    opened = open_store(StoreSettings(url=front.url, prefix=store_prefix))
    assert isinstance(opened, RedisStore)
    # the scripts are loaded, so a command under test is the only one sent
    await opened.consume("code", "warm-up", now=NOW, marker_ttl=60)
    await opened.replace("code", "warm-up", {}, 60)
    await opened.settle("code", "warm-up", {})
    yield opened
    await opened.close()


# --- a command whose reply is lost is sent again only if sending it twice is harmless


ONCE_ONLY: dict[str, tuple[str, Callable[[RedisStore], Awaitable[Any]]]] = {
    # the first send consumed the code; a second would find its marker, report a
    # replay and revoke the grant the first exchange is issuing
    "consume": ("EVALSHA", lambda s: s.consume("code", "c1", now=NOW, marker_ttl=60)),
    # the first send created the record; a second would report a clash
    "add": ("SET", lambda s: s.add("code", "c2", {"grant_id": "g2"}, 60)),
    # conditional on the record still being there: a second send answers for a later state
    "replace": ("EVALSHA", lambda s: s.replace("code", "c1", {"grant_id": "g9"}, 60)),
    # a script like the others: sent once (the exchange's retry settles again if needed)
    "settle": ("EVALSHA", lambda s: s.settle("code", "c1", {"issued": True})),
}


@pytest.mark.parametrize("op", sorted(ONCE_ONLY))
async def test_a_non_idempotent_command_is_sent_once(
    front: RedisFront, store: RedisStore, op: str
) -> None:
    await store.upsert("code", "c1", {"grant_id": "g1"}, 60)
    command, call = ONCE_ONLY[op]
    front.seen.clear()
    front.drop_reply_to(command)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await call(store)
    assert time.monotonic() - started < 1.0
    assert front.seen[command] == 1, front.seen


async def test_a_consume_whose_reply_was_lost_stays_consumed_once(
    front: RedisFront, store: RedisStore
) -> None:
    """The lost reply's consume did run: the code's next use is the replay, with the grant."""
    await store.upsert("code", "c1", {"grant_id": "g1"}, 60)
    front.drop_reply_to("EVALSHA")
    with pytest.raises(StoreUnavailable):
        await store.consume("code", "c1", now=NOW, marker_ttl=60)
    again = await store.consume("code", "c1", now=NOW + 1, marker_ttl=60)
    assert again is not None and again.replay
    assert again.payload == {"grant_id": "g1", "consumed_at": NOW}


async def test_consumes_batched_together_are_each_sent_once(
    front: RedisFront, store: RedisStore
) -> None:
    """Concurrent consumes share one pipeline (proxy.store.redis.Batcher); a reply lost
    in flight fails each of them, none is sent again, and each did run: its code's next
    use is the replay."""
    codes = [f"c{n}" for n in range(3)]
    for code in codes:
        await store.upsert("code", code, {"grant_id": f"g-{code}"}, 60)
    await store.consume("code", "warm-up", now=NOW, marker_ttl=60)  # the script is loaded
    front.seen.clear()
    front.drop_reply_to("EVALSHA")
    results = await asyncio.gather(*(store.consume("code", c, now=NOW, marker_ttl=60)
                                     for c in codes), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    assert front.seen["EVALSHA"] == 3, front.seen
    for code in codes:
        again = await store.consume("code", code, now=NOW + 1, marker_ttl=60)
        assert again is not None and again.replay, code
        assert again.payload == {"grant_id": f"g-{code}", "consumed_at": NOW}


async def test_a_lost_reply_to_a_mixed_batch_fails_the_consume_and_resends_the_read(
    front: RedisFront, store: RedisStore
) -> None:
    """A consume and a read asked for in one round share one pipeline (a code exchange
    does both). The reply is lost: the consume, which did run, fails and is not sent
    again (its code's next use is the replay); the read is sent again and answers."""
    await store.upsert("code", "c1", {"grant_id": "g1"}, 60)
    await store.upsert("grant", "g1", {"sub": "alice"}, 60)
    front.seen.clear()
    front.drop_reply_to("EVALSHA")
    consumed, found = await asyncio.gather(
        store.consume("code", "c1", now=NOW, marker_ttl=60), store.find("grant", "g1"),
        return_exceptions=True)
    assert isinstance(consumed, StoreUnavailable), consumed
    assert found == {"sub": "alice"}
    assert (front.seen["EVALSHA"], front.seen["MGET"]) == (1, 2), front.seen
    again = await store.consume("code", "c1", now=NOW + 1, marker_ttl=60)
    assert again is not None and again.replay


RESENDABLE: dict[str, tuple[str, Callable[[RedisStore], Awaitable[Any]]]] = {
    "find": ("MGET", lambda s: s.find("code", "c1")),
    "find_many": ("MGET", lambda s: s.find_many([("code", "c1"), ("code", "c2")])),
    "ping": ("PING", lambda s: s.ping()),
    "upsert": ("SET", lambda s: s.upsert("code", "c1", {"grant_id": "g1"}, 60)),
    "destroy": ("DEL", lambda s: s.destroy("code", "c1")),
}


@pytest.mark.parametrize("op", sorted(RESENDABLE))
async def test_an_idempotent_command_is_sent_again_once(
    front: RedisFront, store: RedisStore, op: str
) -> None:
    """The first call after Redis restarts goes through on a fresh connection."""
    await store.upsert("code", "c1", {"grant_id": "g1"}, 60)
    command, call = RESENDABLE[op]
    front.seen.clear()
    front.drop_reply_to(command)
    await call(store)
    assert front.seen[command] == 2, front.seen


# --- a timeout is not a replay: a code exchange Redis interrupted is finished by its retry

# (fault, command, skip): the exchange sends its consume (EVALSHA, with the grant's MGET),
# then the tokens (two SET NX), then the settle that marks the code used (EVALSHA)
INTERRUPTIONS = {
    "the consume's reply is lost": ("drop", "EVALSHA", 0),
    "Redis stalls on the consume": ("delay", "EVALSHA", 0),
    "Redis stalls on the token writes": ("delay", "SET", 0),
    "the token writes never reach Redis": ("lose", "SET", 0),
    "the settle never reaches Redis": ("lose", "EVALSHA", 1),
}


def interrupt(front: RedisFront, fault: str, command: str, skip: int) -> None:
    """Arm one fault on the ``skip``-th next ``command``: its reply dropped, delayed past
    the store's socket timeout, or the command lost before it reaches Redis."""
    if fault == "drop":
        front.drop_reply_to(command, skip=skip)
    elif fault == "delay":
        front.delay_reply_to(command, 1.0, skip=skip)  # twice the store's socket timeout
    else:
        front.lose(command, skip=skip)


@pytest.mark.parametrize("case", sorted(INTERRUPTIONS))
async def test_a_code_exchange_redis_interrupted_is_finished_by_its_retry(
    world_factory: WorldFactory, front: RedisFront, store_prefix: str, clock: Clock, case: str
) -> None:
    """RFC 6749 §4.1.2 revokes on a code "used more than once"; a code whose exchange
    answered 503 gave no tokens, so the client's retry (after Retry-After) gets them, and
    only a use after that is the replay that revokes."""
    world: World = await world_factory(store=StoreSettings(url=front.url, prefix=store_prefix))
    proxy = world.proxy
    await proxy.tokens()  # scripts loaded and connections open: only the exchange's fail
    login = await proxy.login()
    interrupt(front, *INTERRUPTIONS[case])
    started = time.monotonic()
    first = await proxy.exchange(login)
    assert first.status == 503, await first.text()
    assert (await first.json())["error"] == "temporarily_unavailable"
    assert time.monotonic() - started < OUTAGE_BOUND

    clock.advance(IN_FLIGHT + 1)
    retry = await proxy.exchange(login)
    assert retry.status == 200, await retry.text()
    tokens = await retry.json()
    assert (await proxy.introspect(tokens["access_token"]))["active"] is True
    assert (await proxy.refresh(tokens["refresh_token"])).status == 200

    replay = await proxy.exchange(login)
    assert replay.status == 400
    assert (await replay.json())["error"] == "invalid_grant"
    assert await proxy.introspect(tokens["access_token"]) == {"active": False}


# (fault, command, skip): after its two reads (MGET), a refresh sends its consume
# (EVALSHA), the grant's write (EVALSHA), the tokens (two SET NX), the pair kept for
# refresh_grace (SET), then the settle that marks the token rotated (EVALSHA)
REFRESH_INTERRUPTIONS = {
    "the consume's reply is lost": ("drop", "EVALSHA", 0),
    "Redis stalls on the token writes": ("delay", "SET", 0),
    "Redis stalls on the pair (a plain SET lost is sent again)": ("delay", "SET", 2),
    "the settle never reaches Redis": ("lose", "EVALSHA", 2),
}


@pytest.mark.parametrize("case", sorted(REFRESH_INTERRUPTIONS))
async def test_a_refresh_redis_interrupted_is_finished_by_its_retry(
    world_factory: WorldFactory, front: RedisFront, store_prefix: str, clock: Clock, case: str
) -> None:
    """RFC 9700 §4.14.2 revokes a rotated refresh token used again; a rotation that
    answered 503 gave no tokens, so the client's retry gets them, and the login goes on."""
    world: World = await world_factory(store=StoreSettings(url=front.url, prefix=store_prefix))
    world.bank_a.access_token_lifetime = 3600  # the rotation does not go to the bank
    proxy = world.proxy
    tokens = await proxy.tokens()
    assert (await proxy.refresh((await proxy.tokens())["refresh_token"])).status == 200
    interrupt(front, *REFRESH_INTERRUPTIONS[case])
    started = time.monotonic()
    first = await proxy.refresh(tokens["refresh_token"])
    assert first.status == 503, await first.text()
    assert time.monotonic() - started < OUTAGE_BOUND

    clock.advance(ROTATION_IN_FLIGHT + max(b.timeout for b in proxy.config.banks) + 1)
    retry = await proxy.refresh(tokens["refresh_token"])
    assert retry.status == 200, await retry.text()
    rotated = await retry.json()
    assert (await proxy.introspect(rotated["access_token"]))["active"] is True
    assert (await proxy.refresh(rotated["refresh_token"])).status == 200


# --- Redis refused or blackholed: every endpoint that needs it answers 503 within 1 s

# the most a request may take while Redis is refused or stuck (socket timeout 0.5 s)
OUTAGE_BOUND = 1.0
Call = Callable[[], Awaitable[aiohttp.ClientResponse]]


async def _outage_requests(world: World) -> dict[str, Call]:
    """One request per endpoint that needs the store, each with real values obtained while
    Redis answered: a live token pair, an unredeemed code, a pending bank callback, a
    decoupled login's handle, a pushed request."""
    proxy, http = world.proxy, world.proxy.http
    tokens = await proxy.tokens()
    unredeemed = await proxy.login()
    resp, _ = await proxy.authorize()
    at_bank = await http.get(resp.headers["Location"], allow_redirects=False)
    callback = at_bank.headers["Location"]
    assert callback.startswith(f"{proxy.issuer}/callback/bank-a?")
    resp, _ = await proxy.authorize_pushed(acr_values=ACR_C, login_hint="alice")
    resume = resp.headers["Location"]
    assert resume.startswith(f"{proxy.issuer}/resume/")
    handle = resume.rsplit("/", 1)[1]
    _, pushed = new_request(client_id=CONFIDENTIAL)
    par = await proxy.post("/par", pushed, auth=(CONFIDENTIAL, CONFIDENTIAL_SECRET))
    assert par.status == 201, await par.text()
    request_uri = (await par.json())["request_uri"]
    _, authorize_query = new_request()
    _, native_form = new_request(client_id="merchant-app2app",
                                 native_callback_uri="https://app.merchant.example/app2app")
    base = proxy.issuer
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    def get(url: str, **kw: Any) -> Call:
        return lambda: http.get(url, allow_redirects=False, **kw)

    def post(path: str, form: dict[str, str], **kw: Any) -> Call:
        return lambda: proxy.post(path, form, **kw)

    return {
        "/authorize": get(f"{base}/authorize", params=authorize_query),
        "/authorize (request_uri)": get(f"{base}/authorize", params={
            "client_id": CONFIDENTIAL, "request_uri": request_uri}),
        "/callback/bank-a": get(callback),
        "/token (authorization_code)": lambda: proxy.exchange(unredeemed),
        "/token (refresh_token)": lambda: proxy.refresh(tokens["refresh_token"]),
        "/introspect": post("/introspect", {"token": tokens["access_token"]}, auth=RS_PLAIN),
        "/revoke": post("/revoke", {"token": tokens["refresh_token"], "client_id": PUBLIC}),
        "/userinfo": get(f"{base}/userinfo", headers=bearer),
        "/par": post("/par", pushed, auth=(CONFIDENTIAL, CONFIDENTIAL_SECRET)),
        "/native/authorize": post("/native/authorize", native_form),
        "/resume/{handle}": get(resume),
        "/authorize/status/{handle}": get(f"{base}/authorize/status/{handle}"),
        "/readyz": get(f"{base}/readyz"),
    }


async def _timed(call: Call) -> tuple[aiohttp.ClientResponse, float]:
    started = time.monotonic()
    resp = await call()
    await resp.read()
    return resp, time.monotonic() - started


@pytest.mark.parametrize("fault", ["refused", "blackholed"])
async def test_every_endpoint_answers_503_fast_while_redis_is_out(
    world_factory: WorldFactory, front: RedisFront, store_prefix: str, fault: str,
    log_buffer: io.StringIO,
) -> None:
    world: World = await world_factory(
        store=StoreSettings(url=front.url, prefix=store_prefix), ciba=True
    )
    requests = await _outage_requests(world)
    if fault == "refused":
        await front.refuse()
    else:
        front.blackhole()
    names = list(requests)
    # all at once: each is measured on its own, and the test takes one timeout, not 13
    results = await asyncio.gather(*(_timed(requests[name]) for name in names))
    for name, (resp, took) in zip(names, results, strict=True):
        assert took < OUTAGE_BOUND, (name, took)
        await _assert_unavailable(name, resp)
    # the operator is told what failed, once per request, whether the answer was a 503 or
    # the client's error redirect: the store's error class, never as a client's error
    lines = [json.loads(line) for line in log_buffer.getvalue().splitlines()]
    outages = [line for line in lines if line["event"] == "store_unavailable"]
    assert len({line["request_id"] for line in outages}) == len(names), outages
    expected = "ConnectionError" if fault == "refused" else "TimeoutError"
    for line in outages:
        assert line["level"] == "error"
        assert line["detail"].startswith(f"Redis store {front.url}"), line
        assert f"unavailable: {expected}: " in line["detail"], line
    assert not [line for line in lines if line["event"] == "oauth_error"
                and line.get("error") == "temporarily_unavailable"]

    await front.restore()
    tokens = await world.proxy.tokens()
    assert (await world.proxy.introspect(tokens["access_token"]))["active"] is True


async def _assert_unavailable(name: str, resp: aiohttp.ClientResponse) -> None:
    if name in ("/authorize", "/native/authorize"):
        # the client and its redirect URI are verified: the app hears of it, with its state
        if name == "/authorize":
            assert resp.status == 302, name
            params = app_redirect_params(resp)
        else:
            body = await resp.json()
            assert (resp.status, body["action"]) == (200, "call"), name
            assert body["url"].startswith(APP_REDIRECT + "?")
            params = query_of(body["url"])
        assert params["error"] == "temporarily_unavailable", name
        assert params["state"]
        return
    assert resp.status == 503, (name, resp.status, await resp.text())
    assert resp.headers["Retry-After"] == "1", name
    if resp.content_type == "text/html":  # a browser path whose client is not known yet
        assert "<code>temporarily_unavailable</code>" in await resp.text(), name
    else:
        assert (await resp.json())["error"] == "temporarily_unavailable", name


# --- 500 concurrent requests on one instance: its pool of 64 Redis connections runs out

CONCURRENT = 500


@pytest.fixture
def many_sockets() -> None:
    """Room for 500 client sockets, 500 server sockets and the pool, in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def _burst(world: World, token: str) -> tuple[Counter[int], float]:
    """CONCURRENT introspections at once, each on a connection of its own: how many got
    which status, and the slowest one's seconds."""
    url = f"{world.proxy.issuer}/introspect"
    headers = {"Authorization": aiohttp.encode_basic_auth(*RS_PLAIN)}

    async def one(http: aiohttp.ClientSession) -> tuple[int, float]:
        started = time.monotonic()
        async with http.post(url, data={"token": token}, headers=headers) as resp:
            await resp.read()
            return resp.status, time.monotonic() - started

    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        results = await asyncio.gather(*(one(http) for _ in range(CONCURRENT)))
    return Counter(status for status, _ in results), max(seconds for _, seconds in results)


@pytest.mark.usefixtures("many_sockets")
async def test_pool_exhaustion_is_200_or_503_never_500(
    world_factory: WorldFactory, front: RedisFront, store_prefix: str
) -> None:
    """A request waits at most 0.5 s for one of the 64 pooled connections
    (BlockingConnectionPool timeout), then at most 0.5 s for Redis (socket timeout).
    With Redis stuck, 500 requests all end about a second after the same burst against
    a Redis that answers, instead of queueing behind each other for 500 / 64 rounds of
    0.5 s (4 s) as an unbounded pool wait would make them."""
    world: World = await world_factory(store=StoreSettings(url=front.url, prefix=store_prefix))
    token = (await world.proxy.tokens())["access_token"]

    statuses, answering = await _burst(world, token)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > CONCURRENT // 2, statuses

    front.blackhole()
    statuses, stuck = await _burst(world, token)
    assert statuses == {503: CONCURRENT}, statuses
    # pool wait + socket timeout, on top of what answering 500 requests takes here
    assert stuck < answering + 1.5, (answering, stuck)


# --- a hanging bank fails its own logins on its own timeout, and only those


async def test_a_hanging_bank_times_out_alone(world_factory: WorldFactory) -> None:
    timeout = 0.5
    world: World = await world_factory(bank_a_overrides={"timeout": timeout})
    world.bank_a.token_delay = 2 * timeout  # answers after the proxy gave up
    proxy = world.proxy

    async def login_at_a() -> tuple[dict[str, str], str, float]:
        started = time.monotonic()
        resp, login = await proxy.authorize(acr_values=ACR_A)
        final = await proxy.follow(resp)
        return app_redirect_params(final), login.state, time.monotonic() - started

    hanging = asyncio.create_task(login_at_a())
    for _ in range(100):  # until the proxy waits on bank A's token endpoint
        if any(r.path == "/token" for r in world.bank_a.requests):
            break
        await asyncio.sleep(0.01)
    started = time.monotonic()
    others = await asyncio.gather(*(proxy.login(acr_values=ACR_B) for _ in range(5)))
    others_took = time.monotonic() - started
    assert not hanging.done(), "bank B's logins waited for bank A"
    for login in others:
        assert login.params["code"] and login.params["state"] == login.state
    tokens = await proxy.exchange(others[0])
    assert tokens.status == 200, await tokens.text()

    params, state, took = await hanging
    assert params["error"] == "temporarily_unavailable"
    assert (params["state"], params["iss"]) == (state, proxy.issuer)
    assert "code" not in params
    assert timeout <= took < timeout + 0.5, took
    assert others_took < timeout
