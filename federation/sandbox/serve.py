"""Serving the sandbox bank over real HTTP, for tests and ``app2app-proxy demo``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from federation.sandbox.app import create_app
from federation.sandbox.bank import SandboxBank
from federation.sandbox.broker import SandboxBroker


@asynccontextmanager
async def serve_sandbox(
    bank: SandboxBank, host: str = "127.0.0.1", port: int = 0,
    broker: SandboxBroker | None = None,
) -> AsyncIterator[SandboxBank]:
    """Serve ``bank`` on ``host:port`` (0: a free port) until the block ends; with
    ``broker``, the session broker too, on the same origin.

    An empty ``bank.issuer`` (``broker.base``) becomes ``http://{host}:{bound port}``.
    """
    runner = web.AppRunner(create_app(bank, broker), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = int(runner.addresses[0][1])
        netloc = f"[{host}]" if ":" in host else host
        if not bank.issuer:
            bank.issuer = f"http://{netloc}:{bound}"
        if broker is not None and not broker.base:
            broker.base = f"http://{netloc}:{bound}"
        yield bank
    finally:
        await runner.cleanup()
