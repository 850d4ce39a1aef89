"""The embedded store (``memory://``) for the one-process demo.

It keeps what Redis would keep, the same way: JSON strings under the same
hashed keys, each with an expiry, and the same consume markers. Values are
serialized on write and parsed on read, so no caller can change stored state
through a reference it still holds. Nothing awaits inside an operation, so each
one is atomic on the event loop, as a Lua script is on Redis.

Nothing is shared between processes: run one process, or use Redis.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import orjson

from proxy.store.base import Consumed
from proxy.store.keys import (
    encode_record,
    is_marker,
    new_marker,
    record_key,
    replay_payload,
    settled_marker,
)


class MemoryStore:
    """Expired entries are invisible at once, dropped when next touched, and
    swept out every ``sweep_interval`` seconds so the dict cannot grow forever."""

    def __init__(
        self,
        prefix: str = "a2a:",
        *,
        sweep_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._prefix = prefix
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._next_sweep = clock() + sweep_interval
        # key -> (JSON text, expires_at on self._clock)
        self._entries: dict[str, tuple[str, float]] = {}

    def __len__(self) -> int:
        """Entries held, expired or not (for tests and metrics)."""
        return len(self._entries)

    async def upsert(self, kind: str, id: str, payload: Mapping[str, Any], ttl: int) -> None:
        text = encode_record(payload, ttl)
        self._put(record_key(self._prefix, kind, id), text, self._clock() + ttl)

    async def add(self, kind: str, id: str, payload: Mapping[str, Any], ttl: int) -> bool:
        text = encode_record(payload, ttl)
        key = record_key(self._prefix, kind, id)
        if self._get(key) is not None:
            return False
        self._put(key, text, self._clock() + ttl)
        return True

    async def replace(self, kind: str, id: str, payload: Mapping[str, Any], ttl: int) -> bool:
        text = encode_record(payload, ttl)
        key = record_key(self._prefix, kind, id)
        entry = self._get(key)
        if entry is None or is_marker(orjson.loads(entry[0])):
            return False
        self._put(key, text, self._clock() + ttl)
        return True

    async def find(self, kind: str, id: str) -> dict[str, Any] | None:
        entry = self._get(record_key(self._prefix, kind, id))
        if entry is None:
            return None
        value: dict[str, Any] = orjson.loads(entry[0])
        return None if is_marker(value) else value

    async def find_many(self, items: Sequence[tuple[str, str]]) -> list[dict[str, Any] | None]:
        return [await self.find(kind, id) for kind, id in items]

    async def upsert_many(self, items: Sequence[tuple[str, str, Mapping[str, Any], int]]
                          ) -> None:  # fmt: skip
        for kind, id, payload, ttl in items:
            await self.upsert(kind, id, payload, ttl)

    async def add_many(self, items: Sequence[tuple[str, str, Mapping[str, Any], int]]
                       ) -> list[bool]:  # fmt: skip
        return [await self.add(kind, id, payload, ttl) for kind, id, payload, ttl in items]

    async def consume(
        self,
        kind: str,
        id: str,
        *,
        now: float,
        marker_ttl: int | None,
        note: Mapping[str, Any] | None = None,
    ) -> Consumed | None:
        key = record_key(self._prefix, kind, id)
        entry = self._get(key)
        if entry is None:
            return None
        text, expires_at = entry
        value: dict[str, Any] = orjson.loads(text)
        if is_marker(value):
            return Consumed(payload=replay_payload(value), replay=True)
        if marker_ttl is not None:
            expires_at = self._clock() + marker_ttl
        marker = orjson.dumps(new_marker(value, now, note)).decode()
        self._put(key, marker, expires_at)
        return Consumed(payload=value, replay=False)

    async def settle(self, kind: str, id: str, note: Mapping[str, Any]) -> bool:
        key = record_key(self._prefix, kind, id)
        entry = self._get(key)
        if entry is None:
            return False
        text, expires_at = entry
        value: dict[str, Any] = orjson.loads(text)
        if not is_marker(value):
            return False
        self._put(key, orjson.dumps(settled_marker(value, note)).decode(), expires_at)
        return True

    async def destroy(self, kind: str, id: str) -> None:
        self._entries.pop(record_key(self._prefix, kind, id), None)

    async def revoke_grant(self, grant_id: str) -> None:
        await self.destroy("grant", grant_id)

    async def scan(self, kind: str, *, batch: int = 500) -> AsyncIterator[list[dict[str, Any]]]:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        kind_prefix = record_key(self._prefix, kind, "").rpartition(":")[0] + ":"
        # the keys as they are now: writes between two batches must not break the loop;
        # a key deleted or expired meanwhile is skipped when its turn comes
        keys = [key for key in self._entries if key.startswith(kind_prefix)]
        for start in range(0, len(keys), batch):
            records = []
            for key in keys[start : start + batch]:
                entry = self._get(key)
                if entry is None or not entry[0].startswith("{"):  # gone, or a counter
                    continue
                value: dict[str, Any] = orjson.loads(entry[0])
                if not is_marker(value):
                    records.append(value)
            if records:
                yield records

    async def hit(self, kind: str, id: str, window: int) -> tuple[int, int]:
        if window < 1:
            raise ValueError(f"window must be at least 1 second, got {window}")
        key = record_key(self._prefix, kind, id)
        entry = self._get(key)
        now = self._clock()
        if entry is None:
            self._put(key, "1", now + window)
            return 1, window
        count, expires_at = int(entry[0]) + 1, entry[1]
        self._put(key, str(count), expires_at)
        # to the millisecond, as Redis' PTTL: a float's noise must not add a second
        return count, max(1, math.ceil(round(expires_at - now, 3)))

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()

    def _get(self, key: str) -> tuple[str, float] | None:
        entry = self._entries.get(key)
        if entry is not None and entry[1] <= self._clock():
            del self._entries[key]
            return None
        return entry

    def _put(self, key: str, text: str, expires_at: float) -> None:
        self._entries[key] = (text, expires_at)
        now = self._clock()
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_interval
            for expired in [k for k, (_, exp) in self._entries.items() if exp <= now]:
                del self._entries[expired]
