"""GET /metrics itself: its switches in config, its format, the multiprocess mode, and
the label guards of proxy.observability.metrics."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from proxy.app import create_app
from proxy.config.settings import MetricsSettings, StoreSettings
from proxy.observability import metrics
from tests.flows.harness import make_config


async def client_for(aiohttp_client: AiohttpClient, settings: MetricsSettings) -> TestClient:
    config = make_config("http://127.0.0.1:1", StoreSettings(url="memory://"), [])
    app = create_app(dataclasses.replace(config, metrics=settings))
    return await aiohttp_client(app)


async def test_open_by_default(aiohttp_client: AiohttpClient) -> None:
    client = await client_for(aiohttp_client, MetricsSettings())
    await client.get("/healthz")
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(await resp.text())}
    assert {"app2app_http_requests", "app2app_logins_started",
            "app2app_bank_request_duration_seconds"} <= names
    assert resp.headers["Cache-Control"] == "no-store"


async def test_openmetrics_when_asked(aiohttp_client: AiohttpClient) -> None:
    client = await client_for(aiohttp_client, MetricsSettings())
    resp = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await resp.text()).endswith("# EOF\n")


async def test_bearer_token(aiohttp_client: AiohttpClient) -> None:
    token = "metrics-" + "m" * 24
    client = await client_for(aiohttp_client, MetricsSettings(bearer_token=token))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert (await resp.json())["error"] == "invalid_token"
    ok = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert ok.status == 200


async def test_disabled_is_not_there(aiohttp_client: AiohttpClient) -> None:
    client = await client_for(aiohttp_client, MetricsSettings(enabled=False))
    resp = await client.get("/metrics")
    assert resp.status == 404
    assert (await resp.json())["error"] == "invalid_request"


async def test_requests_are_labelled_by_route_pattern(aiohttp_client: AiohttpClient) -> None:
    client = await client_for(aiohttp_client, MetricsSettings())
    handle = "h" * 43
    labels = {"route": "/authorize/status/{handle}", "method": "GET", "status": "400"}
    before = REGISTRY.get_sample_value("app2app_http_requests_total", labels) or 0.0
    resp = await client.get(f"/authorize/status/{handle}")
    assert resp.status == 400
    assert REGISTRY.get_sample_value("app2app_http_requests_total", labels) == before + 1
    await client.get(f"/no/such/{handle}")
    assert (await client.request("PROPFIND", "/healthz")).status == 405
    body = await (await client.get("/metrics")).text()
    assert handle not in body
    assert 'route="<unmatched>"' in body
    assert 'method="PROPFIND"' not in body and 'method="other"' in body


def test_error_codes_and_methods_are_bounded() -> None:
    assert metrics.error_code("access_denied") == "access_denied"
    for free_text in ("the bank said: no", "Access-Denied", "x" * 65, "", "a2a_at_abc-def"):
        assert metrics.error_code(free_text) == "other"


def test_multiprocess_sums_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, /metrics shows what every worker process counted."""
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    worker = (
        "import sys; from proxy.observability import metrics; "
        "metrics.TOKENS_ISSUED.labels('code', 'multi-client').inc(int(sys.argv[1])); "
        "metrics.observe_request('/token', 'POST', 200, 0.01)"
    )
    for count in ("3", "4"):
        subprocess.run([sys.executable, "-c", worker, count], env=env, check=True,
                       cwd=Path(__file__).parents[2])
    assert metrics.registry() is metrics.REGISTRY  # not set here: this process only
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    text = generate_latest(metrics.registry()).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }
    assert samples[("app2app_tokens_issued_total",
                    (("client", "multi-client"), ("type", "code")))] == 7
    assert samples[("app2app_http_requests_total",
                    (("method", "POST"), ("route", "/token"), ("status", "200")))] == 2
