"""The store contract (node-oidc-provider's adapter shape).

Records are JSON objects addressed by ``(kind, id)``. ``id`` is the raw token,
code, handle or grant id; a store keeps only ``sha256(id)`` in its keys, never
the id itself. Every record has a TTL: nothing lives forever.

Every atomic operation touches exactly one key, so the same code runs on Redis
Cluster without cross-slot scripts. The one operation that reads a whole kind,
:meth:`Store.scan`, is for operator commands (``app2app-proxy revoke``), never for a
request: its cost grows with the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class StoreUnavailable(Exception):
    """The store did not answer (in time). The HTTP layer turns it into a 503."""


@dataclass(frozen=True)
class Consumed:
    """What :meth:`Store.consume` found.

    ``replay`` False: this call consumed the record; ``payload`` is the record.
    ``replay`` True: an earlier call consumed it; ``payload`` is the marker that
    call left: ``{"grant_id": <the record's grant_id or None>, "consumed_at": <now of that call>}``,
    and, when that call gave a ``note``, ``"record"`` (the record it took) and ``"note"`` (the
    note, or what :meth:`Store.settle` made of it).
    """

    payload: dict[str, Any]
    replay: bool


class Store(Protocol):
    async def upsert(self, kind: str, id: str, payload: Mapping[str, Any], ttl: int) -> None:
        """Create or replace the record; it expires after ``ttl`` seconds (ttl >= 1)."""
        ...

    async def add(self, kind: str, id: str, payload: Mapping[str, Any], ttl: int) -> bool:
        """Create the record only if no record (or marker) has this id; False when one
        does. Two concurrent adds of one id: exactly one gets True."""
        ...

    async def replace(self, kind: str, id: str, payload: Mapping[str, Any], ttl: int) -> bool:
        """Overwrite the record only if it still exists (never resurrects a revoked grant);
        False when it does not."""
        ...

    async def find(self, kind: str, id: str) -> dict[str, Any] | None:
        """The record, or None if it never existed, expired, was destroyed or consumed."""
        ...

    async def find_many(self, items: Sequence[tuple[str, str]]) -> list[dict[str, Any] | None]:
        """``find`` of each ``(kind, id)``, in order, in one round trip (one MGET; on a
        Redis Cluster one per slot, sent together). Each answer is as ``find`` would give
        it; they are not one snapshot."""
        ...

    async def upsert_many(self, items: Sequence[tuple[str, str, Mapping[str, Any], int]]
                          ) -> None:  # fmt: skip
        """``upsert`` of each ``(kind, id, payload, ttl)`` in one round trip (a pipeline).
        Not atomic: after an error, some may have been written."""
        ...

    async def add_many(self, items: Sequence[tuple[str, str, Mapping[str, Any], int]]
                       ) -> list[bool]:  # fmt: skip
        """``add`` of each ``(kind, id, payload, ttl)`` in one round trip (a pipeline):
        which were written. Not atomic."""
        ...

    async def consume(
        self,
        kind: str,
        id: str,
        *,
        now: float,
        marker_ttl: int | None,
        note: Mapping[str, Any] | None = None,
    ) -> Consumed | None:
        """Atomically take a record once.

        The first call gets the record and replaces it with a marker
        ``{"grant_id", "consumed_at": now}`` that lives ``marker_ttl`` seconds
        (None: whatever TTL the record had left). Later calls get the marker with
        ``replay=True``, so a replayed code is told from an unknown one (None).
        Two concurrent calls: exactly one gets ``replay=False``.

        ``now``: seconds since the epoch, kept to the millisecond (finer is rounded), so
        a window measured from it is exact: windows of whole seconds on both sides are a
        second off. ``note``: the marker also keeps the record it replaced and this note
        (the state of what the first call goes on to do; :meth:`settle` changes it), so a
        later call can tell an interrupted first use from a finished one.
        """
        ...

    async def settle(self, kind: str, id: str, note: Mapping[str, Any]) -> bool:
        """Atomically make ``note`` the note of the consume marker under this id, and drop
        the record it kept; its ``grant_id``, ``consumed_at`` and TTL stay. False, and
        nothing written, when there is no marker (a live record, or nothing)."""
        ...

    async def destroy(self, kind: str, id: str) -> None:
        """Delete the record (or marker); deleting a missing record is not an error."""
        ...

    async def revoke_grant(self, grant_id: str) -> None:
        """Destroy the grant record: every token that names this grant stops being valid."""
        ...

    def scan(self, kind: str, *, batch: int = 500) -> AsyncIterator[list[dict[str, Any]]]:
        """Every live record of ``kind``, in lists of at most ``batch`` (batch >= 1), in no
        particular order: an async generator (``async for records in store.scan(...)``).

        Consume markers are skipped, as ``find`` skips them; expired records never appear;
        a key of ``kind`` that holds no JSON object (a ``hit`` counter) is no record and is
        skipped. Keys hold ``sha256(id)``, never the id: what a record is must be read from
        its own fields (a grant's ``grant_id``, ``sub``, ``client_id``).

        Not a snapshot. A record that exists for the whole scan is seen; one written or
        deleted while it runs may or may not be; one may be seen twice (Redis ``SCAN``
        returns a key again when the table is resized meanwhile). A list may hold fewer
        than ``batch`` records (records gone between finding a key and reading it) but is
        never empty. Redis: ``SCAN MATCH {prefix}{kind}:* COUNT batch`` (on a Cluster, on
        every master), one ``MGET`` per ``batch`` keys found: O(all keys in the store) on
        the server, O(records of ``kind``) read by the caller."""
        ...

    async def hit(self, kind: str, id: str, window: int) -> tuple[int, int]:
        """Count one more event for ``(kind, id)``: atomically add 1 to its counter, which
        is created at 1 with a TTL of ``window`` seconds (window >= 1) and keeps that TTL
        as it grows. Returns ``(count, reset_in)``: the count this call made, and the
        seconds (>= 1, rounded up) until the counter expires and counting starts over.
        A fixed window: N concurrent hits on a fresh counter get the counts 1..N."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        ...

    async def close(self) -> None: ...
