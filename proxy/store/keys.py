"""How records are laid out in a store: their keys and their consume markers.

fosite's rule: a token is stored by its hash, never by its value. A key holds
``sha256(id)`` (base64url, no padding), so a dump of the store or a ``MONITOR``
session shows no usable token, code or handle.

Both stores write the same marker when a record is consumed, so they behave
alike: ``{"__consumed": true, "grant_id": ..., "consumed_at": ...}``, and with a
note ``..., "record": {...}, "note": {...}}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from proxy.model.tokens import b64url

# The field that tells a consume marker from a record. Records must not use it.
MARKER_FIELD = "__consumed"


def record_key(prefix: str, kind: str, id: str) -> str:
    """``{prefix}{kind}:{b64url(sha256(id))}``; the raw id never appears in it."""
    if not kind or ":" in kind:
        raise ValueError(f"record kind must be non-empty and contain no ':', got {kind!r}")
    digest = hashlib.sha256(id.encode("utf-8")).digest()
    return f"{prefix}{kind}:{b64url(digest)}"


def encode_record(payload: Mapping[str, Any], ttl: int) -> str:
    """The JSON text a store keeps, once the arguments of a write are checked."""
    if ttl < 1:
        raise ValueError(f"ttl must be at least 1 second, got {ttl}")
    # a record that carried the marker field would read back as consumed
    if MARKER_FIELD in payload:
        raise ValueError(f"a record must not have the field {MARKER_FIELD!r}")
    return orjson.dumps(payload).decode()


def is_marker(value: Mapping[str, Any]) -> bool:
    return bool(value.get(MARKER_FIELD))


def moment(now: float) -> float:
    """A consume's ``now`` as stored: seconds to the millisecond (an int stays an int)."""
    return now if isinstance(now, int) else round(now, 3)


def json_number(now: float) -> str:
    """``moment(now)`` as JSON text (for the Redis scripts, which splice it in as is)."""
    return orjson.dumps(moment(now)).decode()


def new_marker(record: Mapping[str, Any], now: float,
               note: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    marker = {MARKER_FIELD: True, "grant_id": record.get("grant_id"), "consumed_at": moment(now)}
    if note is not None:
        marker["record"] = dict(record)
        marker["note"] = dict(note)
    return marker


def settled_marker(marker: Mapping[str, Any], note: Mapping[str, Any]) -> dict[str, Any]:
    return {MARKER_FIELD: True, "grant_id": marker.get("grant_id"),
            "consumed_at": marker.get("consumed_at"), "note": dict(note)}


def replay_payload(marker: Mapping[str, Any]) -> dict[str, Any]:
    """What a later consume is told: the marker without its internal field."""
    payload = {"grant_id": marker.get("grant_id"), "consumed_at": marker.get("consumed_at")}
    for extra in ("record", "note"):
        if extra in marker:
            payload[extra] = marker[extra]
    return payload
