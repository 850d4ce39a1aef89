"""The Redis store on Cluster and Sentinel, against servers of our own (tests/redisfarm.py).

The whole contract runs on Cluster in test_store_conformance.py; here is what only a
topology does: a cluster client's first moments, a master demoted under the pool.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from proxy.config.settings import StoreSettings
from proxy.store import Consumed, Store, StoreUnavailable, open_store
from tests.redisfarm import HOST, SERVICE, Cluster, SentinelFarm

NOW = 1_700_000_000


def sha(value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).rstrip(b"=").decode()


async def grant_ids(store: Store) -> set[str]:
    return {r["grant_id"] async for records in store.scan("grant", batch=5) for r in records}


async def test_cluster_store_takes_a_burst_before_it_knows_the_slots(
    redis_cluster: Cluster, cluster_prefix: str
) -> None:
    """A fresh instance behind a load balancer gets many requests at once. redis-py's
    cluster client, asked before it has the slot map, sent keyed commands to random
    masters and broke its own connections on the MOVED refresh (StoreUnavailable, and
    an AttributeError that would have been a 500)."""
    store = open_store(StoreSettings(url=redis_cluster.url, cluster=True, prefix=cluster_prefix))
    try:
        ids = [secrets.token_urlsafe(16) for _ in range(40)]
        results = await asyncio.gather(
            *(store.hit("rate", "one counter", 60) for _ in range(20)),
            *(store.upsert("code", i, {"grant_id": i}, 60) for i in ids[:20]),
            *(store.consume("code", i, now=NOW, marker_ttl=60) for i in ids[20:]),
            *(store.upsert("grant", i, {"grant_id": i}, 60) for i in ids[:20]),
            *(grant_ids(store) for _ in range(3)),  # SCAN on every master, then MGETs
            return_exceptions=True,
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        counts = sorted(hit[0] for hit in results[:20])  # type: ignore[index]
        assert counts == list(range(1, 21))
        assert await grant_ids(store) == set(ids[:20])
    finally:
        await store.close()


async def test_sentinel_failover_while_the_old_master_lives(redis_sentinel: SentinelFarm) -> None:
    """A failover with the old master alive (SENTINEL FAILOVER, a healed partition): it
    turns replica, and the connections the pool holds to it answer writes with READONLY.
    redis-py makes that a ConnectionError and asks Sentinel again: a write that may not be
    sent twice is a StoreUnavailable (503), one that may is sent to the new master, and
    every later call goes there."""
    store = open_store(StoreSettings(url=redis_sentinel.url, prefix="a2a-test:"))
    try:
        ids = [secrets.token_urlsafe(16) for _ in range(8)]
        # several connections in the pool, all to the master
        await asyncio.gather(*(store.upsert("code", i, {"grant_id": "g1"}, 60) for i in ids))
        master = aioredis.Redis(host=HOST, port=redis_sentinel.master.port)
        try:
            assert await master.execute_command("WAIT", 1, 2000) == 1
        finally:
            await master.aclose()

        await asyncio.to_thread(
            redis_sentinel.sentinel.client.execute_command, "SENTINEL", "FAILOVER", SERVICE
        )
        new = await asyncio.to_thread(redis_sentinel.wait_for_failover)
        # what the sentinel does to the old master once it next looks at it (INFO, every
        # 10 s); until then a pooled connection writes to the old master, and what it
        # writes is lost when it turns replica: set min-replicas-to-write on the master.
        await asyncio.to_thread(
            redis_sentinel.master.client.execute_command, "REPLICAOF", HOST, new.port
        )

        with pytest.raises(StoreUnavailable, match="The previous master is now a slave"):
            await store.consume("code", ids[0], now=NOW, marker_ttl=60)  # sent once
        await store.upsert("code", ids[1], {"grant_id": "g2"}, 60)  # resent to the new one
        assert await store.consume("code", ids[0], now=NOW, marker_ttl=60) == Consumed(
            payload={"grant_id": "g1"}, replay=False
        )
        assert await store.find("code", ids[1]) == {"grant_id": "g2"}
        for i in ids[2:]:
            assert await store.find("code", i) == {"grant_id": "g1"}
        assert (await store.hit("rate", "x", 60))[0] == 1
        role = await asyncio.to_thread(new.client.execute_command, "ROLE")
        assert role[0] == "master"
        assert await asyncio.to_thread(new.client.dbsize) >= len(ids) + 1
    finally:
        await store.close()


MASTER_PASSWORD = "master-" + "p" * 20
SENTINEL_PASSWORD = "sentinel-" + "s" * 20


@pytest.fixture
def secured_sentinel() -> Iterator[SentinelFarm]:
    """Sentinel and the servers with passwords of their own, and TLS only (a CA made for
    the test): no plain port listens."""
    farm = SentinelFarm(password=MASTER_PASSWORD, sentinel_password=SENTINEL_PASSWORD,
                        tls=True)
    try:
        yield farm
    finally:
        farm.stop()


async def test_sentinel_over_tls_with_its_own_password(secured_sentinel: SentinelFarm) -> None:
    """rediss+sentinel://: TLS to the sentinel and the master; the master's password
    before @, the sentinel's as sentinel_password. It rides through a failover."""
    farm = secured_sentinel
    assert farm.url.startswith("rediss+sentinel://:")
    store = open_store(StoreSettings(url=farm.url, prefix="a2a-test:"))
    try:
        code = secrets.token_urlsafe(16)
        await store.upsert("code", code, {"grant_id": "g1"}, 60)
        assert await store.consume("code", code, now=NOW, marker_ttl=60) == Consumed(
            payload={"grant_id": "g1"}, replay=False)
        assert (await store.hit("rate", "x", 60))[0] == 1
        # the write reached the replica over TLS, with the master's password
        master = aioredis.Redis(host=HOST, port=farm.master.port, password=MASTER_PASSWORD,
                                ssl=True, ssl_ca_certs=str(farm.tls.ca) if farm.tls else None)
        try:
            assert await master.execute_command("WAIT", 1, 2000) == 1
        finally:
            await master.aclose()

        farm.master.kill()
        new = await asyncio.to_thread(farm.wait_for_failover)
        for _ in range(40):  # a few 503s while the client finds the new master
            try:
                await store.upsert("code", "after", {"grant_id": "g2"}, 60)
                break
            except StoreUnavailable:
                await asyncio.sleep(0.1)
        assert await store.find("code", "after") == {"grant_id": "g2"}
        assert await asyncio.to_thread(new.client.get, "a2a-test:code:" + sha(code)) is not None
    finally:
        await store.close()


def without(url: str, option: str) -> str:
    return re.sub(rf"[?&]{option}=[^&]*", "", url).replace("/mymaster&", "/mymaster?")


# what the store's error (logged with the 503) says went wrong
WHY = {
    "no sentinel password": "AuthenticationError",
    "wrong sentinel password": "AuthenticationError: invalid username-password pair",
    "wrong master password": "AuthenticationError: invalid username-password pair",
    "no TLS": "ConnectionError",
    "not the CA": "CERTIFICATE_VERIFY_FAILED",
}


@pytest.mark.parametrize("case", sorted(WHY))
async def test_sentinel_secured_wrong_is_a_fast_clean_503(
    secured_sentinel: SentinelFarm, case: str
) -> None:
    """Each way of getting the URL wrong is a StoreUnavailable (a 503) within the store's
    timeouts, saying why and naming each sentinel by its address, with no password."""
    url = secured_sentinel.url
    if case == "no sentinel password":
        url = without(url, "sentinel_password")
    elif case == "wrong sentinel password":
        url = url.replace(SENTINEL_PASSWORD, "x" * 20)
    elif case == "wrong master password":
        url = url.replace(MASTER_PASSWORD, "x" * 20)
    elif case == "no TLS":
        url = without(url, "ssl_ca_certs").replace("rediss+", "redis+")
    else:  # the system's CAs do not know the test CA
        url = without(url, "ssl_ca_certs")
    store = open_store(StoreSettings(url=url, prefix="a2a-test:"))
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await store.upsert("code", "c1", {"grant_id": "g1"}, 60)
        assert time.monotonic() - started < 2.0
        assert WHY[case] in str(caught.value), caught.value
        if case != "wrong master password":  # the sentinels' answer
            port = secured_sentinel.sentinel.port
            assert f"No master found for 'mymaster' : sentinel {HOST}:{port} - " in str(
                caught.value)
        assert MASTER_PASSWORD not in str(caught.value)
        assert SENTINEL_PASSWORD not in str(caught.value)
    finally:
        await store.close()
