"""The authorization endpoints: GET/POST /authorize (browser), POST /native/authorize
(browser-less App2App, JSON only), and the answers to the bank picker / prompt."""

from __future__ import annotations

from aiohttp import web

from proxy.login.start import LoginRequest, answer, begin, check_request
from proxy.model.records import PendingChoice
from proxy.oauth.errors import OAuthError, unavailable
from proxy.oauth.services import SERVICES
from proxy.store import StoreUnavailable
from proxy.web.forms import read_params


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
    return await _pick(request, native=False)


async def native_pick(request: web.Request) -> web.StreamResponse:
    return await _pick(request, native=True)


async def _pick(request: web.Request, *, native: bool) -> web.StreamResponse:
    """The user's choice of bank: the picker's form, or the browser-less prompt's answer
    (draft §3.5.3: the app "MUST send the user input to the response endpoint using the
    requested method including the interaction id")."""
    svc = request.app[SERVICES]
    params = await read_params(request)
    pick_id = params.get("id")
    found = await svc.store.find(PendingChoice.kind, pick_id) if pick_id else None
    choice = PendingChoice.from_json(found) if found is not None else None
    if choice is None or choice.native != native:
        raise OAuthError("invalid_request", "this choice is unknown or has expired; start again")
    login = await check_request(svc, choice.params, native=native, pushed=choice.pushed)
    bank_id = params.get("bank")
    if bank_id is None:
        raise OAuthError("invalid_request", "choose a bank", redirect=login.target)
    return await _go(request, login, chosen_bank=bank_id)


async def _go(
    request: web.Request, login: LoginRequest, *, chosen_bank: str | None
) -> web.StreamResponse:
    svc = request.app[SERVICES]
    try:
        step = await begin(svc, login, chosen_bank=chosen_bank)
    except OAuthError as err:
        if err.error != "native_app2app_unsupported":
            err.redirect = err.redirect or login.target
        raise
    except StoreUnavailable as exc:
        # the client and redirect_uri are verified: the app hears of it, with its state
        raise unavailable(login.target) from exc
    return answer(svc, login, step)
