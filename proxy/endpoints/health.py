"""/healthz (the process serves) and /readyz (the store answers; banks reported only)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from federation.protocol import BankAdapter
from proxy.context import SERVICES
from proxy.store import StoreUnavailable


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


# a readiness probe must answer fast even while a bank hangs
BANK_STATUS_WAIT = 0.5


async def _bank_status(adapter: BankAdapter) -> Mapping[str, Any]:
    try:
        # shielded: a slow metadata fetch goes on for the next probe
        return await asyncio.wait_for(asyncio.shield(adapter.status()), BANK_STATUS_WAIT)
    except TimeoutError:
        return {"metadata": "unavailable", "error": "the bank is slow to answer"}


async def readyz(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    statuses = await asyncio.gather(*(_bank_status(a) for a in svc.adapters.values()))
    banks = {bank_id: dict(s) for bank_id, s in zip(svc.adapters, statuses, strict=True)}
    try:
        await svc.store.ping()
    except StoreUnavailable:
        body: dict[str, Any] = {
            "error": "temporarily_unavailable",
            "error_description": "the store is not answering",
            "store": "unavailable",
            "banks": banks,
        }
        return web.json_response(body, status=503, headers={"Retry-After": "1"})
    # one bank down must not take every instance out: banks never fail readiness
    return web.json_response({"status": "ok", "store": "ok", "banks": banks})
