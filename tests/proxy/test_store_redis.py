"""What only the Redis store does: fail fast when Redis is gone, recover when it is back."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.sentinel import (
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from proxy.config.settings import StoreSettings
from proxy.store import StoreUnavailable, open_store
from proxy.store.memory import MemoryStore
from proxy.store.redis import Batcher, RedisStore, ResendIdempotent, resendable

NOW = 1_700_000_000


class RedisServer(Protocol):
    """What the ``redis_server_factory`` fixture (tests/conftest.py) hands out."""

    url: str
    port: int

    def stop(self) -> None: ...

    def start(self) -> None: ...


async def scan_all(store: RedisStore) -> None:
    async for _ in store.scan("grant"):
        pass


def operations(store: RedisStore) -> dict[str, Callable[[], Awaitable[object]]]:
    return {
        "upsert": lambda: store.upsert("code", "c1", {"grant_id": "g1"}, 60),
        "replace": lambda: store.replace("code", "c1", {"grant_id": "g1"}, 60),
        "find": lambda: store.find("code", "c1"),
        "consume": lambda: store.consume("code", "c1", now=NOW, marker_ttl=60),
        "destroy": lambda: store.destroy("code", "c1"),
        "revoke_grant": lambda: store.revoke_grant("g1"),
        "scan": lambda: scan_all(store),
        "ping": lambda: store.ping(),
    }


async def test_stopped_redis_fails_fast_and_recovers(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    store = open_store(StoreSettings(url=server.url, prefix="a2a-test:"))
    assert isinstance(store, RedisStore)
    try:
        for op in operations(store).values():
            await op()

        server.stop()
        for name, op in operations(store).items():
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match=re.escape("Redis store redis://127.0.0.1")):
                await op()
            assert time.monotonic() - started < 1.0, name

        server.start()  # same port, empty
        assert await store.find("code", "c1") is None
        for op in operations(store).values():
            await op()
        await store.upsert("code", "c2", {"grant_id": "g2"}, 60)
        assert await store.find("code", "c2") == {"grant_id": "g2"}
    finally:
        await store.close()


async def test_redis_restart_under_pooled_connections(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    """Connections opened before a restart are stale; the first call after it still works."""
    server = redis_server_factory()
    store = open_store(StoreSettings(url=server.url, prefix="a2a-test:"))
    try:
        await store.upsert("code", "c1", {}, 60)
        server.stop()
        server.start()
        started = time.monotonic()
        await store.upsert("code", "c1", {"v": 1}, 60)
        assert await store.find("code", "c1") == {"v": 1}
        assert time.monotonic() - started < 1.0
    finally:
        await store.close()


async def test_error_names_the_store_without_secrets(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    server.stop()
    url = server.url.replace("redis://", "redis://user:s3cr3t@") + "?password=s3cr3t"
    store = open_store(StoreSettings(url=url))
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await store.ping()
        assert f"127.0.0.1:{server.port}/0" in str(caught.value)
        assert "s3cr3t" not in str(caught.value)
    finally:
        await store.close()


def test_client_is_built_to_fail_fast() -> None:
    store = open_store(StoreSettings(url="redis://127.0.0.1:6379/0"))
    assert isinstance(store, RedisStore)
    client = store._client
    assert isinstance(client, Redis)
    pool = client.connection_pool
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.max_connections == 64
    assert pool.timeout == 0.5
    kwargs = pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == 0.25
    assert kwargs["socket_timeout"] == 0.5
    assert kwargs["health_check_interval"] == 0
    retry = kwargs["retry"]
    assert isinstance(retry, ResendIdempotent)
    assert retry.get_retries() == 0  # outside an idempotent command: sent once
    assert retry._supported_errors == (RedisConnectionError,)  # a timeout is never retried


@pytest.mark.parametrize(
    ("command", "again"),
    [
        (("GET", "k"), True),  # find
        (("PING",), True),
        (("DEL", "k"), True),  # destroy, revoke_grant
        (("SCAN", 0, "MATCH", "a2a:grant:*", "COUNT", 500), True),  # scan
        (("MGET", "k1", "k2"), True),  # find_many, scan
        (("SET", "k", "v", "EX", 60), True),  # upsert
        (("SET", "k", "NX", "EX", 60), True),  # "NX" as the value is no option
        (("SET", "k", "v", "EX", 60, "NX"), False),  # add: a second send reports a clash
        (("SET", "k", "v", "GET"), False),
        (("EVALSHA", "0" * 40, 1, "k", NOW, 60), False),  # consume, replace, hit
        (("EVAL", "return 1", 0), False),
        (("INCR", "k"), False),
        (("SCRIPT", "LOAD", "return 1"), False),
        ((), False),
    ],
)
def test_only_idempotent_commands_are_sent_again(command: tuple[object, ...], again: bool) -> None:
    """Which commands redis-py may send again after a broken connection (the behaviour
    itself: tests/security/test_faults.py)."""
    assert resendable(command) is again


def test_every_topology_gets_the_policy() -> None:
    cluster = open_store(StoreSettings(url="redis://127.0.0.1:1/0", cluster=True))
    sentinel = open_store(StoreSettings(url="redis+sentinel://127.0.0.1:1/mymaster"))
    assert isinstance(cluster, RedisStore) and isinstance(sentinel, RedisStore)
    assert isinstance(cluster._client, RedisCluster)
    assert isinstance(cluster._client.retry, ResendIdempotent)
    assert isinstance(sentinel._client, Redis)
    sentinel_kwargs = sentinel._client.connection_pool.connection_kwargs
    assert isinstance(sentinel_kwargs["retry"], ResendIdempotent)


def test_open_store_picks_the_store() -> None:
    assert isinstance(open_store(StoreSettings(url="memory://")), MemoryStore)
    for url in ("redis://localhost/0", "rediss://localhost/0", "unix:///run/redis.sock?db=1"):
        assert isinstance(open_store(StoreSettings(url=url)), RedisStore)


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match=r"unknown scheme 'mongodb://'.*memory://.*redis://"):
        open_store(StoreSettings(url="mongodb://localhost/0"))


async def test_cluster_and_sentinel_construct() -> None:
    """No Cluster or Sentinel to run against yet: they are built right and fail fast."""
    cluster = open_store(StoreSettings(url="redis://127.0.0.1:1/0", cluster=True))
    assert isinstance(cluster, RedisStore) and isinstance(cluster._client, RedisCluster)

    sentinel = open_store(
        StoreSettings(url="redis+sentinel://u:pw@127.0.0.1:1,[::1]:2,localhost/mymaster/2")
    )
    assert isinstance(sentinel, RedisStore) and isinstance(sentinel._client, Redis)
    pool = sentinel._client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["password"] == "pw"
    hosts = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in sentinel._also_close
    ]
    assert hosts == [("127.0.0.1", 1), ("::1", 2), ("localhost", 26379)]

    for store in (cluster, sentinel):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        assert time.monotonic() - started < 1.0
        await store.close()


async def test_sentinel_credentials_and_tls_reach_each_client() -> None:
    """rediss+sentinel://: TLS (and the options that go with it) to the sentinels and the
    master alike; the master's credentials before @, the sentinels' own as options."""
    url = ("rediss+sentinel://app:m%40ster@127.0.0.1:1,[::1]/mymaster/3?sentinel_username=watch"
           "&sentinel_password=s%26pw&ssl_ca_certs=/etc/ca.pem&ssl_certfile=/etc/c.pem"
           "&ssl_keyfile=/etc/c.key&ssl_check_hostname=false")
    store = open_store(StoreSettings(url=url))
    assert isinstance(store, RedisStore)
    pool = store._client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.connection_class is SentinelManagedSSLConnection
    master = pool.connection_kwargs
    assert (master["username"], master["password"], master["db"]) == ("app", "m@ster", 3)
    tls = {"ssl_ca_certs": "/etc/ca.pem", "ssl_certfile": "/etc/c.pem",
           "ssl_keyfile": "/etc/c.key", "ssl_check_hostname": False}
    assert {k: master[k] for k in tls} == tls
    for sentinel in store._also_close:
        kwargs = sentinel.connection_pool.connection_kwargs
        assert sentinel.connection_pool.connection_class is SSLConnection
        assert (kwargs["username"], kwargs["password"]) == ("watch", "s&pw")
        assert {k: kwargs[k] for k in tls} == tls
        assert kwargs["socket_timeout"] == 0.5
    # without TLS and without sentinel credentials: plain connections, none sent
    plain = open_store(StoreSettings(url="redis+sentinel://:pw@127.0.0.1:1/mymaster"))
    assert isinstance(plain, RedisStore)
    assert plain._client.connection_pool.connection_class is SentinelManagedConnection
    (sentinel,) = plain._also_close
    assert sentinel.connection_pool.connection_class is Connection
    assert sentinel.connection_pool.connection_kwargs.get("password") is None
    for opened in (store, plain):
        with pytest.raises(StoreUnavailable) as caught:
            await opened.ping()
        assert "pw" not in str(caught.value) and "m@ster" not in str(caught.value)
        await opened.close()


def test_a_bad_sentinel_url_names_every_problem_and_no_password() -> None:
    with pytest.raises(ValueError) as caught:
        open_store(StoreSettings(
            url="redis+sentinel://:hunter2@h:0/mymaster?ssl_ca_certs=/x&nope=1"))
    message = str(caught.value)
    assert "'h:0' is not a sentinel's host[:port]" in message
    assert "option 'ssl_ca_certs' needs TLS" in message and "unknown option 'nope'" in message
    assert "hunter2" not in message


def test_sentinel_url_needs_a_service() -> None:
    with pytest.raises(ValueError, match="service_name"):
        open_store(StoreSettings(url="redis+sentinel://127.0.0.1:26379"))


# --- auto-pipelining (proxy.store.redis.Batcher) -----------------------------------------


@pytest.fixture
async def batched(redis_url: str, store_prefix: str,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[RedisStore, list[int]]]:
    """A store on the tests' Redis, and the size of every batch it sends."""
    store = open_store(StoreSettings(url=redis_url, prefix=store_prefix))
    assert isinstance(store, RedisStore)
    sizes: list[int] = []
    send = Batcher._send

    async def counted(self: Batcher, batch: list[Any], **options: Any) -> None:
        sizes.append(len(batch))
        await send(self, batch, **options)

    monkeypatch.setattr(Batcher, "_send", counted)
    yield store, sizes
    await store.close()


async def test_concurrent_calls_share_one_pipeline_each_gets_its_answer(
    batched: tuple[RedisStore, list[int]],
) -> None:
    store, sizes = batched
    ids = [f"c{n}" for n in range(40)]
    await asyncio.gather(*(store.upsert("code", i, {"n": n}, 60) for n, i in enumerate(ids)))
    assert max(sizes) == 40  # the 40 SETs went as one pipeline
    sizes.clear()
    found = await asyncio.gather(*(store.find_many([("code", i), ("code", "nope")])
                                   for i in ids), store.find("code", ids[7]))
    assert found[:40] == [[{"n": n}, None] for n in range(40)]
    assert found[40] == {"n": 7}
    assert sizes == [41]
    sizes.clear()
    assert await store.find("code", ids[0]) == {"n": 0}
    assert sizes == [1]  # alone: sent as it is


async def test_reads_writes_and_scripts_of_one_round_share_one_pipeline(
    batched: tuple[RedisStore, list[int]],
) -> None:
    store, sizes = batched
    await store.upsert_many([("code", "c1", {"grant_id": "g1"}, 60),
                             ("grant", "g1", {"sub": "alice"}, 60)])
    await store.consume("code", "warm-up", now=NOW, marker_ttl=60)  # the script is loaded
    sizes.clear()
    consumed, grant, _ = await asyncio.gather(
        store.consume("code", "c1", now=NOW, marker_ttl=60), store.find("grant", "g1"),
        store.upsert("at", "t1", {"iat": NOW}, 60))
    assert consumed is not None and consumed.payload == {"grant_id": "g1"}
    assert grant == {"sub": "alice"}
    assert await store.find("at", "t1") == {"iat": NOW}
    assert sizes[0] == 3  # consume (EVALSHA), MGET and SET: one pipeline


async def test_adds_and_destroys_join_the_batch(
    batched: tuple[RedisStore, list[int]],
) -> None:
    """A burst of them (replays revoking a grant each) goes as one pipeline on one
    connection, not a connection each; SET NX keeps its answer: one add of an id wins."""
    store, sizes = batched
    await store.upsert_many([("grant", f"g{n}", {"n": n}, 60) for n in range(10)])
    sizes.clear()
    results = await asyncio.gather(*(store.add("par", "same", {"n": n}, 60) for n in range(10)),
                                   *(store.destroy("grant", f"g{n}") for n in range(10)))
    assert sorted(results[:10]) == [False] * 9 + [True]
    assert sizes == [20]
    assert await store.find_many([("grant", f"g{n}") for n in range(10)]) == [None] * 10


async def test_one_failing_command_fails_only_its_caller(
    batched: tuple[RedisStore, list[int]], redis_url: str, store_prefix: str,
) -> None:
    store, sizes = batched
    await store.upsert("code", "good", {"v": 1}, 60)
    raw = Redis.from_url(redis_url)
    try:
        # a key of another type under a record's key: MGET answers nil, SET overwrites;
        # an MGET of no key at all is Redis' own error, for this caller only
        await raw.rpush(store._key("code", "list"), "x")
        sizes.clear()

        async def no_keys() -> object:
            assert store._batch is not None
            return await store._batch.send("MGET")

        results = await asyncio.gather(store.find("code", "good"), no_keys(),
                                       store.find("code", "list"), return_exceptions=True)
    finally:
        await raw.delete(store._key("code", "list"))
        await raw.aclose()
    assert results[0] == {"v": 1}
    assert isinstance(results[1], Exception)
    assert results[2] is None
    assert sizes == [3]


async def test_a_failing_batch_fails_every_caller_fast(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    store = open_store(StoreSettings(url=server.url, prefix="a2a-test:"))
    try:
        await store.upsert("code", "c1", {"v": 1}, 60)
        server.stop()
        started = time.monotonic()
        results = await asyncio.gather(*(store.find("code", "c1") for _ in range(10)),
                                       return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert time.monotonic() - started < 1.0
    finally:
        await store.close()


async def test_a_cancelled_caller_leaves_the_others_answered(
    batched: tuple[RedisStore, list[int]],
) -> None:
    store, sizes = batched
    await store.upsert("code", "c1", {"v": 1}, 60)
    sizes.clear()
    first = asyncio.ensure_future(store.find("code", "c1"))
    second = asyncio.ensure_future(store.find("code", "c1"))
    await asyncio.sleep(0)  # both have asked
    first.cancel()
    assert await second == {"v": 1}
    assert first.cancelled()
    assert sizes == [2]


async def test_scripts_run_in_batches_and_survive_a_lost_script_cache(
    batched: tuple[RedisStore, list[int]], redis_url: str,
) -> None:
    """Concurrent consumes share one pipeline; when Redis has lost its scripts (a
    restart, SCRIPT FLUSH) the NOSCRIPT answer means the script did not run: it is
    loaded and sent again, and each code is consumed exactly once."""
    store, sizes = batched
    for n in range(5):
        await store.upsert("code", f"c{n}", {"grant_id": f"g{n}"}, 60)
    raw = Redis.from_url(redis_url)
    try:
        await raw.script_flush()
    finally:
        await raw.aclose()
    sizes.clear()
    taken = await asyncio.gather(*(store.consume("code", f"c{n}", now=NOW, marker_ttl=60)
                                   for n in range(5)))
    assert [t.payload if t else None for t in taken] == [{"grant_id": f"g{n}"}
                                                          for n in range(5)]
    assert sizes[0] == 5  # one pipeline; NOSCRIPT for each, then sent again together
    again = await asyncio.gather(*(store.consume("code", f"c{n}", now=NOW, marker_ttl=60)
                                   for n in range(5)))
    assert all(a is not None and a.replay for a in again)
