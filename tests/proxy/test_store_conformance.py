"""One contract, two stores: every test here runs against the embedded store, one Redis,
and a Redis Cluster of three masters (where a command that spans slots would fail)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio
from redis.asyncio.cluster import RedisCluster

from proxy.config.settings import StoreSettings
from proxy.store import Consumed, Store, StoreUnavailable, open_store
from proxy.store.memory import MemoryStore

Peek = Callable[[], Awaitable[dict[str, float]]]

NOW = 1_700_000_000
WARM_UP_TRIES = 10


@pytest.fixture(params=["memory", "redis", "cluster"])
def backend(request: pytest.FixtureRequest) -> StoreSettings:
    """The embedded store, one Redis, or a Redis Cluster of three masters."""
    if request.param == "memory":
        return StoreSettings(url="memory://", prefix="a2a-test:")
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return StoreSettings(url=url, prefix=request.getfixturevalue("store_prefix"))
    cluster = request.getfixturevalue("redis_cluster")
    prefix = request.getfixturevalue("cluster_prefix")
    return StoreSettings(url=cluster.url, cluster=True, prefix=prefix)


@pytest.fixture
async def store(backend: StoreSettings) -> AsyncIterator[Store]:
    opened = open_store(backend)
    # The Redis store fails fast (a 0.25 s connect timeout), and on a loaded test machine
    # a first connection to a cluster node has missed it. These tests are about the
    # contract, not about connecting (tests/security/test_faults.py is): the connections
    # are opened first, with a few tries.
    for attempt in range(WARM_UP_TRIES):
        try:
            await opened.ping()
            break
        except StoreUnavailable:
            if attempt == WARM_UP_TRIES - 1:
                raise
            await asyncio.sleep(0.2)
    yield opened
    await opened.close()


@pytest.fixture
def peek(store: Store, backend: StoreSettings) -> Peek:
    """Every key the store holds for this test, with its remaining TTL in seconds."""

    async def memory_keys() -> dict[str, float]:
        assert isinstance(store, MemoryStore)
        now = time.monotonic()
        return {key: exp - now for key, (_, exp) in store._entries.items() if exp > now}

    async def redis_keys() -> dict[str, float]:
        client_type = RedisCluster if backend.cluster else redis.asyncio.Redis
        client = client_type.from_url(backend.url)  # the cluster one scans every master
        try:
            found: dict[str, float] = {}
            async for key in client.scan_iter(match=f"{backend.prefix}*"):
                found[key.decode()] = await client.pttl(key) / 1000
            return found
        finally:
            await client.aclose()

    return memory_keys if isinstance(store, MemoryStore) else redis_keys


def new_id() -> str:
    return "a2a_ac_" + secrets.token_urlsafe(32)


def sha256_b64url(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def test_upsert_find_roundtrip(store: Store) -> None:
    code = new_id()
    payload = {"grant_id": "g1", "nested": {"list": [1, 2.5, "ü", None], "empty": {}}, "n": 2**53}
    await store.upsert("code", code, payload, 60)
    assert await store.find("code", code) == payload
    assert await store.find("code", new_id()) is None
    assert await store.find("token", code) is None  # kinds are separate namespaces


async def test_find_many_answers_each_as_find_does(store: Store) -> None:
    # many ids, so on the cluster they fall in different slots (one MGET per slot)
    live = [new_id() for _ in range(12)]
    for n, code in enumerate(live):
        await store.upsert("code", code, {"n": n}, 60)
    consumed, missing = live.pop(), new_id()
    await store.consume("code", consumed, now=NOW, marker_ttl=60)
    items = [("code", c) for c in live] + [("code", consumed), ("code", missing),
                                          ("other", live[0])]
    assert await store.find_many(items) == [
        {"n": n} for n in range(11)] + [None, None, None]  # fmt: skip
    assert await store.find_many([]) == []


async def test_upsert_many_writes_each_with_its_ttl(store: Store, peek: Peek) -> None:
    ids = [new_id() for _ in range(6)]
    await store.upsert_many([("code", c, {"n": n}, 60 + 60 * n) for n, c in enumerate(ids)])
    assert await store.find_many([("code", c) for c in ids]) == [{"n": n} for n in range(6)]
    ttls = sorted((await peek()).values())
    assert [round(t / 60) for t in ttls] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="ttl"):
        await store.upsert_many([("code", new_id(), {"v": 1}, 0)])
    await store.upsert_many([])


async def test_add_many_writes_where_nothing_is(store: Store) -> None:
    """A code exchange's retry writes the tokens it chose once: what the first attempt
    wrote (or a refresh token's marker since) is never overwritten."""
    kept, used, fresh = new_id(), new_id(), new_id()
    await store.upsert("code", kept, {"v": "first"}, 60)
    await store.upsert("code", used, {"v": "first"}, 60)
    await store.consume("code", used, now=NOW, marker_ttl=60)
    assert await store.add_many([("code", kept, {"v": "again"}, 60),
                                 ("code", used, {"v": "again"}, 60),
                                 ("code", fresh, {"v": "new"}, 60)]) == [False, False, True]
    assert await store.add_many([]) == []
    assert await store.find_many([("code", kept), ("code", fresh)]) == [
        {"v": "first"}, {"v": "new"}]
    again = await store.consume("code", used, now=NOW, marker_ttl=60)
    assert again is not None and again.replay  # the marker is still there


async def test_upsert_replaces(store: Store) -> None:
    code = new_id()
    await store.upsert("code", code, {"v": 1}, 60)
    await store.upsert("code", code, {"v": 2}, 60)
    assert await store.find("code", code) == {"v": 2}


async def open_connections(store: Store, n: int) -> None:
    """The connections first (a Cluster's client opens one per concurrent command): ``n``
    connects at once can exceed the store's 0.25 s connect timeout on a loaded test
    machine, and a race test is about the race, not the connect. A connect that times
    out here is tried again by the race itself."""
    await asyncio.gather(*(store.find("code", new_id()) for _ in range(n)),
                         return_exceptions=True)


async def test_add_only_when_absent(store: Store) -> None:
    jti, consumed = new_id(), new_id()
    assert await store.add("jti", jti, {"v": 1}, 60) is True
    assert await store.add("jti", jti, {"v": 2}, 60) is False
    assert await store.find("jti", jti) == {"v": 1}
    await store.upsert("code", consumed, {"v": 1}, 60)
    await store.consume("code", consumed, now=NOW, marker_ttl=60)
    assert await store.add("code", consumed, {"v": 2}, 60) is False  # a marker counts
    racers = new_id()
    await open_connections(store, 20)
    results = await asyncio.gather(*(store.add("jti", racers, {"n": n}, 60) for n in range(20)))
    assert results.count(True) == 1


async def test_replace_only_a_live_record(store: Store, peek: Peek) -> None:
    live, consumed, revoked, missing = new_id(), new_id(), new_id(), new_id()
    for code in (live, consumed, revoked):
        await store.upsert("code", code, {"v": 1}, 60)
    await store.consume("code", consumed, now=NOW, marker_ttl=60)
    await store.destroy("code", revoked)

    assert await store.replace("code", live, {"v": 2}, 300) is True
    assert await store.find("code", live) == {"v": 2}
    assert await store.replace("code", consumed, {"v": 2}, 300) is False
    assert await store.replace("code", revoked, {"v": 2}, 300) is False  # not resurrected
    assert await store.replace("code", missing, {"v": 2}, 300) is False

    assert await store.find("code", revoked) is None
    assert await store.find("code", missing) is None
    assert await store.consume("code", consumed, now=NOW, marker_ttl=60) == Consumed(
        payload={"grant_id": None, "consumed_at": NOW}, replay=True
    )
    ttls = sorted((await peek()).values())
    assert len(ttls) == 2
    assert 0 < ttls[0] <= 60 and 290 < ttls[1] <= 300  # the marker's, and the new TTL


async def test_stored_state_is_a_copy(store: Store) -> None:
    code = new_id()
    scopes = ["openid"]
    await store.upsert("code", code, {"grant_id": "g1", "scopes": scopes}, 60)
    scopes.append("email")
    found = await store.find("code", code)
    assert found == {"grant_id": "g1", "scopes": ["openid"]}
    found["scopes"].append("profile")
    assert await store.find("code", code) == {"grant_id": "g1", "scopes": ["openid"]}


async def test_payload_must_not_carry_the_marker_field(store: Store) -> None:
    code = new_id()
    await store.upsert("code", code, {}, 60)
    with pytest.raises(ValueError, match="__consumed"):
        await store.upsert("code", new_id(), {"__consumed": True}, 60)
    with pytest.raises(ValueError, match="__consumed"):
        await store.replace("code", code, {"__consumed": True}, 60)


async def test_ttl_below_one_second_is_refused(store: Store) -> None:
    code = new_id()
    await store.upsert("code", code, {}, 60)
    with pytest.raises(ValueError, match="ttl"):
        await store.upsert("code", new_id(), {}, 0)
    with pytest.raises(ValueError, match="ttl"):
        await store.replace("code", code, {}, 0)


async def test_expiry(store: Store) -> None:
    """One sleep for everything about TTLs running out."""
    plain, keep_ttl, own_ttl = new_id(), new_id(), new_id()
    for code in (plain, keep_ttl, own_ttl):
        await store.upsert("code", code, {"grant_id": "g1"}, 1)
    assert (await store.consume("code", keep_ttl, now=NOW, marker_ttl=None)) is not None
    assert (await store.consume("code", own_ttl, now=NOW, marker_ttl=30)) is not None

    await asyncio.sleep(1.2)

    assert await store.find("code", plain) is None
    assert await store.consume("code", plain, now=NOW, marker_ttl=30) is None
    # marker_ttl=None: the marker went when the record would have
    assert await store.consume("code", keep_ttl, now=NOW, marker_ttl=30) is None
    # marker_ttl=30: the marker outlives the record
    assert await store.consume("code", own_ttl, now=NOW + 1, marker_ttl=30) == Consumed(
        payload={"grant_id": "g1", "consumed_at": NOW}, replay=True
    )


async def test_keys_are_hashes_of_ids(store: Store, peek: Peek) -> None:
    code, grant = new_id(), "grant-" + secrets.token_hex(16)
    await store.upsert("code", code, {"grant_id": grant}, 60)
    await store.upsert("grant", grant, {"sub": "alice"}, 60)

    keys = await peek()
    assert len(keys) == 2
    for key in keys:
        assert code not in key and grant not in key
    suffixes = {":".join(key.rsplit(":", 2)[-2:]) for key in keys}
    assert suffixes == {f"code:{sha256_b64url(code)}", f"grant:{sha256_b64url(grant)}"}


async def test_every_key_has_a_ttl(store: Store, peek: Peek) -> None:
    ids = [new_id() for _ in range(4)]
    for code in ids:
        await store.upsert("code", code, {"grant_id": "g1"}, 100)
    await store.consume("code", ids[0], now=NOW, marker_ttl=None)
    await store.consume("code", ids[1], now=NOW, marker_ttl=10)
    await store.consume("code", ids[1], now=NOW, marker_ttl=10)  # replay changes nothing
    await store.destroy("code", ids[2])
    await store.upsert("grant", "g1", {"sub": "alice"}, 200)

    ttls = await peek()
    assert len(ttls) == 4
    assert all(ttl > 0 for ttl in ttls.values()), ttls
    by_hash = {key.rsplit(":", 1)[-1]: ttl for key, ttl in ttls.items()}
    by_id = {code: by_hash.get(sha256_b64url(code)) for code in ids}
    assert by_id[ids[2]] is None  # destroyed
    assert 90 < (by_id[ids[0]] or 0) <= 100  # marker kept the record's remaining TTL
    assert 0 < (by_id[ids[1]] or 0) <= 10  # marker got its own
    assert 90 < (by_id[ids[3]] or 0) <= 100


async def test_consume_once_then_replay(store: Store) -> None:
    code = new_id()
    payload = {"grant_id": "g1", "client_id": "shop", "scopes": ["openid"]}
    await store.upsert("code", code, payload, 60)

    first = await store.consume("code", code, now=NOW, marker_ttl=60)
    assert first == Consumed(payload=payload, replay=False)

    second = await store.consume("code", code, now=NOW + 5, marker_ttl=60)
    assert second == Consumed(payload={"grant_id": "g1", "consumed_at": NOW}, replay=True)
    assert await store.find("code", code) is None


async def test_consume_unknown(store: Store) -> None:
    assert await store.consume("code", new_id(), now=NOW, marker_ttl=60) is None


async def test_concurrent_consume_has_one_winner(store: Store) -> None:
    code = new_id()
    await store.upsert("code", code, {"grant_id": "g1"}, 60)
    await open_connections(store, 20)
    results = await asyncio.gather(
        *(store.consume("code", code, now=NOW + i, marker_ttl=60) for i in range(20))
    )
    assert all(result is not None for result in results)
    winners = [r for r in results if r is not None and not r.replay]
    assert len(winners) == 1
    assert winners[0].payload == {"grant_id": "g1"}
    replays = {(r.payload["grant_id"], r.payload["consumed_at"]) for r in results if r and r.replay}
    assert len(replays) == 1 and replays.pop()[0] == "g1"


async def test_consume_keeps_its_moment_to_the_millisecond(store: Store) -> None:
    """A window measured from ``consumed_at`` (refresh_grace) is exact only if the moment
    is: whole seconds on both sides are up to a second off."""
    ms, finer = new_id(), new_id()
    for code in (ms, finer):
        await store.upsert("code", code, {"grant_id": "g1"}, 60)
    await store.consume("code", ms, now=NOW + 0.123, marker_ttl=60)
    await store.consume("code", finer, now=NOW + 0.98765, marker_ttl=None)
    again = await store.consume("code", ms, now=NOW + 5, marker_ttl=60)
    assert again == Consumed(payload={"grant_id": "g1", "consumed_at": NOW + 0.123}, replay=True)
    again = await store.consume("code", finer, now=NOW + 5, marker_ttl=60)
    assert again is not None and again.payload["consumed_at"] == NOW + 0.988


# numbers a JSON round trip through Redis' cjson would round, and a "/" it would escape
EXACT = {"grant_id": "g1", "big": 2**53 + 1, "tenth": 0.1, "uri": "https://a.example/cb",
         "nested": {"list": [1, None, "ü"], "empty": {}}}


async def test_consume_with_a_note_keeps_the_record_and_the_note(store: Store) -> None:
    code = new_id()
    await store.upsert("code", code, EXACT, 60)
    note = {"pending": "sealed.value", "n": 2**53 + 1}
    first = await store.consume("code", code, now=NOW, marker_ttl=60, note=note)
    assert first == Consumed(payload=EXACT, replay=False)
    assert await store.find("code", code) is None  # a marker, as without a note
    again = await store.consume("code", code, now=NOW + 1, marker_ttl=60, note={"other": 1})
    assert again == Consumed(payload={"grant_id": "g1", "consumed_at": NOW,
                                      "record": EXACT, "note": note}, replay=True)


async def test_settle_changes_the_note_of_a_marker_only(store: Store, peek: Peek) -> None:
    code, live, missing = new_id(), new_id(), new_id()
    await store.upsert("code", code, EXACT, 100)
    await store.upsert("code", live, {"grant_id": "g2"}, 100)
    await store.consume("code", code, now=NOW + 0.5, marker_ttl=30, note={"state": "pending"})

    assert await store.settle("code", code, {"state": "done", "uri": "a/b"}) is True
    assert await store.settle("code", code, {"state": "done", "uri": "a/b"}) is True  # again
    # the record the marker kept is dropped; grant_id, consumed_at and the TTL stay
    assert await store.consume("code", code, now=NOW + 9, marker_ttl=60) == Consumed(
        payload={"grant_id": "g1", "consumed_at": NOW + 0.5,
                 "note": {"state": "done", "uri": "a/b"}}, replay=True)
    assert await store.settle("code", live, {"state": "done"}) is False
    assert await store.find("code", live) == {"grant_id": "g2"}  # a live record untouched
    assert await store.settle("code", missing, {"state": "done"}) is False
    assert await store.consume("code", missing, now=NOW, marker_ttl=60) is None  # none made
    ttls = sorted((await peek()).values())
    assert len(ttls) == 2 and 0 < ttls[0] <= 30 and 90 < ttls[1] <= 100


@pytest.mark.parametrize("payload", [{"grant_id": None}, {"other": 1}])
async def test_consume_without_grant_id(store: Store, payload: dict[str, object]) -> None:
    code = new_id()
    await store.upsert("code", code, payload, 60)
    assert await store.consume("code", code, now=NOW, marker_ttl=None) == Consumed(
        payload=payload, replay=False
    )
    assert await store.consume("code", code, now=NOW, marker_ttl=None) == Consumed(
        payload={"grant_id": None, "consumed_at": NOW}, replay=True
    )


async def test_destroy(store: Store, peek: Peek) -> None:
    code, consumed = new_id(), new_id()
    await store.upsert("code", code, {"grant_id": "g1"}, 60)
    await store.upsert("code", consumed, {"grant_id": "g1"}, 60)
    await store.consume("code", consumed, now=NOW, marker_ttl=60)

    await store.destroy("code", code)
    await store.destroy("code", consumed)  # a marker goes too
    await store.destroy("code", new_id())  # missing: not an error

    assert await store.find("code", code) is None
    assert await store.consume("code", consumed, now=NOW, marker_ttl=60) is None
    assert await peek() == {}


async def test_revoke_grant(store: Store) -> None:
    grant, other = "grant-" + secrets.token_hex(16), "grant-" + secrets.token_hex(16)
    await store.upsert("grant", grant, {"sub": "alice"}, 60)
    await store.upsert("grant", other, {"sub": "bob"}, 60)
    await store.revoke_grant(grant)
    await store.revoke_grant(grant)  # twice: not an error
    assert await store.find("grant", grant) is None
    assert await store.find("grant", other) == {"sub": "bob"}


async def test_ping(store: Store) -> None:
    await store.ping()


# -- hit: counters for rate limits ----------------------------------------------


async def test_hit_counts_within_a_window(store: Store, peek: Peek) -> None:
    address, other = "203.0.113.7", "203.0.113.8"
    assert await store.hit("rate", address, 60) == (1, 60)
    assert await store.hit("rate", address, 60) == (2, 60)
    count, reset_in = await store.hit("rate", address, 30)  # the first window stays
    assert count == 3 and 59 <= reset_in <= 60
    assert await store.hit("rate", other, 60) == (1, 60)
    assert (await store.hit("rate-b", address, 60))[0] == 1  # kinds are separate

    keys = await peek()
    assert len(keys) == 3 and all(0 < ttl <= 60 for ttl in keys.values()), keys
    for key in keys:
        assert address not in key and other not in key
    suffixes = {":".join(key.rsplit(":", 2)[-2:]) for key in keys}
    assert f"rate:{sha256_b64url(address)}" in suffixes


async def test_hit_is_atomic(store: Store) -> None:
    key = new_id()
    results = await asyncio.gather(*(store.hit("rate", key, 60) for _ in range(25)))
    assert sorted(count for count, _ in results) == list(range(1, 26))


async def test_hit_window_resets(store: Store) -> None:
    key = new_id()
    await store.hit("rate", key, 1)
    assert (await store.hit("rate", key, 1)) == (2, 1)
    await asyncio.sleep(1.1)
    assert await store.hit("rate", key, 1) == (1, 1)


async def test_hit_window_below_one_second_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="window"):
        await store.hit("rate", new_id(), 0)


# -- scan: every record of one kind, for operator revocation ----------------------


def new_grant_id() -> str:
    return "a2a_gr_" + secrets.token_urlsafe(32)


async def scanned(store: Store, kind: str, batch: int) -> list[list[dict[str, Any]]]:
    return [records async for records in store.scan(kind, batch=batch)]


async def test_scan_yields_the_live_records_of_one_kind_in_batches(store: Store) -> None:
    # 20 grants: on the cluster, on every master (all on one: a chance of 3 in 3**20)
    grants = {new_grant_id(): {"sub": f"sub-{i % 3}", "client_id": "shop"} for i in range(20)}
    for grant_id, fields in grants.items():
        await store.upsert("grant", grant_id, {"grant_id": grant_id, **fields}, 60)
    # a consumed record leaves a marker under its key: skipped, as find skips it
    consumed = new_grant_id()
    await store.upsert("grant", consumed, {"grant_id": consumed}, 60)
    assert await store.consume("grant", consumed, now=NOW, marker_ttl=60) is not None
    # other kinds, one whose name starts with "grant", and a counter
    await store.upsert("grants", new_grant_id(), {"grant_id": "other kind"}, 60)
    await store.upsert("code", new_id(), {"grant_id": next(iter(grants))}, 60)
    await store.hit("rate", "client:shop", 60)

    batches = await scanned(store, "grant", batch=7)

    assert len(batches) >= 3 and all(1 <= len(records) <= 7 for records in batches)
    records = [record for batch in batches for record in batch]
    # a scan may yield a record twice (Redis SCAN during a resize); these are the records
    found = {r["grant_id"]: {"sub": r["sub"], "client_id": r["client_id"]} for r in records}
    assert found == grants
    # one batch of everything; the other kinds hold just what was written there
    assert len(await scanned(store, "grant", batch=500)) == 1
    assert await scanned(store, "grants", batch=2) == [[{"grant_id": "other kind"}]]
    assert await scanned(store, "rate", batch=2) == []  # a counter is no record


async def test_scan_of_an_empty_kind(store: Store) -> None:
    assert await scanned(store, "grant", batch=1) == []
    await store.upsert("code", new_id(), {"grant_id": "g1"}, 60)
    assert await scanned(store, "grant", batch=500) == []
    with pytest.raises(ValueError, match="batch"):
        await scanned(store, "grant", batch=0)
    with pytest.raises(ValueError, match="kind"):
        await scanned(store, "gr:ant", batch=10)


async def test_scan_matches_the_prefix_literally(backend: StoreSettings) -> None:
    """A prefix with glob characters is no pattern: ``a?*[x]:`` does not match ``abzx:``."""
    glob, plain = (open_store(dataclasses.replace(backend, prefix=backend.prefix + suffix))
                   for suffix in ("a?*[x]:", "abzx:"))
    try:
        await glob.upsert("grant", "g1", {"grant_id": "g1"}, 60)
        await plain.upsert("grant", "g2", {"grant_id": "g2"}, 60)
        assert await scanned(glob, "grant", batch=10) == [[{"grant_id": "g1"}]]
        assert await scanned(plain, "grant", batch=10) == [[{"grant_id": "g2"}]]
    finally:
        await glob.close()
        await plain.close()


async def test_scan_never_yields_expired_records(store: Store) -> None:
    short, long = new_grant_id(), new_grant_id()
    await store.upsert("grant", short, {"grant_id": short}, 1)
    await store.upsert("grant", long, {"grant_id": long}, 60)
    before = await scanned(store, "grant", batch=1)
    assert {record["grant_id"] for batch in before for record in batch} == {short, long}
    await asyncio.sleep(1.2)
    assert await scanned(store, "grant", batch=1) == [[{"grant_id": long}]]


async def test_scan_sees_every_record_that_lasts_through_it(store: Store) -> None:
    """Records written and deleted between two batches break nothing: each record that
    exists for the whole scan is seen; the others may or may not be."""
    lasting = {new_grant_id() for _ in range(20)}
    doomed = {new_grant_id() for _ in range(10)}
    born: set[str] = set()
    for grant_id in lasting | doomed:
        await store.upsert("grant", grant_id, {"grant_id": grant_id}, 60)
    seen: set[str] = set()
    async for records in store.scan("grant", batch=4):
        seen.update(record["grant_id"] for record in records)
        if not born:
            for grant_id in doomed:
                await store.destroy("grant", grant_id)
            born = {new_grant_id() for _ in range(30)}
            await store.upsert_many([("grant", g, {"grant_id": g}, 60) for g in born])
    assert lasting <= seen <= lasting | doomed | born
    # a scan left early leaves the store as it was
    async for _ in store.scan("grant", batch=2):
        break
    assert len([r for b in await scanned(store, "grant", batch=500) for r in b]) >= 50


# The embedded store only: expired entries must not pile up.


async def test_memory_store_sweeps_expired_entries() -> None:
    now = [0.0]
    store = MemoryStore("a2a-test:", sweep_interval=60, clock=lambda: now[0])
    for _ in range(100):
        await store.upsert("code", new_id(), {}, 10)
    now[0] = 30.0
    await store.upsert("code", new_id(), {}, 100)
    assert len(store) == 101  # expired, not yet swept
    now[0] = 61.0
    await store.upsert("code", new_id(), {}, 100)
    assert len(store) == 2
