"""The Redis store: one JSON string per key, each set with a TTL.

It fails fast. A Redis that is down or stuck must turn into a 503 within a
second, not hang requests: short socket timeouts, one immediate retry on a
broken connection for idempotent commands only (so the first call after Redis
restarts goes through on a fresh connection, and a consume is never sent twice),
a bounded pool that callers wait on only briefly, and every redis-py error
turned into :class:`StoreUnavailable`.

``redis://``, ``rediss://`` and ``unix://`` URLs name one server (``cluster:
true`` treats the URL as one node of a Redis Cluster, and the client discovers
the rest); ``redis+sentinel://h1:26379,h2:26379/service_name[/db]`` asks
Sentinel for the service's master (``rediss+sentinel://`` over TLS, with the sentinels'
own credentials as options: :mod:`proxy.config.sentinel`). Every operation touches one
key, so all of them work on Cluster, with no hash tags
(tests/proxy/test_store_conformance.py runs the contract on a three-master cluster).

A Sentinel failover is a short outage, not an error of ours: until Sentinel names
the new master, calls raise StoreUnavailable (connection refused, then redis-py's
MasterNotFoundError); a connection still open to a demoted master gets READONLY,
which redis-py turns into a ConnectionError that sends the next connection to
Sentinel for the new master (a resendable command goes there at once). Replication
is asynchronous: a write acknowledged just before the master dies may be lost.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractContextManager, aclosing, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    ConnectionError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxy.config.sentinel import SENTINEL_SCHEMES, parse_sentinel_url
from proxy.config.settings import StoreSettings
from proxy.config.urls import redacted
from proxy.store.base import Consumed, StoreUnavailable
from proxy.store.keys import (
    MARKER_FIELD,
    encode_record,
    is_marker,
    json_number,
    record_key,
    replay_payload,
)

# KEYS[1] the record; ARGV[1] now (a JSON number), ARGV[2] marker TTL in seconds or "" to
# keep the record's remaining TTL, ARGV[3] the note (a JSON object) or "". Returns nil (no
# record), {1, marker} (consumed before) or {0, record} (consumed now, marker left in its
# place). The marker is spliced together as text: the record and the note are kept
# exactly as written, never decoded and encoded again (cjson rounds numbers).
_CONSUME = f"""
local raw = redis.call('GET', KEYS[1])
if not raw then return nil end
local ok, value = pcall(cjson.decode, raw)
if not ok or type(value) ~= 'table' then
  return redis.error_reply('a2a consume: value is not a JSON object')
end
if value['{MARKER_FIELD}'] then return {{1, raw}} end
local grant_id = value['grant_id']
local grant = 'null'
if grant_id ~= nil and grant_id ~= cjson.null then grant = cjson.encode(grant_id) end
local marker = '{{"{MARKER_FIELD}":true,"grant_id":' .. grant .. ',"consumed_at":' .. ARGV[1]
if ARGV[3] ~= '' then
  marker = marker .. ',"record":' .. raw .. ',"note":' .. ARGV[3]
end
marker = marker .. '}}'
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], marker, 'KEEPTTL')
else
  redis.call('SET', KEYS[1], marker, 'EX', ARGV[2])
end
return {{0, raw}}
"""

# KEYS[1] a consume marker; ARGV[1] its new note (a JSON object). Keeps the marker's
# grant_id, consumed_at and TTL, drops the record it kept: 1 if there was a marker, else 0
# (nothing written over a live record or in place of nothing).
_SETTLE = f"""
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, value = pcall(cjson.decode, raw)
if not ok or type(value) ~= 'table' or not value['{MARKER_FIELD}'] then return 0 end
local grant = 'null'
if value['grant_id'] ~= nil and value['grant_id'] ~= cjson.null then
  grant = cjson.encode(value['grant_id'])
end
local at = 'null'
if type(value['consumed_at']) == 'number' then at = cjson.encode(value['consumed_at']) end
redis.call('SET', KEYS[1], '{{"{MARKER_FIELD}":true,"grant_id":' .. grant ..
  ',"consumed_at":' .. at .. ',"note":' .. ARGV[1] .. '}}', 'KEEPTTL')
return 1
"""

# KEYS[1] the record; ARGV[1] the new value, ARGV[2] its TTL in seconds. Sets it
# only over a live record (not a consume marker): 1 if it did, else 0.
_REPLACE = f"""
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, value = pcall(cjson.decode, raw)
if not ok or type(value) ~= 'table' or value['{MARKER_FIELD}'] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""

# KEYS[1] the counter; ARGV[1] the window in seconds. INCR, and a TTL when the counter
# has none (it was just created), in one round trip. Returns {count, ms until reset}.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local ms = redis.call('PTTL', KEYS[1])
if ms < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ms = tonumber(ARGV[1]) * 1000
end
return {count, ms}
"""

# redis-py sends a command again after its connection broke, not knowing whether the
# first send ran. Only a command that does the same however often it runs may be sent
# again: a consume that ran and is sent again finds its own marker and reports a
# replay, which revokes the grant; a SET NX reports a clash; a counter counts twice.
# A SCAN step reads: sent again with its cursor, it answers the same keys (or, had the
# table been resized meanwhile, some of them twice, which a scan allows anyway).
# Everything else (the scripts, SET NX or GET, INCR, ...) is sent once.
RESENDABLE = frozenset({"GET", "MGET", "PING", "SET", "DEL", "SCAN"})
_SENT_ONCE_SET_OPTIONS = frozenset({"NX", "GET"})  # SET with these answers differently twice
_resendable_now: ContextVar[bool] = ContextVar("a2a_redis_resendable", default=False)
T = TypeVar("T")


def resendable(args: tuple[Any, ...]) -> bool:
    """Whether this command (redis-py's ``execute_command`` arguments) may be sent twice."""
    name = str(args[0]).upper() if args else ""
    if name == "SET":  # SET key value [options]
        return not any(str(a).upper() in _SENT_ONCE_SET_OPTIONS for a in args[3:])
    return name in RESENDABLE


class ResendIdempotent(Retry):
    """redis-py's retry, given only to the command a client below is executing if it is
    :func:`resendable`; any other command (or one sent outside them) is tried once.
    Connections and RedisCluster ask this object, so one policy covers every topology."""

    def get_retries(self) -> int:
        return super().get_retries() if _resendable_now.get() else 0

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        if _resendable_now.get():
            return await super().call_with_retry(do, fail, is_retryable, with_failure_count)
        # tried once; ``fail`` still runs on the error, so the broken connection is dropped
        once = Retry(NoBackoff(), 0, self._supported_errors)
        return await once.call_with_retry(do, fail, is_retryable, with_failure_count)


class _Redis(Redis):
    async def execute_command(self, *args: Any, **options: Any) -> Any:
        token = _resendable_now.set(resendable(args))
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        finally:
            _resendable_now.reset(token)


class _RedisCluster(RedisCluster):
    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        # redis-py picks a command's target before it learns the slot map: on a client
        # that has none yet (the first commands, or after an error dropped it), a keyed
        # command is sent to a random master, answered MOVED, and the refresh that
        # follows breaks the connections other commands are opening at that moment
        # (errors and even AttributeError under concurrency). Learn the map first; once
        # known this is one attribute check, and concurrent callers share one refresh.
        if self._initialize:
            await self.initialize()
        token = _resendable_now.set(resendable(args))
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            _resendable_now.reset(token)


def _fail_fast(max_connections: int) -> dict[str, Any]:
    """Connection options every client gets, whatever the topology."""
    return {
        "socket_connect_timeout": 0.25,
        "socket_timeout": 0.5,
        "health_check_interval": 0,
        # redis-py's default is 3 retries with exponential backoff, on timeouts
        # too: seconds, not milliseconds, against a dead server. One immediate
        # retry on a broken connection, of an idempotent command only; a timeout is
        # not retried.
        "retry": ResendIdempotent(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        "max_connections": max_connections,
        "decode_responses": True,
    }


Entry = tuple[tuple[Any, ...], "asyncio.Future[Any]", bool]  # command, its caller, resendable


class BatchTracer(Protocol):
    """Gives each batch a span, when traces are on (:mod:`proxy.observability.tracing`
    builds it; the store imports nothing of tracing). Off, the Batcher has none and pays
    one attribute check per command."""

    def caller(self) -> object:
        """What identifies the calling request's span (taken when a command joins)."""

    def span(self, commands: Sequence[str], callers: Sequence[object]
             ) -> AbstractContextManager[object]:  # fmt: skip
        """The span of one batch sent: its commands' names (never keys or values), a link
        to each calling request's span."""


class Batcher:
    """Auto-pipelining: the commands asked for while the event loop runs one round of
    callbacks (under load, those of many requests) go to Redis as one pipeline, on one
    connection, in one round trip. redis-py's cost per command (taking a connection from
    the pool, its retry and timeout wrappers) is then paid once per batch, not once per
    request: about 1.5 times the introspections per second (docs/performance.md). A lone
    command is sent as it is.

    Each command is sent as often as it would be alone. If the connection breaks while
    a batch is in flight, the commands that may run twice (:func:`resendable`: reads,
    plain SET and DEL) are sent again, once, on a fresh connection; the others (the
    scripts: a consume) fail, since each may have run. A timeout is not sent again.
    Each caller gets its own command's answer or error; a batch that fails fails each
    of its callers. Commands of different requests are concurrent anyway; one
    request's commands, awaited one after the other, keep their order."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._waiting: list[Entry] = []  # the commands waiting for this round's batch
        # traces on: the batch spans' maker, the callers of this round, script names by sha
        self.tracer: BatchTracer | None = None
        self._callers: list[object] = []
        self.scripts: dict[str, str] = {}

    def send(self, *command: Any) -> asyncio.Future[Any]:
        """``command``: the arguments of redis-py's ``execute_command``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((command, future, resendable(command)))
        if self.tracer is not None:
            self._callers.append(self.tracer.caller())
        if len(self._waiting) == 1:
            # after the callbacks already due: the commands of this round join the batch
            loop.call_soon(self._start)
        return future

    def _start(self) -> None:
        batch, self._waiting = self._waiting, []
        callers, self._callers = self._callers, []
        try:
            task = asyncio.get_running_loop().create_task(
                self._send(batch, again=True, callers=callers))
        except Exception as exc:  # never leave a caller waiting for ever
            _fail(batch, exc)
            return
        _BATCHES.add(task)
        task.add_done_callback(_BATCHES.discard)

    async def _send(self, batch: list[Entry], *, again: bool, callers: Sequence[object] = ()
                    ) -> None:  # fmt: skip
        """``again``: the resendable commands may be sent again if the connection breaks
        (False: they already were). ``callers``: the requests' spans, with traces on."""
        try:
            results = await self._traced([command for command, _, _ in batch], callers)
        except ConnectionError as exc:
            if not again:
                _fail(batch, exc)
                return
            # sent again, once, on a fresh connection: only what may run twice
            _fail([entry for entry in batch if not entry[2]], exc)
            rest = [entry for entry in batch if entry[2]]
            if rest:
                await self._send(rest, again=False, callers=callers)
            return
        except BaseException as exc:  # a timeout, a cancellation
            _fail(batch, exc if isinstance(exc, Exception)
                  else ConnectionError("the batch was cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future, _), result in zip(batch, results, strict=False):
            if future.done():  # its request was cancelled meanwhile
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
        # never leave a caller waiting for ever
        _fail(batch[len(results):], ConnectionError("Redis gave no answer to this command"))

    async def _traced(self, commands: list[tuple[Any, ...]], callers: Sequence[object]
                      ) -> list[Any]:  # fmt: skip
        tracer = self.tracer
        if tracer is None:
            return await self._execute(commands)
        with tracer.span([self._name(command) for command in commands], callers):
            return await self._execute(commands)

    def _name(self, command: tuple[Any, ...]) -> str:
        """A command's name for its span: ``EVALSHA consume`` for one of the scripts."""
        name = str(command[0]).upper()
        if name == "EVALSHA" and len(command) > 1:
            return f"{name} {self.scripts.get(str(command[1]), 'script')}"
        return name

    async def _execute(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Every command on one pooled connection, written at once, the replies read in
        order; a command's error reply (ResponseError) is its result. One timeout (the
        connection's socket timeout) for the whole batch. Written here rather than with
        redis-py's pipeline, which for each command packs it through its encoder, wraps
        its reply's read in a timeout of its own, runs its response callback and records
        its observability figures: most of what a small request cost in Redis calls."""
        pool = self._client.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            try:
                async with asyncio.timeout(connection.socket_timeout):
                    await connection.send_packed_command(_pack(commands), check_health=False)
                    results: list[Any] = []
                    for _ in commands:
                        try:
                            results.append(await connection.read_response(timeout=math.inf))
                        except ResponseError as exc:  # read whole: the stream stays in step
                            results.append(exc)
                    return results
            except TimeoutError:
                raise RedisTimeoutError("Timeout reading from the store") from None
        except BaseException:
            # whatever was in flight on it is unknown: the connection is not reused
            await connection.disconnect(nowait=True)
            raise
        finally:
            await pool.release(connection)


def _pack(commands: list[tuple[Any, ...]]) -> bytes:
    """The commands in Redis' protocol (RESP arrays of bulk strings). Arguments are
    str (UTF-8) or int, as the store sends them."""
    out = bytearray()
    for command in commands:
        out += b"*%d\r\n" % len(command)
        for arg in command:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out += b"$%d\r\n" % len(data)
            out += data
            out += b"\r\n"
    return bytes(out)


def _fail(entries: list[Entry], exc: Exception) -> None:
    for _, future, _ in entries:
        if not future.done():
            future.set_exception(exc)


# the batches in flight (the event loop keeps only weak references to tasks)
_BATCHES: set[asyncio.Task[None]] = set()


class RedisStore:
    def __init__(
        self,
        client: Redis | RedisCluster,
        prefix: str,
        name: str,
        *,
        also_close: tuple[Redis, ...] = (),
    ) -> None:
        """``name`` names the store in errors; it must hold no secret (see :func:`redacted`).

        ``also_close``: clients :meth:`close` closes too (Sentinel's own).
        """
        self._client = client
        self._also_close = also_close
        self._prefix = prefix
        self._name = name
        # one Redis: the reads and plain writes of many requests share pipelines (a
        # Cluster's client routes each command to its node itself)
        self._batch = None if isinstance(client, RedisCluster) else Batcher(client)
        self._consume = client.register_script(_CONSUME)
        self._replace = client.register_script(_REPLACE)
        self._settle = client.register_script(_SETTLE)
        self._hit = client.register_script(_HIT)

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, max_connections: int = 64) -> RedisStore:
        url = settings.url
        options = _fail_fast(max_connections)
        client: Redis | RedisCluster
        sentinels: tuple[Redis, ...] = ()
        if urlsplit(url).scheme.lower() in SENTINEL_SCHEMES:
            client, sentinels = _sentinel_master(url, options)
        elif settings.cluster:
            client = _RedisCluster.from_url(url, **options)
        else:
            # Wait up to 0.5 s for a free connection rather than fail at once: with the
            # 0.5 s socket timeout, a store call ends within about a second even when
            # every connection is taken by a stuck Redis (tests/security/test_faults.py).
            pool = BlockingConnectionPool.from_url(url, timeout=0.5, **options)
            client = _Redis.from_pool(pool)
        name = f"Redis store {redacted(url)}"
        return cls(client, settings.prefix, name, also_close=sentinels)

    def trace_batches(self, tracer: BatchTracer) -> None:
        """Traces on: a span for each batch (on Redis Cluster, commands go as redis-py
        sends them, in no batch, and have none)."""
        if self._batch is not None:
            self._batch.scripts = {script.sha: name for script, name in (
                (self._consume, "consume"), (self._replace, "replace"),
                (self._settle, "settle"), (self._hit, "hit"))}
            self._batch.tracer = tracer

    async def upsert(self, kind: str, id: str, payload: Mapping[str, Any], ttl: int) -> None:
        await self.upsert_many([(kind, id, payload, ttl)])

    async def add(self, kind: str, id: str, payload: Mapping[str, Any], ttl: int) -> bool:
        text = encode_record(payload, ttl)
        with self._translated():
            done = await self._command("SET", self._key(kind, id), text, "EX", ttl, "NX")
        return bool(done)

    async def add_many(self, items: Sequence[tuple[str, str, Mapping[str, Any], int]]
                       ) -> list[bool]:  # fmt: skip
        commands = [("SET", self._key(kind, id), encode_record(payload, ttl), "EX", ttl, "NX")
                    for kind, id, payload, ttl in items]
        if not commands:
            return []
        with self._translated():
            if self._batch is not None:
                # each SET NX joins the batch of this round (sent once, as add's); futures,
                # not a task per command
                done = await asyncio.gather(*(self._batch.send(*c) for c in commands))
            else:
                done = await asyncio.gather(*(self._command(*c) for c in commands))
        return [bool(d) for d in done]

    async def replace(self, kind: str, id: str, payload: Mapping[str, Any], ttl: int) -> bool:
        text = encode_record(payload, ttl)
        with self._translated():
            done = await self._script(self._replace, self._key(kind, id), text, ttl)
        return bool(done)

    async def find(self, kind: str, id: str) -> dict[str, Any] | None:
        (text,) = await self._mget([self._key(kind, id)])
        if text is None:
            return None
        value: dict[str, Any] = orjson.loads(text)
        return None if is_marker(value) else value

    async def find_many(self, items: Sequence[tuple[str, str]]) -> list[dict[str, Any] | None]:
        keys = [self._key(kind, id) for kind, id in items]
        found: list[dict[str, Any] | None] = []
        for text in await self._mget(keys):
            value = None if text is None else orjson.loads(text)
            found.append(None if value is None or is_marker(value) else value)
        return found

    async def upsert_many(self, items: Sequence[tuple[str, str, Mapping[str, Any], int]]
                          ) -> None:  # fmt: skip
        texts = [(self._key(kind, id), encode_record(payload, ttl), ttl)
                 for kind, id, payload, ttl in items]
        if not texts:
            return
        with self._translated():
            if self._batch is not None:
                # each SET joins the batch of this round (plain SETs are resendable)
                await asyncio.gather(*(self._batch.send("SET", key, text, "EX", ttl)
                                       for key, text, ttl in texts))
                return
            pipe = self._client.pipeline(transaction=False)
            for key, text, ttl in texts:
                pipe.set(key, text, ex=ttl)
            # plain SETs write the same however often they run: resendable as a whole
            token = _resendable_now.set(True)
            try:
                # raise_on_error would rewrite a command's error to quote the command,
                # record values included, into a message that reaches the logs
                results = await pipe.execute(raise_on_error=False)
            finally:
                _resendable_now.reset(token)
            failed = next((r for r in results if isinstance(r, Exception)), None)
            if failed is not None:
                raise failed

    async def consume(
        self,
        kind: str,
        id: str,
        *,
        now: float,
        marker_ttl: int | None,
        note: Mapping[str, Any] | None = None,
    ) -> Consumed | None:
        args = [json_number(now), "" if marker_ttl is None else marker_ttl,
                "" if note is None else orjson.dumps(dict(note)).decode()]
        with self._translated():
            result = await self._script(self._consume, self._key(kind, id), *args)
        if result is None:
            return None
        replay, text = result
        value: dict[str, Any] = orjson.loads(text)
        if replay:
            return Consumed(payload=replay_payload(value), replay=True)
        return Consumed(payload=value, replay=False)

    async def settle(self, kind: str, id: str, note: Mapping[str, Any]) -> bool:
        text = orjson.dumps(dict(note)).decode()
        with self._translated():
            done = await self._script(self._settle, self._key(kind, id), text)
        return bool(done)

    async def destroy(self, kind: str, id: str) -> None:
        with self._translated():
            await self._command("DEL", self._key(kind, id))

    async def revoke_grant(self, grant_id: str) -> None:
        await self.destroy("grant", grant_id)

    async def scan(self, kind: str, *, batch: int = 500) -> AsyncIterator[list[dict[str, Any]]]:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        # "{prefix}{kind}:" (the key of an id, up to its hash), matched literally
        kind_prefix = record_key(self._prefix, kind, "").rpartition(":")[0] + ":"
        # RedisCluster.scan_iter runs the SCAN on every master, each with its own cursor
        # until each is done; on one Redis it is the plain SCAN loop
        found = cast(AsyncGenerator[str, None],  # an async generator, typed as an iterator
                     self._client.scan_iter(match=_glob_escape(kind_prefix) + "*", count=batch))
        pending: list[str] = []
        async with aclosing(found) as keys:
            while True:
                with self._translated():
                    key = await anext(keys, None)
                if key is not None:
                    pending.append(key)
                    if len(pending) < batch:
                        continue
                if pending:
                    texts, pending = await self._mget(pending), []
                    records = [r for t in texts if t is not None and (r := _record(t)) is not None]
                    if records:
                        yield records
                if key is None:
                    return

    async def hit(self, kind: str, id: str, window: int) -> tuple[int, int]:
        if window < 1:
            raise ValueError(f"window must be at least 1 second, got {window}")
        with self._translated():
            count, ms = await self._script(self._hit, self._key(kind, id), window)
        return int(count), max(1, math.ceil(int(ms) / 1000))

    async def ping(self) -> None:
        with self._translated():
            await self._client.ping()

    async def close(self) -> None:
        with self._translated():
            for sentinel in self._also_close:
                await sentinel.aclose()
            await self._client.aclose()

    def _key(self, kind: str, id: str) -> str:
        return record_key(self._prefix, kind, id)

    async def _command(self, *args: Any) -> Any:
        """One command: in this round's batch on one Redis (many requests' commands share
        one pipeline and one connection: a burst of them does not open a connection
        each), else as redis-py sends it."""
        if self._batch is None:
            return await self._client.execute_command(*args)
        return await self._batch.send(*args)

    async def _script(self, script: AsyncScript, key: str, *args: Any) -> Any:
        """One of the store's scripts on ``key``: in this round's batch on one Redis (sent
        once), else as redis-py runs a script (EVALSHA, loading it when Redis lacks it)."""
        if self._batch is None:
            return await script(keys=[key], args=list(args))
        try:
            return await self._batch.send("EVALSHA", script.sha, 1, key, *args)
        except NoScriptError:
            # it did not run: Redis lost its script cache (a restart); load, send again
            await self._client.script_load(script.script)
            return await self._batch.send("EVALSHA", script.sha, 1, key, *args)

    async def _mget(self, keys: list[str]) -> list[str | None]:
        """The values of ``keys``, in order (None where there is none): one MGET, or on a
        Redis Cluster one per slot, sent together."""
        if not keys:
            return []
        with self._translated():
            if self._batch is not None:
                texts = await self._batch.send("MGET", *keys)
            elif isinstance(self._client, RedisCluster):
                texts = await self._client.mget_nonatomic(keys)
            else:
                texts = await self._client.mget(keys)
        return cast(list[str | None], texts)  # decode_responses: str, never bytes

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except (RedisError, RedisClusterException) as exc:
            # redis-py's messages name hosts and commands, never values or passwords
            # (Sentinel's repr every sentinel client: each becomes its address, so that
            # why each sentinel failed fits, then all is cut short).
            detail = _CLIENT_REPR.sub(r"sentinel \1:\2", str(exc))[:300]
            raise StoreUnavailable(
                f"{self._name} unavailable: {type(exc).__name__}: {detail}"
            ) from exc


# a redis-py client's repr, as MasterNotFoundError lists one per sentinel: it nests
# three levels (client, pool, connection) and names the connection's host and port
_CLIENT_REPR = re.compile(r"<redis\.asyncio\.client\.Redis\(.*?,host=([^,]*),port=(\d+),"
                          r".*?\)>\)>\)>")


def _record(text: str) -> dict[str, Any] | None:
    """The record a value holds; None for a consume marker or a value that is no JSON
    object (a counter)."""
    if not text.startswith("{"):
        return None
    value: dict[str, Any] = orjson.loads(text)
    return None if is_marker(value) else value


def _glob_escape(text: str) -> str:
    """``text`` as a SCAN MATCH pattern that matches it literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _sentinel_master(url: str, options: dict[str, Any]) -> tuple[Redis, tuple[Redis, ...]]:
    """A Sentinel URL (:mod:`proxy.config.sentinel`): the client of the service's master,
    and the sentinels' clients. The sentinels get the same socket timeouts and retry
    policy, their own credentials, and TLS as the master does."""
    found = parse_sentinel_url(url)
    tls: dict[str, Any] = {"ssl": True, **found.ssl} if found.tls else {}
    master: dict[str, Any] = dict(options, db=found.db, **tls)
    if found.username is not None or found.password is not None:
        master["username"] = found.username
        master["password"] = found.password
    sentinel_options: dict[str, Any] = {
        k: v for k, v in options.items() if k.startswith("socket_") or k == "retry"}
    sentinel_options.update(tls)
    if found.sentinel_username is not None or found.sentinel_password is not None:
        sentinel_options["username"] = found.sentinel_username
        sentinel_options["password"] = found.sentinel_password
    sentinel = Sentinel(list(found.sentinels), sentinel_kwargs=sentinel_options)
    client: Redis = sentinel.master_for(found.service, redis_class=_Redis, **master)
    return client, tuple(sentinel.sentinels)
