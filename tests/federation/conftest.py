"""Fixtures of the federation tests: a fake bank served over HTTP, a client session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fedfakes import FakeBank, new_key


@pytest.fixture
async def fake_bank() -> AsyncIterator[FakeBank]:
    bank = FakeBank(keys=[new_key(kid="k1")])
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", bank.handle)
    server = TestServer(app)
    await server.start_server()
    bank.issuer = f"http://{server.host}:{server.port}"
    yield bank
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
