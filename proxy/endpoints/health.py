"""/healthz (the process serves) and /readyz (the store answers; banks reported only;
503 at once while the process drains before it stops)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from federation.protocol import BankAdapter
from proxy.oauth.services import SERVICES
from proxy.observability.logs import logger
from proxy.store import StoreUnavailable
from proxy.web.responses import json_response

log = logger("proxy.health")


class Drain:
    """Set when the process is told to stop (``app2app-proxy serve`` on SIGTERM): readiness
    fails so the load balancer stops sending, while every request that still comes is
    served as usual."""

    def __init__(self) -> None:
        self.draining = False


# on the app when the CLI runs it; an app without one never drains
DRAIN = web.AppKey("drain", Drain)


async def healthz(request: web.Request) -> web.StreamResponse:
    return json_response({"status": "ok"})


# a readiness probe must answer fast even while a bank hangs
BANK_STATUS_WAIT = 0.5


async def _bank_status(adapter: BankAdapter) -> Mapping[str, Any]:
    try:
        # shielded: a slow metadata fetch goes on for the next probe
        return await asyncio.wait_for(asyncio.shield(adapter.status()), BANK_STATUS_WAIT)
    except TimeoutError:
        return {"metadata": "unavailable", "error": "the bank is slow to answer"}


async def readyz(request: web.Request) -> web.StreamResponse:
    drain = request.app.get(DRAIN)
    if drain is not None and drain.draining:
        # at once, asking nothing of the store or the banks
        return json_response(
            {
                "error": "temporarily_unavailable",
                "error_description": "this instance is shutting down",
                "status": "draining",
            },
            status=503,
        )
    svc = request.app[SERVICES]
    statuses = await asyncio.gather(*(_bank_status(a) for a in svc.adapters.values()))
    banks = {bank_id: dict(s) for bank_id, s in zip(svc.adapters, statuses, strict=True)}
    try:
        await svc.store.ping()
    except StoreUnavailable as exc:
        # the operator learns why the instance is out of the load balancer: the error's
        # class and the store's host (redacted URL), as every request's outage is logged
        log.error("store_unavailable", detail=str(exc))
        body: dict[str, Any] = {
            "error": "temporarily_unavailable",
            "error_description": "the store is not answering",
            "store": "unavailable",
            "banks": banks,
        }
        return json_response(body, status=503, headers={"Retry-After": "1"})
    # one bank down must not take every instance out: banks never fail readiness
    return json_response({"status": "ok", "store": "ok", "banks": banks})
