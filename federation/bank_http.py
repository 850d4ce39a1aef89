"""One way to call a bank over HTTP: bounded time, bounded size, JSON or nothing.

Every call to a bank goes through :func:`call_bank` so that the bank's
``timeout`` is always applied and a slow or broken bank turns into one of two
exceptions the callers map to OAuth errors; and so that every call is timed and
its failures counted (:mod:`federation.metrics`) by bank and operation.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from federation.metrics import CallError, Operation, observe_bank_call

# Discovery documents, JWKS and token responses are a few kB; 1 MiB is plenty.
MAX_BODY = 1024 * 1024


class BankUnreachable(Exception):
    """The bank did not answer in time, or the connection failed."""

    def __init__(self, message: str, reason: CallError = "connection") -> None:
        super().__init__(message)
        self.reason: CallError = reason


@dataclass(frozen=True)
class BankCall:
    """Which bank a request goes to and why: handed to the HTTP session's trace configs
    (aiohttp's ``trace_request_ctx``), so a trace of the call names them and knows whether
    the bank takes a ``traceparent`` (its ``trace_context``), and nothing of the URL."""

    bank_id: str
    operation: Operation


@dataclass(frozen=True)
class BankReply:
    status: int
    body: Any  # the parsed JSON body; None when the body was not JSON
    content_type: str

    def json_object(self) -> dict[str, Any] | None:
        return self.body if isinstance(self.body, dict) else None

    def error_code(self) -> str:
        """The bank's OAuth ``error`` code, made safe for a log line."""
        obj = self.json_object()
        code = obj.get("error") if obj else None
        return safe_text(code, 64) if isinstance(code, str) else "-"


async def call_bank(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    time_limit: float,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    bank_id: str = "-",
    operation: Operation = "other",
    json_body: Mapping[str, Any] | None = None,
) -> BankReply:
    """Send one request to the bank and read its (JSON) answer within ``time_limit`` seconds.

    The body is the form ``data``, or ``json_body`` as JSON (a session bank's REST API).
    Raises :class:`BankUnreachable` on a timeout, a connection failure or an
    oversized body; any HTTP status is returned to the caller to judge.
    ``bank_id`` and ``operation`` label the call's metrics.
    """
    start = time.perf_counter()
    try:
        reply = await _exchange(session, method, url, time_limit, data, headers, ssl_context,
                                json_body, bank_id, operation)
    except BankUnreachable as exc:
        observe_bank_call(bank_id, operation, time.perf_counter() - start, exc.reason)
        raise
    error: CallError | None = "http_5xx" if reply.status >= 500 else None
    observe_bank_call(bank_id, operation, time.perf_counter() - start, error)
    return reply


async def _exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    time_limit: float,
    data: Mapping[str, str] | None,
    headers: Mapping[str, str] | None,
    ssl_context: ssl.SSLContext | None,
    json_body: Mapping[str, Any] | None = None,
    bank_id: str = "-",
    operation: Operation = "other",
) -> BankReply:
    try:
        async with session.request(
            method,
            url,
            data=dict(data) if data is not None else None,
            json=dict(json_body) if json_body is not None else None,
            headers={"Accept": "application/json", **(headers or {})},
            timeout=aiohttp.ClientTimeout(total=time_limit),
            ssl=ssl_context if ssl_context is not None else True,
            allow_redirects=False,
            # what a trace of the call (docs/observability.md) may name: the session's
            # trace configs read it; without any (traces off) aiohttp never looks at it
            trace_request_ctx=BankCall(bank_id, operation),
        ) as resp:
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > MAX_BODY:
                    raise BankUnreachable(
                        f"{method} {url}: body larger than {MAX_BODY} bytes", "body_too_large"
                    )
                chunks.append(chunk)
            return BankReply(resp.status, _parse_json(b"".join(chunks)), resp.content_type)
    except TimeoutError as exc:
        raise BankUnreachable(
            f"{method} {url}: no answer within {time_limit}s", "timeout"
        ) from exc
    except aiohttp.ClientError as exc:
        raise BankUnreachable(f"{method} {url}: {type(exc).__name__}") from exc


def _parse_json(raw: bytes) -> Any:
    """The JSON value, or None. Deep nesting (``[[[[...`` within the size limit) makes
    the json module raise RecursionError, not ValueError: it is no JSON we can use."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


_UNSAFE = re.compile(r"[^\x20-\x7e]")


def safe_text(value: str, limit: int = 200) -> str:
    """Bank-supplied text trimmed to printable ASCII, for log details only."""
    return _UNSAFE.sub("?", value)[:limit]
