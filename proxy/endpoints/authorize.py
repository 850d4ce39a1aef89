"""GET/POST /authorize: check the request, pick the bank, send the user there."""

from __future__ import annotations

import structlog
from aiohttp import web

from federation.protocol import BankError, StartRequest
from federation.routing import pick_bank
from proxy.context import SERVICES, Services
from proxy.endpoints.authorize_checks import (
    REDIRECTED_CHECKS,
    check_client,
    check_redirect_uri,
)
from proxy.errors import OAuthError, RedirectTarget, unavailable
from proxy.forms import read_params
from proxy.records import Transaction
from proxy.settings import ClientSettings
from proxy.store import StoreUnavailable
from proxy.tokens import new_value

log = structlog.get_logger("proxy.authorize")


def callback_uri(svc: Services, bank_id: str) -> str:
    """One callback per bank: a response for one bank arriving at another's callback
    is a mix-up (RFC 9700 §4.4.2)."""
    return f"{svc.issuer}/callback/{bank_id}"


async def authorize(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    params = await read_params(request)
    client = check_client(svc.clients.get(params.get("client_id")), params)
    structlog.contextvars.bind_contextvars(client_id=client.client_id)
    target = RedirectTarget(check_redirect_uri(client, params), params.get("state"), svc.issuer)
    try:
        for check in REDIRECTED_CHECKS:
            check(client, params)
        return await _start_login(svc, client, params, target)
    except OAuthError as err:
        err.redirect = err.redirect or target
        raise
    except StoreUnavailable as exc:
        # the client and redirect_uri are verified: the app hears of it, with its state
        raise unavailable(target) from exc


async def _start_login(
    svc: Services, client: ClientSettings, params: dict[str, str], target: RedirectTarget
) -> web.StreamResponse:
    picked = pick_bank(
        params.get("acr_values", "").split(), client.acr_values, client.default_acr,
        svc.config.banks,
    )
    if picked is None:
        raise OAuthError("invalid_request", "no bank this client may use matches acr_values")
    bank, acr = picked
    structlog.contextvars.bind_contextvars(bank_id=bank.id)
    state = new_value()
    try:
        start = await svc.adapters[bank.id].start(
            StartRequest(state, callback_uri(svc, bank.id), params.get("login_hint"))
        )
    except BankError as exc:
        raise OAuthError(exc.error, exc.description, detail=exc.detail) from exc
    txn = Transaction(
        client_id=client.client_id,
        redirect_uri=target.redirect_uri,
        state=target.state,
        nonce=params.get("nonce"),
        code_challenge=params["code_challenge"],
        scope=tuple(dict.fromkeys(params["scope"].split())),
        acr=acr,
        bank_id=bank.id,
        conn_data=dict(start.conn_data),
    )
    await svc.store.upsert(Transaction.kind, state, txn.to_json(), svc.config.lifetimes.transaction)
    log.info("login_started")
    return web.Response(status=302, headers={"Location": start.url, "Cache-Control": "no-store"})
