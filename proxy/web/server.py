"""The HTTP server the app runs in (``serve``, its workers, the demo): aiohttp's, with
bounded connection timeouts, and the one error path's answer to what aiohttp's HTTP
parser refuses before any handler or middleware runs.

Timeouts, so that idle or half-sent connections cannot pile up and use up the file
descriptors of an instance:

- keep-alive: a connection that has not delivered a complete request header within
  ``keepalive_timeout`` seconds of opening, or of its last answer, is closed. aiohttp
  starts that timer when the connection opens and again after each answer, and only a
  complete request header stops it: it bounds an idle connection and a header sent a
  byte at a time alike. (A shorter, separate header timeout would free nothing sooner:
  whoever would trickle a header can as well send nothing.) It must be longer than the
  idle timeout of the load balancer in front (docs/deploy.md), so that the load
  balancer, never this server, closes an idle connection: otherwise a request it sends
  just as this server closes is lost.
- body: once the header is in, the body must arrive within ``body_timeout`` seconds
  (:func:`proxy.web.forms.read_body`, run by the one middleware), else 408.
- lingering: after answering a request whose body was not read to its end (413, 408),
  aiohttp reads and drops the rest for at most ``LINGERING_TIME`` seconds so the client
  sees the answer, then closes.

The parser's refusals (malformed request line or header, header too large) never reach
a handler or the middleware: aiohttp answers them from
``web.RequestHandler.handle_error``, in plain text quoting the request line (which may
hold a code or a token), without the security headers. The supported hook for that
answer is that method: :class:`ProxyRequestHandler` overrides it, and
:class:`ProxyRunner` builds the server (a ``web.Server``, aiohttp's public low-level
server) that makes one for each connection. Nothing else of aiohttp is replaced.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from proxy.observability.logs import logger
from proxy.web.errors import unparsed_request
from proxy.web.forms import BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT
from proxy.web.responses import default_headers

log = logger("proxy.server")

# Longer than the idle timeouts load balancers use by default (AWS ALB 60 s, nginx's
# upstream keepalive_timeout 60 s); nginx's own client keepalive_timeout is 75 s too.
KEEPALIVE_TIMEOUT = 75.0
# After refusing an oversized body (413) aiohttp keeps reading and discarding the rest
# for lingering_time (10 s by default) so the client sees the answer; a flood of 10 MB
# bodies would hold that many connections for 10 s each. Two seconds is plenty for an
# honest client.
LINGERING_TIME = 2.0


class ProxyRequestHandler(web.RequestHandler):
    """aiohttp's connection handler (one per connection); only the answers it makes
    itself differ."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The answer to a request aiohttp's parser refused (``status`` 400), or to a
        failure outside the middleware (5xx): a JSON OAuth error with the default
        headers, nothing of the request in it, and the connection closed after it (the
        rest of what the client sent cannot be parsed). ``message``, the parser's text,
        is neither sent nor logged: it quotes the request."""
        error = type(exc).__name__ if exc is not None else None
        if status >= 500:
            log.error("server_error", status=status, error=error, exc_info=exc)
        else:
            log.info("unparsable_request", status=status, error=error)
        if request.writer.output_size > 0:
            # as aiohttp's own: part of another answer is out, the connection is broken
            raise ConnectionError("an answer was already sent in part")
        response = unparsed_request(status)
        default_headers(response)
        response.force_close()
        return response


class ProxyServer(web.Server):
    """aiohttp's low-level server, making a :class:`ProxyRequestHandler` per connection."""

    def __init__(self, handler: Any, *, request_factory: Any,
                 loop: asyncio.AbstractEventLoop, **handler_args: Any) -> None:  # fmt: skip
        super().__init__(handler, request_factory=request_factory, loop=loop, **handler_args)
        self._proxy_loop = loop
        self._proxy_handler_args = handler_args

    def __call__(self) -> web.RequestHandler:
        return ProxyRequestHandler(self, loop=self._proxy_loop, **self._proxy_handler_args)


class ProxyRunner(web.AppRunner):
    """``web.AppRunner`` with this module's timeouts and :class:`ProxyServer`."""

    def __init__(
        self,
        app: web.Application,
        *,
        keepalive_timeout: float = KEEPALIVE_TIMEOUT,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        shutdown_timeout: float = 60.0,
    ) -> None:
        handler_args: dict[str, Any] = {
            "access_log": None,  # the middleware writes the access line
            "keepalive_timeout": keepalive_timeout,
            "lingering_time": LINGERING_TIME,
        }
        super().__init__(app, shutdown_timeout=shutdown_timeout, **handler_args)
        self._proxy_handler_args = handler_args
        app[BODY_TIMEOUT] = body_timeout

    async def _make_server(self) -> web.Server:
        """aiohttp's own (it starts the app and freezes it), rebuilt as a ProxyServer
        with the same request handler and factory."""
        made = await super()._make_server()
        return ProxyServer(made.request_handler, request_factory=made.request_factory,
                           loop=asyncio.get_running_loop(), **self._proxy_handler_args)
