"""Traces (docs/observability.md): a login is one trace, and no span holds a value of it.

The proxy traces to the SDK's in-memory exporter here; test_tracing_export.py sends
them over OTLP as the OTEL_* variables say.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from proxy.config.settings import StoreSettings
from proxy.observability.tracing import Tracing, traceparent
from proxy.store import open_store
from proxy.store.redis import RedisStore
from tests.flows.harness import CONFIDENTIAL_SECRET, RS_BANK, World, WorldFactory, new_request

# every attribute a span may have; a new one is a decision (docs/observability.md)
ATTRIBUTES = {
    SpanKind.SERVER: {"http.request.method", "http.route", "http.response.status_code",
                      "app2app.request_id"},
    SpanKind.CLIENT: {"http.request.method", "server.address", "server.port",
                      "http.response.status_code", "app2app.bank_id", "app2app.bank_operation",
                      "db.system.name", "db.operation.name", "db.operation.batch.size",
                      "app2app.redis.commands"},
}


def traced() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return Tracing(TracerProvider(), SimpleSpanProcessor(exporter)), exporter


def text_of(span: ReadableSpan) -> Iterator[str]:
    """Everything a span says, as text."""
    yield span.name
    for attributes in (span.attributes, *(e.attributes for e in span.events),
                       *(link.attributes for link in span.links)):
        for key, value in (attributes or {}).items():
            yield key
            yield json.dumps(value) if not isinstance(value, str) else value
    yield span.status.description or ""


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


async def test_a_login_is_one_trace_and_no_span_holds_a_value_of_it(
    world_factory: WorldFactory, log_buffer: io.StringIO,
) -> None:
    tracing, exporter = traced()
    world: World = await world_factory(tracing=tracing, bank_a_overrides={"userinfo": True})
    proxy = world.proxy
    login = await proxy.login()
    tokens = await (await proxy.exchange(login)).json()
    spans = list(exporter.get_finished_spans())

    # one trace: /authorize, then /callback under it, then /token under that
    assert len({s.context.trace_id for s in spans}) == 1, [s.name for s in spans]
    trace_id = spans[0].context.trace_id
    servers = {s.name: s for s in spans if s.kind == SpanKind.SERVER}
    assert set(servers) == {"GET /authorize", "GET /callback/{bank_id}", "POST /token"}
    authorize, callback, token = (servers["GET /authorize"], servers["GET /callback/{bank_id}"],
                                  servers["POST /token"])
    assert authorize.parent is None
    assert callback.parent is not None and callback.parent.span_id == authorize.context.span_id
    assert token.parent is not None and token.parent.span_id == callback.context.span_id
    for span in servers.values():
        assert span.attributes is not None and span.attributes["http.response.status_code"] in (
            200, 302)

    # every bank call and every Redis batch is a span under the request that made it
    by_id = {s.context.span_id: s for s in spans}
    bank_calls: dict[str, list[ReadableSpan]] = {}
    batches: dict[str, int] = {}
    for span in spans:
        if span.kind != SpanKind.CLIENT:
            continue
        attributes = span.attributes or {}
        # the nearest server span above it (the login's requests are each other's parents)
        server = next(a for a in ancestors(span, by_id) if a.kind == SpanKind.SERVER)
        if "app2app.bank_id" in attributes:
            assert attributes["app2app.bank_id"] == "bank-a"
            operation = str(attributes["app2app.bank_operation"])
            bank_calls.setdefault(operation, []).append(span)
            assert server is (authorize if operation == "metadata" else callback), operation
        else:
            assert attributes["db.system.name"] == "redis"
            batches[server.name] = batches.get(server.name, 0) + 1
    assert {"metadata", "jwks", "token", "userinfo"} <= set(bank_calls)
    assert set(batches) == set(servers)

    # the bank received W3C traceparent naming the call's span, in the login's trace
    (token_call,) = bank_calls["token"]
    assert world.bank_a.last("/token").headers["traceparent"] == traceparent(
        trace_id, token_call.context.span_id, int(token_call.context.trace_flags))

    # the log lines and the spans name each other
    lines = [json.loads(line) for line in log_buffer.getvalue().splitlines()]
    access = {line["request_id"]: line for line in lines if line["event"] == "request"}
    for span in servers.values():
        line = access[str((span.attributes or {})["app2app.request_id"])]
        assert line["trace_id"] == f"{trace_id:032x}", span.name
        assert line["route"] == (span.attributes or {})["http.route"]

    # nothing of the login in any span: tokens, codes, states, nonces, PKCE, the user
    info = await proxy.introspect(tokens["access_token"], rs=RS_BANK)
    bank_authorize = world.bank_a.last("/authorize").query
    bank_token = world.bank_a.last("/token")
    values = {
        "code": login.code, "code_verifier": login.verifier, "state": login.state,
        "nonce": login.nonce, "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"], "id token": tokens["id_token"],
        "bank access token": info["bank_access_token"], "bank code": bank_token.form["code"],
        "bank code_verifier": bank_token.form["code_verifier"],
        "bank state": bank_authorize["state"], "bank nonce": bank_authorize["nonce"],
        "code_challenge": bank_authorize["code_challenge"], "sub": info["sub"],
        "bank client secret": world.proxy.config.banks[0].client_secret or "",
        "client secret": CONFIDENTIAL_SECRET, "resource server secret": RS_BANK[1],
        "user's name": world.bank_a.user.claims["name"] if world.bank_a.user else "",
    }
    for span in spans:
        said = "\n".join(text_of(span))
        for name, value in values.items():
            assert value and value not in said, f"{name} in span {span.name}"
        assert set(span.attributes or {}) <= ATTRIBUTES[span.kind], span.name
        assert not span.events


async def test_a_bank_that_says_so_gets_no_traceparent(world_factory: WorldFactory) -> None:
    tracing, exporter = traced()
    world: World = await world_factory(tracing=tracing,
                                       bank_a_overrides={"trace_context": False})
    await world.proxy.tokens()
    assert all("traceparent" not in r.headers for r in world.bank_a.requests)
    calls = [s for s in exporter.get_finished_spans()
             if (s.attributes or {}).get("app2app.bank_operation") == "token"]
    assert len(calls) == 1  # the call is traced all the same


async def test_requests_that_bring_a_traceparent_stay_in_the_apps_trace(
    world_factory: WorldFactory,
) -> None:
    """An instrumented app's own trace wins: its /authorize and /token are in it."""
    tracing, exporter = traced()
    world: World = await world_factory(tracing=tracing)
    proxy = world.proxy
    app_trace = 0x0AF7651916CD43DD8448EB211C80319C
    header = {"traceparent": traceparent(app_trace, 0xB7AD6B7169203331, 1)}
    resp = await proxy.http.get(f"{proxy.issuer}/authorize", headers=header,
                                allow_redirects=False, params=new_request()[1])
    final = await proxy.follow(resp)
    assert final.status == 302
    servers = {s.name: s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER}
    authorize = servers["GET /authorize"]
    assert authorize.context.trace_id == app_trace
    assert authorize.parent is not None and authorize.parent.span_id == 0xB7AD6B7169203331
    # the bank's redirect brings none: the callback continues the app's trace
    assert servers["GET /callback/{bank_id}"].context.trace_id == app_trace


async def test_a_batch_is_one_span_linked_to_every_request_in_it(redis_url: str,
                                                                 store_prefix: str) -> None:
    """The store pipelines the commands of concurrent requests: one span per batch, under
    the request that opened it, linked to each request whose command rode in it."""
    tracing, exporter = traced()
    store = open_store(StoreSettings(url=redis_url, prefix=store_prefix))
    assert isinstance(store, RedisStore)
    store.trace_batches(tracing.batch_tracer())

    async def request(name: str) -> None:
        with tracing.tracer.start_as_current_span(name):
            await store.find("grant", f"{name}-secret-id")

    try:
        await asyncio.gather(request("first"), request("second"))
    finally:
        await store.close()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    batch = spans["redis BATCH"]
    assert batch.attributes is not None
    assert batch.attributes["db.operation.batch.size"] == 2
    assert list(batch.attributes["app2app.redis.commands"]) == ["MGET", "MGET"]  # type: ignore[arg-type]
    assert batch.parent is not None and batch.parent.span_id == spans["first"].context.span_id
    assert {link.context.span_id for link in batch.links} == {
        spans["first"].context.span_id, spans["second"].context.span_id}
    assert "secret" not in "\n".join(text_of(batch))


def test_traces_are_off_unless_the_environment_names_an_exporter() -> None:
    assert Tracing.from_environment({}) is None
    assert Tracing.from_environment({"OTEL_SERVICE_NAME": "x"}) is None
    assert Tracing.from_environment({"OTEL_TRACES_EXPORTER": "none",
                                     "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}) is None
    assert Tracing.from_environment({"OTEL_SDK_DISABLED": "true",
                                     "OTEL_TRACES_EXPORTER": "console"}) is None
    on = Tracing.from_environment({"OTEL_TRACES_EXPORTER": "console"})
    assert on is not None
    on.shutdown()
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        Tracing.from_environment({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        Tracing.from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
                                  "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
