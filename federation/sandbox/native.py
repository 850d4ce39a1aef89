"""Browser-less App2App (draft-zehavi-oauth-app2app-browserless-07): GET /native/authorize
and the bank app page it deep-links to, GET/POST /app2app/authorize/{handle}[/decide].

§3.3: the native authorization endpoint "SHALL return Content-Type header with the value
"application/json", and a JSON http body" and "SHALL NOT return HTTP 30x redirects".
The request is validated by the redirect flow's own ``parse_request``.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from yarl import URL

from federation.oidc_params import is_loopback
from federation.sandbox.appkeys import BANK
from federation.sandbox.authorize import (
    AuthorizeError,
    decision_url,
    denied_url,
    error_url,
    parse_request,
    redirect,
)
from federation.sandbox.bank import DECISIONS, SandboxBank
from federation.sandbox.errors import OAuthError
from federation.sandbox.models import NativeRequest
from federation.sandbox.pages import decision_form, error_page, page, sign_in_question
from federation.sandbox.token_response import NO_STORE


def endpoint(bank: SandboxBank) -> str:
    return f"{bank.issuer}/native/authorize"


def parse_callback(uri: str) -> str | None:
    """``uri`` (percent-encoded) if it is an https URL, or http on a loopback host
    (RFC 8252 §7.3), without fragment; else None."""
    try:
        url = URL(uri)
    except ValueError:
        return None
    if not url.absolute or not url.host or url.fragment:
        return None
    if url.scheme == "https" or (url.scheme == "http" and is_loopback(url.host)):
        return str(url)
    return None


def with_redirect_uri(callback: str, response_url: str) -> str:
    """``callback`` with the url-encoded ``redirect_uri`` added to its query (yarl would
    leave ``:/?`` of the value unencoded; the draft asks for it url-encoded)."""
    separator = "&" if urlsplit(callback).query else "?"
    return f"{callback}{separator}{urlencode({'redirect_uri': response_url})}"


def _action(action: str, url: str) -> web.Response:
    return web.json_response({"action": action, "url": url}, headers=NO_STORE)


async def native_authorize(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    if not bank.native_endpoint:
        # §3.5.4: "In case of native_app2app_unsupported, Client App MUST terminate the
        # flow and MAY retry with a non-native flow."
        error = OAuthError("native_app2app_unsupported", "no native endpoint here", 404)
        return error.response()
    callback = parse_callback(request.query.get("native_callback_uri", ""))
    # §3.4 native_callback_uri: "REQUIRED. Client App's deep link, to be invoked by
    # User-Interacting App."
    if callback is None:
        description = "native_callback_uri must be an https URL, or http on a loopback address"
        return OAuthError("invalid_request", description).response()
    try:
        req = parse_request(bank, request.query)
    except AuthorizeError as exc:
        if exc.redirect_uri is None:  # client or redirect_uri not verified: never "call"
            return OAuthError(exc.error, exc.description).response()
        # §3.5.4: "If Authorization Server encounters an error whose audience is its OAuth
        # client, it returns 200 OK" with action "call" and the redirect_uri with the error.
        return _action("call", error_url(bank, exc, exc.redirect_uri))
    if bank.deny:
        return _action("call", denied_url(bank, req))
    handle = secrets.token_urlsafe(32)
    bank.native_requests[handle] = NativeRequest(request=req, native_callback_uri=callback)
    # §3.5.2: "action: ... "deep_link"", "url: ... the deep link url claimed by the
    # User-Interacting App"; auto_approve does not skip the app.
    return _action("deep_link", f"{bank.issuer}/app2app/authorize/{handle}")


async def app_page(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    handle = request.match_info["handle"]
    pending = bank.native_requests.get(handle)
    if pending is None:
        return error_page("There is no such sign-in request, or it was answered.", 404)
    form = decision_form(f"{bank.issuer}/app2app/authorize/{handle}/decide")
    return page("Sandbox Bank app", sign_in_question(bank, pending.request.client_id) + form)


async def app_decide(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    decision = str((await request.post()).get("decision", ""))
    if decision not in DECISIONS:
        return error_page("decision must be approve or deny", 400)
    pending = bank.native_requests.pop(request.match_info["handle"], None)
    if pending is None:
        return error_page("There is no such sign-in request, or it was answered.", 404)
    response_url = decision_url(bank, pending.request, decision)
    # §3.6: the app "MUST use native_callback_uri to invoke Client App, providing it the
    # redirect url and its response parameters as the url-encoded query parameter
    # redirect_uri."
    return redirect(with_redirect_uri(pending.native_callback_uri, response_url))
