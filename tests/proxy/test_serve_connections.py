"""The real ``app2app-proxy serve`` (one process, and ``--workers 2``) bounds what a
connection may hold without sending a request: an idle connection, a header sent a byte
at a time and a body that stalls are all closed within their timeouts, while a client
that keeps its connection alive between requests is served on it as long as it likes.
Bare sockets against the subprocess (proxy.web.server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest

from federation.sandbox import serve_sandbox
from proxy.web.responses import SERVER
from proxy.web.server import LINGERING_TIME
from tests.flows.harness import PUBLIC
from tests.ports import free_port
from tests.proxy.serve_harness import (
    ConfigFile,
    sandbox_bank,
    start_serve,
    wait_until_serving,
)
from tests.security.raw_http import Connection, request

KEEPALIVE = 1.0
BODY = 1.0
TIMEOUTS = ("--keepalive-timeout", str(KEEPALIVE), "--body-timeout", str(BODY))
SLACK = 2.0  # scheduling on a busy two-core machine


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def serve(stack: AsyncExitStack, tmp_path: Path, redis_url: str, prefix: str,
                *args: str) -> int:  # fmt: skip
    """``serve`` with ``args``; its port."""
    file = ConfigFile(tmp_path, free_port(), redis_url, prefix)
    bank = sandbox_bank(file.issuer, "bank-a")
    await stack.enter_async_context(serve_sandbox(bank))
    file.write(banks={"bank-a": bank}, clients=[PUBLIC], keys=["k1"])
    served = await start_serve(file, "--drain-delay", "0", *args)
    stack.push_async_callback(served.stop)
    http = await stack.enter_async_context(
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    )
    await wait_until_serving(http, file.issuer, served)
    return file.port


async def trickle(connection: Connection, pieces: list[bytes], every: float) -> None:
    """Send ``pieces`` one by one, ``every`` seconds apart, until the server closes."""
    for piece in pieces:
        try:
            await connection.send(piece)
        except ConnectionError:
            return
        await asyncio.sleep(every)


async def test_idle_connections_and_headers_sent_slowly_are_closed_by_the_keepalive_timeout(
    tmp_path: Path, redis_url: str, store_prefix: str, stack: AsyncExitStack
) -> None:
    """Twenty connections that send nothing, and one slowloris: the request line, then a
    header line every 0.1 s, never the blank line that ends the header. Bytes keep
    arriving on that one, yet no complete header does: all are closed, without an
    answer, once the keep-alive timeout has passed since they opened."""
    port = await serve(stack, tmp_path, redis_url, store_prefix, *TIMEOUTS)
    idle = [await Connection.open(port) for _ in range(20)]
    slow = await Connection.open(port)
    pieces = [b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"] + [b"X-A: b\r\n"] * 100
    sender = asyncio.create_task(trickle(slow, pieces, every=0.1))
    closed = await asyncio.gather(*(c.closed_after(within=KEEPALIVE + SLACK)
                                    for c in [*idle, slow]))  # fmt: skip
    sender.cancel()
    for connection in [*idle, slow]:
        connection.close()
    assert all(KEEPALIVE - 0.1 <= seconds for seconds in closed), closed


async def test_a_keepalive_client_is_served_on_one_connection(
    tmp_path: Path, redis_url: str, store_prefix: str, stack: AsyncExitStack
) -> None:
    """Requests 0.6 s apart, for more than twice the keep-alive timeout: the timer
    restarts after every answer, so the one connection serves them all."""
    port = await serve(stack, tmp_path, redis_url, store_prefix, *TIMEOUTS)
    connection = await Connection.open(port)
    start = time.monotonic()
    for _ in range(4):
        await connection.send(request("GET", "/healthz"))
        answer = await connection.answer()
        assert answer.status == 200 and answer.headers.get("connection") != "close"
        await asyncio.sleep(0.6)
    assert time.monotonic() - start > 2 * KEEPALIVE
    await connection.send(request("POST", "/revoke", b"token=x&client_id=" + PUBLIC.encode(),
                                  Content_Type="application/x-www-form-urlencoded"))
    assert (await connection.answer()).status == 200
    connection.close()


async def test_a_body_that_stalls_is_refused_with_408_and_the_connection_closed(
    tmp_path: Path, redis_url: str, store_prefix: str, stack: AsyncExitStack
) -> None:
    """The header is complete, the body a byte at a time and never whole: 408 after the
    body timeout (RFC 9110 §15.5.9), then the connection closes after aiohttp's
    lingering time."""
    port = await serve(stack, tmp_path, redis_url, store_prefix, *TIMEOUTS)
    connection = await Connection.open(port)
    await connection.send(b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                          b"application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\n")
    sender = asyncio.create_task(trickle(connection, [b"a"] * 100, every=0.2))
    answer = await connection.answer(within=BODY + SLACK)
    waited = time.monotonic() - connection.opened
    assert answer.status == 408, answer.raw
    assert answer.json() == {"error": "invalid_request",
                             "error_description": "the request body did not arrive in time"}
    assert answer.headers["connection"] == "close"
    assert answer.headers["server"] == SERVER
    assert BODY - 0.1 <= waited
    await connection.closed_after(within=BODY + LINGERING_TIME + SLACK)
    sender.cancel()
    connection.close()


async def test_workers_apply_the_timeouts_and_answer_the_parser_refusals(
    tmp_path: Path, redis_url: str, store_prefix: str, stack: AsyncExitStack
) -> None:
    """Every worker runs the app in proxy.web.server's runner (the refusals themselves:
    tests/security/test_http_framing.py)."""
    port = await serve(stack, tmp_path, redis_url, store_prefix, "--workers", "2", *TIMEOUTS)
    # with SO_REUSEPORT the kernel spreads these over both workers
    connections = [await Connection.open(port) for _ in range(10)]
    closed = await asyncio.gather(*(c.closed_after(within=KEEPALIVE + SLACK)
                                    for c in connections))  # fmt: skip
    for connection in connections:
        connection.close()
    assert all(KEEPALIVE - 0.1 <= seconds for seconds in closed), closed
    for _ in range(4):
        connection = await Connection.open(port)
        await connection.send(b"GET /callback/bank-a?code=a2a_ac_x HTTP/1.1\r\nBad\r\n\r\n")
        answer = await connection.answer()
        connection.close()
        assert answer.status == 400 and answer.json()["error"] == "invalid_request"
        assert answer.headers["server"] == SERVER and b"a2a_ac_x" not in answer.raw
