"""JSON answers, and the headers every answer carries, the same way everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``data`` as an ``application/json; charset=utf-8`` body (aiohttp's json_response,
    with orjson: C, and the encoding is a visible share of a small request). Non-ASCII
    characters are written as UTF-8, not as ``\\u`` escapes (RFC 8259 §8.1: "JSON text
    exchanged between systems that are not part of a closed ecosystem MUST be encoded
    using UTF-8")."""
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json", charset="utf-8")


# The Server header of every answer: a product name without versions (aiohttp's default
# names the Python and aiohttp versions). RFC 9110 §10.2.4: "An origin server SHOULD NOT
# generate a Server header field containing needlessly fine-grained detail"; "Overly long
# and detailed Server field values increase response latency and potentially reveal
# internal implementation details that might make it (slightly) easier for attackers to
# find and exploit known security holes."
SERVER = "app2app-proxy"


def default_headers(response: web.StreamResponse) -> None:
    """Every response: no Referer leaves with a URL that may carry a code, a handle or a
    token; and nothing is cached unless the handler said so (only the discovery
    documents and /jwks do). RFC 6749 §5.1: token responses MUST carry
    "Cache-Control: no-store"; RFC 9700 §4.2.4 recommends suppressing the Referer on
    pages that hold codes. The Server header names no version (:data:`SERVER`)."""
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers["Server"] = SERVER
