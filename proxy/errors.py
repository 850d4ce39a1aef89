"""The one error path.

Handlers raise :class:`OAuthError`; :func:`error_middleware` alone decides how
it reaches the user: a redirect to the client's *verified* redirect_uri, an HTML
page on browser paths, or a JSON OAuth error on back-channel paths. Framework
errors (404, 405, 413), store outages and bugs take the same path.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import structlog
from aiohttp import web

from proxy.store import StoreUnavailable

log = structlog.get_logger("proxy.errors")

BROWSER_PREFIXES = ("/authorize", "/callback/", "/resume/")
API_PREFIXES = ("/authorize/status/",)


@dataclass(frozen=True)
class RedirectTarget:
    """A redirect_uri that was checked against the registered ones, and the client's state."""

    redirect_uri: str
    state: str | None
    issuer: str


class OAuthError(Exception):
    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
        redirect: RedirectTarget | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})
        self.redirect = redirect
        self.detail = detail  # for the logs only


def redirect_url(target: RedirectTarget, params: Mapping[str, str]) -> str:
    """RFC 9207 §2: the ``iss`` parameter goes with every authorization response,
    success or error; ``state`` goes back exactly as received (RFC 6749 §4.1.2)."""
    query = dict(params)
    if target.state is not None:
        query["state"] = target.state
    query["iss"] = target.issuer
    separator = "&" if "?" in target.redirect_uri else "?"
    return target.redirect_uri + separator + urlencode(query)


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


def render(request: web.Request, err: OAuthError) -> web.Response:
    if err.redirect is not None:
        location = redirect_url(
            err.redirect, {"error": err.error, "error_description": err.description}
        )
        return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})
    headers = {"Cache-Control": "no-store", **err.headers}
    if is_browser_path(request):
        page = _PAGE.format(
            status=err.status,
            error=html.escape(err.error),
            description=html.escape(err.description),
        )
        return web.Response(
            status=err.status, text=page, content_type="text/html", headers=headers
        )
    return web.json_response(
        {"error": err.error, "error_description": err.description},
        status=err.status,
        headers=headers,
    )


_FRAMEWORK = {
    404: ("invalid_request", "there is no endpoint at this path"),
    405: ("invalid_request", "this endpoint does not accept that HTTP method"),
    413: ("invalid_request", "the request body is too large"),
}


def _from_http_exception(exc: web.HTTPException) -> OAuthError:
    error, description = _FRAMEWORK.get(exc.status, ("invalid_request", exc.reason))
    if exc.status >= 500:
        error = "server_error"
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
    return OAuthError(error, description, status=exc.status, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except OAuthError as err:
        log.info("oauth_error", error=err.error, detail=err.detail or err.description)
        return render(request, err)
    except StoreUnavailable as exc:
        log.error("store_unavailable", detail=str(exc))
        return render(request, unavailable())
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render(request, _from_http_exception(exc))
    except Exception:
        log.exception("unhandled_error")
        return render(request, OAuthError("server_error", "internal error", status=500))


def unavailable(redirect: RedirectTarget | None = None) -> OAuthError:
    """The store is down: 503 with Retry-After, or, once the client's redirect_uri is
    verified, an error redirect so the app hears of it with its state."""
    return OAuthError(
        "temporarily_unavailable",
        "the authorization server's store is not answering; retry shortly",
        status=503,
        headers={"Retry-After": "1"},
        redirect=redirect,
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Login problem</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto">
<h1>We could not complete the login</h1>
<p>{description}</p>
<p><small>Error: <code>{error}</code> (HTTP {status})</small></p>
</body></html>
"""
