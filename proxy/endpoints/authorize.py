"""The authorization endpoints: GET/POST /authorize (browser), POST /native/authorize
(browser-less App2App, JSON only), and the answers to the bank picker / prompt."""

from __future__ import annotations

from aiohttp import web

from proxy.login.browser import continue_page, remember_choice
from proxy.login.start import (
    Choice,
    LoginRequest,
    Step,
    answer,
    begin,
    check_request,
    picked,
    picker_page,
)
from proxy.oauth.errors import OAuthError, unavailable
from proxy.oauth.services import SERVICES
from proxy.observability.logs import logger
from proxy.store import StoreUnavailable
from proxy.web.forms import read_params

log = logger("proxy.authorize")


async def authorize(request: web.Request) -> web.StreamResponse:
    return await _authorize(request, native=False)


async def native_authorize(request: web.Request) -> web.StreamResponse:
    """draft-zehavi-oauth-app2app-browserless §3.3: the native authorization endpoint
    "SHALL return Content-Type header with the value "application/json", and a JSON http
    body" and "SHALL NOT return HTTP 30x redirects"."""
    return await _authorize(request, native=True)


async def _authorize(request: web.Request, *, native: bool) -> web.StreamResponse:
    svc = request.app[SERVICES]
    login = await check_request(svc, await read_params(request), native=native)
    return await _go(request, login, chosen_bank=None)


async def pick(request: web.Request) -> web.StreamResponse:
    """GET /authorize/pick/{pick_id}/{bank_id}: the picker's link for one bank. From then
    on the picker's page shows this choice (proxy.login.browser)."""
    svc = request.app[SERVICES]
    pick_id = request.match_info["pick_id"]
    login = await picked(svc, pick_id, native=False)
    step = await _begin(request, login, chosen_bank=request.match_info["bank_id"])
    response = await answer(svc, login, step)
    if isinstance(step, Step):
        try:
            await remember_choice(svc, pick_id, bank_id=step.bank.id,
                                  client_id=login.client.client_id, answer=response,
                                  txn=step.txn)
        except StoreUnavailable as exc:
            # the login has started; only a later look at the picker page loses it
            log.warning("choice_not_remembered", detail=str(exc))
    return response


async def picker(request: web.Request) -> web.StreamResponse:
    """GET /authorize/pick/{pick_id}: the picker page (proxy.login.browser)."""
    return await picker_page(request.app[SERVICES], request.match_info["pick_id"])


async def interstitial(request: web.Request) -> web.StreamResponse:
    """GET /authorize/continue/{handle}: the one-tap page before a bank app's link."""
    return await continue_page(request.app[SERVICES], request.match_info["handle"])


async def native_pick(request: web.Request) -> web.StreamResponse:
    """The browser-less prompt's answer (draft §3.5.3: the app "MUST send the user input
    to the response endpoint using the requested method including the interaction id")."""
    svc = request.app[SERVICES]
    params = await read_params(request)
    login = await picked(svc, params.get("id"), native=True)
    bank_id = params.get("bank")
    if bank_id is None:
        raise OAuthError("invalid_request", "choose a bank", redirect=login.target)
    return await _go(request, login, chosen_bank=bank_id)


async def _go(
    request: web.Request, login: LoginRequest, *, chosen_bank: str | None
) -> web.StreamResponse:
    step = await _begin(request, login, chosen_bank=chosen_bank)
    return await answer(request.app[SERVICES], login, step)


async def _begin(
    request: web.Request, login: LoginRequest, *, chosen_bank: str | None
) -> Step | Choice:
    svc = request.app[SERVICES]
    try:
        return await begin(svc, login, chosen_bank=chosen_bank)
    except OAuthError as err:
        if err.error != "native_app2app_unsupported":
            err.redirect = err.redirect or login.target
        raise
    except StoreUnavailable as exc:
        # the client and redirect_uri are verified: the app hears of it, with its state
        raise unavailable(login.target) from exc
