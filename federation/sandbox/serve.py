"""Serving the sandbox bank over real HTTP, for tests and ``app2app-proxy demo``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from federation.sandbox.app import create_app
from federation.sandbox.bank import SandboxBank


@asynccontextmanager
async def serve_sandbox(
    bank: SandboxBank, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[SandboxBank]:
    """Serve ``bank`` on ``host:port`` (0: a free port) until the block ends.

    An empty ``bank.issuer`` becomes ``http://{host}:{bound port}``.
    """
    runner = web.AppRunner(create_app(bank), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = int(runner.addresses[0][1])
        if not bank.issuer:
            netloc = f"[{host}]" if ":" in host else host
            bank.issuer = f"http://{netloc}:{bound}"
        yield bank
    finally:
        await runner.cleanup()
