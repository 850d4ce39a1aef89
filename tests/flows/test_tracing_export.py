"""Traces as an operator turns them on: the standard OTEL_* variables, OTLP to a
collector (here a local sink that decodes what it receives); and off, nothing of
OpenTelemetry's tracing is even imported."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from proxy.observability.tracing import Tracing
from tests.flows.harness import World, WorldFactory
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def otlp_sink(port: int) -> AsyncIterator[list[ExportTraceServiceRequest]]:
    """An OTLP/HTTP collector's traces endpoint: keeps each export request, decoded."""
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        received.append(ExportTraceServiceRequest.FromString(await request.read()))
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield received
    finally:
        await runner.cleanup()


async def test_otel_variables_send_a_logins_spans_over_otlp(
    world_factory: WorldFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    async with otlp_sink(port) as received:
        tracing = Tracing.from_environment()
        assert tracing is not None
        world: World = await world_factory(tracing=tracing)
        await world.proxy.tokens()
        assert await asyncio.to_thread(tracing.provider.force_flush, 5000)
        spans = [(resource.resource, span) for export in received
                 for resource in export.resource_spans
                 for scope in resource.scope_spans for span in scope.spans]
    names = {span.name for _, span in spans}
    assert {"GET /authorize", "GET /callback/{bank_id}", "POST /token"} <= names
    assert len({span.trace_id for _, span in spans}) == 1
    services = {attribute.value.string_value for resource, _ in spans
                for attribute in resource.attributes if attribute.key == "service.name"}
    assert services == {"app2app-proxy"}


# OpenTelemetry's tracing SDK, its exporters and the W3C propagator. (redis-py imports the
# metrics API when it is installed, for metrics of its own that stay off unless an
# application starts them; the proxy never does.)
TRACING_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter",
                   "opentelemetry.trace.propagation.tracecontext")


def test_with_traces_off_nothing_of_opentelemetry_tracing_is_imported() -> None:
    """Free when off: serving requests loads no tracing SDK, exporter or propagator."""
    script = """
import asyncio, sys
from aiohttp.test_utils import TestClient, TestServer
from proxy.app import create_app
from proxy.config.settings import StoreSettings
from tests.flows.harness import make_config

async def main():
    app = create_app(make_config("http://127.0.0.1", StoreSettings(url="memory://"), []))
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/healthz")).status == 200
        assert (await client.post("/introspect", data={"token": "x"})).status == 401

asyncio.run(main())
print(sorted(m for m in sys.modules if m.startswith(TRACING)))
""".replace("TRACING", repr(TRACING_MODULES))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
