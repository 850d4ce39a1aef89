"""OpenTelemetry traces (docs/observability.md): off unless the standard ``OTEL_*``
variables name an exporter, and then one trace per login.

Off, nothing of OpenTelemetry's tracing is imported (redis-py imports the metrics API
when it is installed, for metrics of its own that stay off): the app holds no
:class:`Tracing`, the HTTP session no trace config, the store no batch tracer, and each
hook below is one context variable read. On (``OTEL_TRACES_EXPORTER``,
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set,
``OTEL_SDK_DISABLED`` not true), each app
has a tracer provider of its own (the SDK reads its other variables: sampler, batch
processor, the exporter's endpoint, headers, timeout) and makes:

- a server span per request (the one middleware): ``{method} {route}``, the route
  pattern, the status and the log's ``request_id``; the log lines name the trace;
- a client span per bank call (the HTTP session's trace config, fed by
  :func:`federation.bank_http.call_bank`): the bank, the operation, the method, the
  host and the status; W3C ``traceparent`` goes to the bank unless its config says
  ``trace_context: false``;
- a span per Redis batch (:class:`proxy.store.redis.Batcher`): the commands' names,
  linked to every request whose command rode in it.

A login's requests come from different places (the app's /authorize, the bank's
redirect to /callback, the app's /token): a request that takes a login's record and
came without a ``traceparent`` of its own continues the trace the login began
(:func:`continue_trace`). Its spans are held until it ends and exported in that trace,
its server span under the span that stored the record.

No span attribute or event holds a URL's path or query, a header, a token, a code, a
secret, a key, a state, a nonce or a user's claim: only what is listed above.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from proxy.observability.logs import bind_context, current_request_id

if TYPE_CHECKING:
    from collections.abc import Iterator

    import aiohttp
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.trace import Span, SpanContext

SERVICE_NAME = "app2app-proxy"
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` turns traces on: an exporter named (not ``none``), or an OTLP
    endpoint given; ``OTEL_SDK_DISABLED=true`` wins."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER")
    if exporter is not None:
        return exporter.strip().lower() not in ("", "none")
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _exporter(environ: Mapping[str, str]) -> Any:
    """The span exporter ``OTEL_TRACES_EXPORTER`` names (default ``otlp``), over the
    protocol ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL`` names
    (default ``http/protobuf``, the specification's)."""
    name = (environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")[0].strip().lower()
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER: {name!r} is not supported (otlp, console)")
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter()
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported "
                     "(grpc, http/protobuf)")


def traceparent(trace_id: int, span_id: int, flags: int) -> str:
    """W3C Trace Context: ``version-trace_id-parent_id-trace_flags``."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def _parsed(value: str) -> tuple[int, int, int] | None:
    found = _TRACEPARENT.fullmatch(value)
    if found is None:
        return None
    trace_id, span_id, flags = (int(part, 16) for part in found.groups())
    return (trace_id, span_id, flags) if trace_id and span_id else None


@dataclass
class _Request:
    """One request being traced (a context variable while it is served)."""

    tracing: Tracing
    span: Span
    remote: bool  # it came with a traceparent of its own


_REQUEST: ContextVar[_Request | None] = ContextVar("a2a_trace_request", default=None)


def current_traceparent() -> str | None:
    """The request's server span as a W3C traceparent (in the login's trace, once the
    request continues one), to keep with a login's record; None when traces are off."""
    state = _REQUEST.get()
    if state is None:
        return None
    return state.tracing.traceparent_of(state.span.get_span_context())


def continue_trace(stored: str | None) -> None:
    """The request has taken a login's record that kept ``stored`` (its
    :func:`current_traceparent`): unless the request came with a traceparent of its own,
    its spans go to that trace, its server span under that span."""
    state = _REQUEST.get()
    if state is None or stored is None or state.remote:
        return
    parent = _parsed(stored)
    if parent is not None:
        state.tracing.adopt(state.span.get_span_context().trace_id, parent)
        # the request's later log lines (its access line) name the trace it is exported in
        bind_context(trace_id=f"{parent[0]:032x}")


class RequestSpan:
    """A request's server span, from the middleware's start to its access line."""

    def __init__(self, span: Span, token: Token[_Request | None], attached: object) -> None:
        self._span = span
        self._token = token
        self._attached = attached

    def end(self, status: int) -> None:
        from opentelemetry import context as otel_context
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self._span.set_status(Status(StatusCode.ERROR))
        otel_context.detach(self._attached)  # type: ignore[arg-type]
        _REQUEST.reset(self._token)
        self._span.end()



class Tracing:
    """One app's traces: its tracer provider and the hooks that make its spans."""

    def __init__(self, provider: TracerProvider, processor: SpanProcessor) -> None:
        """``processor`` takes the finished spans (a batch processor around the exporter;
        in tests, a simple one around an in-memory exporter)."""
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self._held = _Continuing(processor)
        # a SpanProcessor by its methods (the class is OpenTelemetry's, imported only here)
        provider.add_span_processor(cast("SpanProcessor", self._held))
        self.tracer = provider.get_tracer(SERVICE_NAME)
        self._propagator = TraceContextTextMapPropagator()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Tracing | None:
        """Traces as the ``OTEL_*`` variables say, or None when they say nothing (off).
        Raises ValueError for an exporter or protocol that is not supported."""
        environ = os.environ if environ is None else environ
        if not wanted(environ):
            return None
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", "")
        resource = Resource.create({} if named else {"service.name": SERVICE_NAME})
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        return cls(provider, BatchSpanProcessor(_exporter(environ)))

    def shutdown(self) -> None:
        """Export what is left and stop (the app's cleanup)."""
        self.provider.shutdown()

    # -- requests --------------------------------------------------------------------

    def start_request(self, request: web.Request) -> RequestSpan:
        """The request's server span, the current span until :meth:`RequestSpan.end`; the
        log lines of the request name its trace and span, the span their request id."""
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        parent: Context = self._propagator.extract(request.headers)
        remote = trace.get_current_span(parent).get_span_context().is_valid
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "<unmatched>"
        span = self.tracer.start_span(
            f"{request.method} {route}", context=parent, kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": request.method, "http.route": route,
                        "app2app.request_id": current_request_id() or ""})
        context = span.get_span_context()
        if span.is_recording() and not remote:
            self._held.hold(context.trace_id, context.span_id)
        bind_context(trace_id=f"{context.trace_id:032x}", span_id=f"{context.span_id:016x}")
        token = _REQUEST.set(_Request(self, span, remote))
        attached = otel_context.attach(trace.set_span_in_context(span, parent))
        return RequestSpan(span, token, attached)

    def adopt(self, trace_id: int, parent: tuple[int, int, int]) -> None:
        self._held.adopt(trace_id, parent)

    def traceparent_of(self, context: SpanContext) -> str:
        """``context`` as a W3C traceparent, in the trace its request continues."""
        return traceparent(self._held.trace_of(context.trace_id), context.span_id,
                           int(context.trace_flags))

    # -- bank calls ------------------------------------------------------------------

    def client_trace_config(self, propagates: Callable[[str], bool]) -> aiohttp.TraceConfig:
        """The HTTP session's trace config: a span per bank call, named by the
        :class:`federation.bank_http.BankCall` the call carries; ``traceparent`` sent when
        ``propagates(bank_id)``."""
        import aiohttp
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        config = aiohttp.TraceConfig()

        async def started(_session: aiohttp.ClientSession, ctx: Any,
                          params: aiohttp.TraceRequestStartParams) -> None:  # fmt: skip
            call = ctx.trace_request_ctx
            bank_id = str(getattr(call, "bank_id", "-"))
            operation = str(getattr(call, "operation", "other"))
            url = params.url
            span = self.tracer.start_span(
                f"{params.method} {operation}", kind=trace.SpanKind.CLIENT,
                attributes={"http.request.method": params.method,
                            "server.address": url.host or "", "server.port": url.port or 0,
                            "app2app.bank_id": bank_id, "app2app.bank_operation": operation})
            ctx.span = span
            if propagates(bank_id):
                params.headers["traceparent"] = self.traceparent_of(span.get_span_context())

        async def ended(_session: aiohttp.ClientSession, ctx: Any,
                        params: aiohttp.TraceRequestEndParams) -> None:  # fmt: skip
            span = ctx.span
            span.set_attribute("http.response.status_code", params.response.status)
            if params.response.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()

        async def failed(_session: aiohttp.ClientSession, ctx: Any,
                         params: aiohttp.TraceRequestExceptionParams) -> None:  # fmt: skip
            span = getattr(ctx, "span", None)
            if span is not None:
                # the exception's type only: its text names the URL
                span.set_status(Status(StatusCode.ERROR, type(params.exception).__name__))
                span.end()

        config.on_request_start.append(started)
        config.on_request_end.append(ended)
        config.on_request_exception.append(failed)
        return config

    # -- Redis batches -----------------------------------------------------------------

    def batch_tracer(self) -> BatchSpans:
        return BatchSpans(self)


class BatchSpans:
    """:class:`proxy.store.redis.BatchTracer`: a span per batch, under the request whose
    command opened it, linked to every request whose command is in it."""

    def __init__(self, tracing: Tracing) -> None:
        self._tracer = tracing.tracer

    def caller(self) -> object:
        from opentelemetry import trace

        return trace.get_current_span().get_span_context()

    def span(self, commands: Sequence[str], callers: Sequence[object]
             ) -> AbstractContextManager[object]:  # fmt: skip
        return self._span(commands, callers)

    @contextmanager
    def _span(self, commands: Sequence[str], callers: Sequence[object]) -> Iterator[object]:
        from opentelemetry import trace
        from opentelemetry.trace import Link, SpanContext, Status, StatusCode

        # one link per calling span (a request may send several commands in one batch)
        unique = {(c.trace_id, c.span_id): c for c in callers
                  if isinstance(c, SpanContext) and c.is_valid}
        links = [Link(c) for c in unique.values()]
        operation = commands[0] if len(commands) == 1 else "BATCH"
        with self._tracer.start_as_current_span(
            f"redis {operation}", kind=trace.SpanKind.CLIENT, links=links,
            record_exception=False, set_status_on_exception=False,
            attributes={"db.system.name": "redis", "db.operation.name": operation,
                        "db.operation.batch.size": len(commands),
                        "app2app.redis.commands": list(commands)},
        ) as span:
            try:
                yield span
            except BaseException as exc:
                # the exception's type only: redis-py's text may name hosts and commands
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise


TRACING = web.AppKey("tracing", Tracing)


class _Continuing:
    """A span processor between the provider and the exporter's: holds the spans of each
    request that came without a traceparent until its server span ends, then hands them
    on, moved into the login's trace if the request continued one
    (:func:`continue_trace`). Everything else passes straight through."""

    def __init__(self, inner: SpanProcessor) -> None:
        self._inner = inner
        self._held: dict[int, tuple[int, list[ReadableSpan]]] = {}  # trace -> root, spans
        self._moved: dict[int, tuple[int, int, int]] = {}  # trace -> the login's span

    def hold(self, trace_id: int, root_span_id: int) -> None:
        self._held[trace_id] = (root_span_id, [])

    def adopt(self, trace_id: int, parent: tuple[int, int, int]) -> None:
        if trace_id in self._held:
            self._moved[trace_id] = parent

    def trace_of(self, trace_id: int) -> int:
        moved = self._moved.get(trace_id)
        return trace_id if moved is None else moved[0]

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        held = self._held.get(context.trace_id) if context is not None else None
        if context is None or held is None:
            self._inner.on_end(span)
            return
        root, spans = held
        if context.span_id != root:
            spans.append(span)
            return
        del self._held[context.trace_id]
        parent = self._moved.pop(context.trace_id, None)
        for each in [*spans, span]:
            self._inner.on_end(each if parent is None else _moved(each, parent, root))

    def _on_ending(self, span: Any) -> None:
        self._inner._on_ending(span)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._inner.force_flush(timeout_millis))


def _moved(span: ReadableSpan, parent: tuple[int, int, int], root: int) -> ReadableSpan:
    """``span`` of a request that continued a login, in the login's trace: the server span
    (``root``) under the login's span, the others under their own parents."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Link, SpanContext

    old = span.context
    assert old is not None
    trace_id = parent[0]

    def moved(context: SpanContext, *, remote: bool = False) -> SpanContext:
        if context.trace_id != old.trace_id:
            return context
        return SpanContext(trace_id, context.span_id, is_remote=remote,
                           trace_flags=context.trace_flags, trace_state=context.trace_state)

    if old.span_id == root:
        from opentelemetry.trace import TraceFlags

        new_parent: SpanContext | None = SpanContext(
            trace_id, parent[1], is_remote=True, trace_flags=TraceFlags(parent[2]))
    else:
        new_parent = None if span.parent is None else moved(span.parent)
    return ReadableSpan(
        name=span.name, context=moved(old), parent=new_parent, resource=span.resource,
        attributes=span.attributes, events=span.events,
        links=[Link(moved(link.context), link.attributes) for link in span.links],
        kind=span.kind, status=span.status, start_time=span.start_time,
        end_time=span.end_time, instrumentation_scope=span.instrumentation_scope)
