"""Reading request parameters once, the same way everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from urllib.parse import parse_qsl

from aiohttp import web

from proxy.oauth.errors import OAuthError

FORM = "application/x-www-form-urlencoded"

# Seconds a request body gets to arrive in full once its headers have: bodies here are
# at most 64 KiB (proxy.app.MAX_BODY), a few seconds even on a slow mobile link. Without
# a bound, a client that sends headers and then a byte now and then holds a connection
# (and a handler task) for ever. `serve --body-timeout` sets it for an app
# (proxy.web.server.ProxyRunner); an app without it uses the default.
DEFAULT_BODY_TIMEOUT = 10.0
BODY_TIMEOUT = web.AppKey("body_timeout", float)


async def read_body(request: web.Request) -> None:
    """Read the whole body within the body timeout (the one middleware does this before
    anything else looks at the request; aiohttp keeps it, so every later
    ``request.post()`` or ``read()`` is served from memory). A body over the app's
    ``client_max_size`` raises aiohttp's 413 as before; one that does not arrive in time
    is refused with 408 (RFC 9110 §15.5.9: "the server did not receive a complete
    request message within the time that it was prepared to wait")."""
    if not request.body_exists:
        return
    if request.content.is_eof():
        # the whole body came with the headers (a small form usually does): nothing to
        # wait for, and no timer to arm and cancel on every request
        await request.read()
        return
    try:
        async with asyncio.timeout(request.app.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)):
            await request.read()
    except TimeoutError:
        raise OAuthError("invalid_request", "the request body did not arrive in time",
                         status=408) from None
    except ConnectionError:
        # the client went away mid-body: nobody reads this answer, the log says why
        raise OAuthError("invalid_request", "the request body was cut short",
                         detail="the connection closed before the body was complete") from None


def single_values(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were
    omitted from the request." and "Request and response parameters MUST NOT be included
    more than once." """
    values: dict[str, str] = {}
    for key, value in params:
        if key in values:
            raise OAuthError("invalid_request", "a parameter appears more than once",
                             detail=f"repeated parameter {key[:64]!r}")
        values[key] = str(value)
    return {k: v for k, v in values.items() if v != ""}


async def read_params(request: web.Request) -> dict[str, str]:
    """Query parameters for GET; for POST the form body, and nothing in the URL.

    RFC 6749 Appendix B: the names and values "are then encoded using UTF-8", whatever
    charset the Content-Type names (Apache HttpClient declares ISO-8859-1 by default);
    a form that is not UTF-8 is refused, never guessed at. §2.3.1: client credentials
    "MUST NOT be included in the request URI", and a parameter sent both in the URL and
    in the body would be "included more than once": the endpoints' URLs have no query
    of their own (discovery), so a POST that has one is refused."""
    if request.method == "GET":
        return single_values(request.query.items())
    if request.content_type != FORM:
        raise OAuthError("invalid_request", f"send the parameters as {FORM}")
    if request.query:
        raise OAuthError("invalid_request",
                         "send the parameters in the request body, not in the URL")
    body = await request.read()  # aiohttp caches it: every reader gets the same bytes
    try:
        # (trailing whitespace is dropped, as aiohttp's own form reader does)
        pairs = parse_qsl(body.rstrip().decode("utf-8"), keep_blank_values=True,
                          encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise OAuthError("invalid_request", "the form must be UTF-8 (RFC 6749 Appendix B)",
                         detail=f"{type(exc).__name__} at byte {exc.start}") from exc
    return single_values(pairs)
