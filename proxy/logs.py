"""structlog as JSON lines, one summary line per request (which also feeds the HTTP
request metrics of :mod:`proxy.metrics`).

Log lines carry the route pattern, never the raw path or query: both can hold
codes and handles. Tokens appear only as :func:`proxy.tokens.fingerprint`.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from typing import Any, TextIO

import orjson
import structlog
from aiohttp import web

from proxy.metrics import observe_request

# The access line's logger, bound anew by each configure_logging: a logger from
# structlog.get_logger re-binds itself on every call (so that a later configure reaches
# it), a cost this line would pay on every request. capture_logs() still reaches it: it
# edits the configured processor list in place.
log: Any = structlog.get_logger("proxy.access")


def _json_line(event: Any, **options: Any) -> str:
    """A log line's JSON: orjson (C; a line costs a few microseconds less than with the
    standard json module, and every request writes one or two)."""
    return orjson.dumps(event, **options).decode()


def configure_logging(
    level: str = "info", stream: TextIO | None = None, *, worker: int | None = None
) -> None:
    """JSON lines on ``stream`` (stdout). A worker of ``serve --workers N`` adds its
    number and pid to every line: the workers share one stdout."""
    process: list[structlog.typing.Processor] = []
    if worker is not None:
        fields = {"worker": worker, "pid": os.getpid()}
        process.append(lambda _logger, _name, event: {**event, **fields})
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *process,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_json_line),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # one write per line (message and newline together): worker processes share stdout
        logger_factory=structlog.WriteLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    global log
    log = structlog.get_logger("proxy.access").bind()


def _route(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.route is not None else None
    return resource.canonical if resource is not None else "<unmatched>"


def request_started() -> None:
    """A new request: the log context is its own (a keep-alive connection serves many
    requests in one task), named by a fresh ``request_id``."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex)


def request_done(request: web.Request, status: int, seconds: float) -> None:
    """The request's access line and its HTTP metrics."""
    route = _route(request)
    log.info(
        "request",
        method=request.method,
        route=route,
        status=status,
        duration_ms=round(seconds * 1000, 2),
    )
    observe_request(route, request.method, status, seconds)
