"""The one error path.

Handlers and rules raise :class:`~proxy.oauth.errors.OAuthError`; :func:`error_response`
alone decides how it reaches the user: a redirect to the client's *verified* redirect_uri, an HTML
page on browser paths, or a JSON OAuth error on back-channel paths. Framework
errors (404, 405, 413), store outages and bugs take the same path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from urllib.parse import urlencode

from aiohttp import web

from proxy.oauth.errors import OAuthError, RedirectTarget, unavailable
from proxy.oauth.services import SERVICES, Services
from proxy.observability.logs import logger
from proxy.store import StoreUnavailable
from proxy.web import pages
from proxy.web.responses import json_response

log = logger("proxy.errors")

BROWSER_PREFIXES = ("/authorize", "/callback/", "/resume/")
# back-channel endpoints answer JSON whatever the caller's Accept says (Java's default
# Accept includes text/html); the browser-less endpoints too: the draft's "SHALL return
# ... application/json"
API_PREFIXES = (
    "/authorize/status/", "/token", "/par", "/revoke", "/introspect", "/userinfo",
    "/native/", "/.well-known/", "/jwks", "/healthz", "/readyz", "/metrics",
)  # fmt: skip


def redirect_url(target: RedirectTarget, params: Mapping[str, str]) -> str:
    """RFC 9207 §2: the ``iss`` parameter goes with every authorization response,
    success or error; ``state`` goes back exactly as received (RFC 6749 §4.1.2)."""
    query = dict(params)
    if target.state is not None:
        query["state"] = target.state
    query["iss"] = target.issuer
    separator = "&" if "?" in target.redirect_uri else "?"
    return target.redirect_uri + separator + urlencode(query)


def authorization_response(target: RedirectTarget, params: Mapping[str, str]) -> web.Response:
    """The response to the client's redirect_uri: a 302, or in the browser-less flow the
    JSON ``call`` action (the draft's endpoints "SHALL NOT return HTTP 30x redirects")."""
    return next_step(redirect_url(target, params), native=target.native)


def next_step(
    url: str, *, native: bool, open_app: bool = False, status_uri: str | None = None
) -> web.Response:
    """Send the user agent on to ``url``: a 302 in a browser; in the browser-less flow the
    JSON action, ``deep_link`` when ``url`` opens another app, else ``call``; with
    ``status_uri`` (a session bank's login) where the app may read the login's progress
    while the user is in the other app."""
    if native:
        action = "deep_link" if open_app else "call"
        body = {"action": action, "url": url}
        if status_uri is not None:
            body["status_uri"] = status_uri
        return json_response(body, headers={"Cache-Control": "no-store"})
    return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})


def is_browser_path(request: web.Request) -> bool:
    path = request.path
    if path.startswith(API_PREFIXES) or request.headers.get("Accept", "").startswith(
        "application/json"
    ):
        return False
    if path.startswith(BROWSER_PREFIXES):
        return True
    # unknown paths: whatever the caller asked for
    return "text/html" in request.headers.get("Accept", "")


def back_to(svc: Services, client_id: str | None) -> pages.Back | None:
    """The way back to a registered client's home page (``client_uri``), if it has one."""
    client = svc.clients.get(client_id) if client_id else None
    if client is None or client.client_uri is None:
        return None
    return pages.Back(client.client_name or client.client_id, client.client_uri)


def render(request: web.Request, err: OAuthError) -> web.Response:
    if err.redirect is not None:
        return authorization_response(
            err.redirect, {"error": err.error, "error_description": err.description}
        )
    headers = {"Cache-Control": "no-store", **err.headers}
    if is_browser_path(request):
        back = back_to(request.app[SERVICES], err.client_id)
        return pages.error(err.error, err.description, err.status, headers, back)
    return json_response(
        {"error": err.error, "error_description": err.description},
        status=err.status,
        headers=headers,
    )


_STATUSES = frozenset(HTTPStatus)
_FRAMEWORK = {
    404: ("invalid_request", "there is no endpoint at this path"),
    405: ("invalid_request", "this endpoint does not accept that HTTP method"),
    413: ("invalid_request", "the request body is too large"),
}


def _from_http_exception(exc: web.HTTPException) -> OAuthError:
    # the status's standard phrase, never the exception's own text (it may quote input)
    standard = HTTPStatus(exc.status).phrase if exc.status in _STATUSES else "error"
    error, description = _FRAMEWORK.get(exc.status, ("invalid_request", standard.lower()))
    if exc.status >= 500:
        error = "server_error"
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
    return OAuthError(error, description, status=exc.status, headers=headers)


def unparsed_request(status: int) -> web.Response:
    """The answer to a request that never reached a handler: aiohttp's HTTP parser refused
    it (a malformed request line or header, headers too large: ``status`` 400), or the
    server failed outside the middleware (5xx); see :mod:`proxy.web.server`. JSON
    whatever the path (the path may be what is broken), with a fixed description: the
    parser's own message quotes the request line, which may hold a code or a token."""
    if status >= 500:
        err = OAuthError("server_error", "internal error", status=status)
    else:
        err = OAuthError("invalid_request", "the request is not valid HTTP", status=status)
    return json_response({"error": err.error, "error_description": err.description},
                         status=err.status, headers={"Cache-Control": "no-store"})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The answer to a request whose handler raised ``exc`` (the one middleware,
    :func:`proxy.app.request_middleware`, calls this for every exception); a redirect
    or other non-error HTTPException is raised again for aiohttp to send."""
    if isinstance(exc, OAuthError):
        if isinstance(exc.__cause__, StoreUnavailable):
            # a store outage answered with the client's redirect (``raise unavailable(target)
            # from exc``): logged as every outage is, naming what failed (the error's class
            # and its host, never a value), not as the client's error
            log.error("store_unavailable", detail=str(exc.__cause__))
        else:
            log.info("oauth_error", error=exc.error, detail=exc.detail or exc.description)
        return render(request, exc)
    if isinstance(exc, StoreUnavailable):
        log.error("store_unavailable", detail=str(exc))
        return render(request, unavailable())
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return render(request, _from_http_exception(exc))
    log.exception("unhandled_error", exc_info=exc)
    return render(request, OAuthError("server_error", "internal error", status=500))
