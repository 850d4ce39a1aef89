"""structlog as JSON lines, one summary line per request (which also feeds the HTTP
request metrics of :mod:`proxy.observability.metrics`).

Log lines carry the route pattern, never the raw path or query: both can hold
codes and handles. Tokens appear only as :func:`proxy.model.tokens.fingerprint`.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import random
import select
import sys
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TextIO

import orjson
import structlog
from aiohttp import web

from proxy.observability.metrics import observe_request

# The request's log context: request_id, and client_id/bank_id once known (bind). One
# variable holding a dict, replaced (never edited) by bind: a task started from a request
# copies the context and so keeps what was bound when it started, as with structlog's
# contextvars, for one lookup per line instead of a walk over every context variable.
_NOTHING: Mapping[str, Any] = MappingProxyType({})
_FIELDS: ContextVar[Mapping[str, Any]] = ContextVar("proxy_log_fields", default=_NOTHING)


class Logger:
    """A named logger, bound once per :func:`configure_logging`: a logger from
    ``structlog.get_logger`` binds itself anew at every call (so that a later configure
    reaches it), which costs a few microseconds on every line, and a request writes one
    to three lines. ``structlog.testing.capture_logs`` still reaches it: it edits the
    configured processor list in place."""

    debug: Callable[..., Any]
    info: Callable[..., Any]
    warning: Callable[..., Any]
    error: Callable[..., Any]
    exception: Callable[..., Any]

    def __init__(self, name: str) -> None:
        self.name = name
        self._bind()
        _LOGGERS.append(self)

    def _bind(self) -> None:
        bound = structlog.get_logger(self.name).bind()
        self.debug, self.info, self.warning = bound.debug, bound.info, bound.warning
        self.error, self.exception = bound.error, bound.exception


_LOGGERS: list[Logger] = []


def logger(name: str) -> Logger:
    """A module's logger (``log = logger("proxy.grants")``), made once, at import: every
    one made stays on the list that :func:`configure_logging` binds anew."""
    return Logger(name)


def _unencodable(value: Any) -> str:
    """A value JSON has no form for (an exception, an object): its repr, as structlog's
    JSONRenderer writes it."""
    return repr(value)


class _Render:
    """The one processor of a line (each processor is a call on every line, and a
    request writes one to three): the request's context, the worker's fields, the level,
    the time (ISO 8601, UTC, microseconds, as structlog's ``TimeStamper(fmt="iso",
    utc=True)`` writes it; the date and time of day are formatted once per second), an
    exception's traceback (structlog's ``format_exc_info``), then the JSON text, by orjson
    (C; a line costs a few microseconds less than with the standard json module)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields
        self._clock = (-1, "")  # (a second, its date and time), replaced as one

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        now = time.time()
        second = int(now)
        clock = self._clock
        if clock[0] != second:
            clock = self._clock = (second, time.strftime("%Y-%m-%dT%H:%M:%S",
                                                         time.gmtime(second)))
        context = _FIELDS.get()
        line = {**context, **self._fields, **event} if context or self._fields else event
        # structlog's add_log_level: "warn" is written "warning"
        line["level"] = "warning" if method == "warn" else method
        line["timestamp"] = f"{clock[1]}.{int((now - second) * 1_000_000):06d}Z"
        if "exc_info" in line:
            line = structlog.processors.format_exc_info(logger, method, line)
        # a dict with keys that are not strings (an int, an enum) is written, not refused:
        # a log line must never fail the request that writes it
        return orjson.dumps(line, default=_unencodable, option=orjson.OPT_NON_STR_KEYS).decode()


class LineWriter:
    """structlog's logger (the last step of every line): writes the lines to a stream.

    The lines of one round of the event loop (under load, those of many requests) are
    written together when the round ends, instead of one write and flush per line:
    the write is a system call, and was a tenth of an introspection's time
    (docs/performance.md). Lines written outside a running loop (the command line,
    start-up, another thread) are written at once, after any still waiting. A line
    waits no longer than the loop's round: written by then, or at exit (atexit), or by
    the next line of another loop when one closed first (tests).

    Workers share stdout: each write holds whole lines and at most ``PIPE_BUF`` bytes
    (POSIX: such a write to a pipe is never interleaved with another process's), but for
    a longer line, which goes alone as before."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # where a flush is due
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        line = message + "\n"
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            with self._lock:
                self._lines.append(line)
                self._write_waiting()
            return
        self._lines.append(line)
        if self._loop is not loop:
            self._loop = loop
            loop.call_soon(self.flush)

    # structlog calls the method named like the line's level
    debug = info = warn = warning = error = err = critical = exception = fatal = msg

    def flush(self) -> None:
        with self._lock:
            self._loop = None
            self._write_waiting()

    def _write_waiting(self) -> None:
        lines, self._lines = self._lines, []
        chunk: list[str] = []
        size = 0
        for line in lines:
            # PIPE_BUF counts bytes: a line's characters are its bytes when all are ASCII
            # (isascii reads a flag CPython keeps), and otherwise fewer
            length = len(line) if line.isascii() else len(line.encode())
            if chunk and size + length > select.PIPE_BUF:
                self._write("".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += length
        if chunk:
            self._write("".join(chunk))

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


_WRITERS: list[LineWriter] = []


@atexit.register
def flush_logs() -> None:
    """Write every line still waiting (at exit, and when the logging is configured anew)."""
    for writer in _WRITERS:
        writer.flush()


def configure_logging(
    level: str = "info", stream: TextIO | None = None, *, worker: int | None = None
) -> None:
    """JSON lines on ``stream`` (stdout). A worker of ``serve --workers N`` adds its
    number and pid to every line: the workers share one stdout."""
    fields = {"worker": worker, "pid": os.getpid()} if worker is not None else {}
    flush_logs()
    _WRITERS.clear()
    writer = LineWriter(stream or sys.stdout)
    _WRITERS.append(writer)
    structlog.configure(
        processors=[_Render(fields)],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=lambda *_: writer,
        cache_logger_on_first_use=False,
    )
    _rebind()


def reset_logging() -> None:
    """structlog's defaults (console lines), for tests that configured a stream."""
    flush_logs()
    _WRITERS.clear()
    structlog.reset_defaults()
    _rebind()


def _rebind() -> None:
    for each in _LOGGERS:
        each._bind()


def bind_context(**fields: Any) -> None:
    """Add ``fields`` to every line the current request writes from here on."""
    _FIELDS.set({**_FIELDS.get(), **fields})


log = logger("proxy.access")


def _route(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.route is not None else None
    return resource.canonical if resource is not None else "<unmatched>"


def request_started() -> None:
    """A new request: the log context is its own (a keep-alive connection serves many
    requests in one task), named by a fresh ``request_id``."""
    # 128 random bits, as a UUID4's hex. An identifier, not a secret: drawn from the
    # process's own generator (seeded from the OS at start), where os.urandom made a
    # system call per request
    _FIELDS.set({"request_id": f"{random.getrandbits(128):032x}"})


def current_request_id() -> str | None:
    """The ``request_id`` of the request being served (None outside one)."""
    value = _FIELDS.get().get("request_id")
    return None if value is None else str(value)


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
