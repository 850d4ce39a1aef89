"""What operators see of whole logins: /metrics counters with bounded labels, and the
audit lines (docs/observability.md) with their names and fields and no secret.

The metrics live in prometheus_client's process-wide registry, shared by every test
in this process: each test compares the values before and after what it does."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from proxy.app import create_app
from proxy.config.settings import Lifetimes
from tests.flows.harness import (
    ACR_A,
    ACR_B,
    PUBLIC,
    RS_BANK,
    SERVER,
    Proxy,
    World,
    WorldFactory,
)
from tests.flows.test_decoupled import ciba_world, start

Sample = tuple[str, frozenset[tuple[str, str]]]


async def scrape(proxy: Proxy) -> dict[Sample, float]:
    resp = await proxy.http.get(f"{proxy.issuer}/metrics")
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples: dict[Sample, float] = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


class Delta:
    """The change of every sample between two scrapes."""

    def __init__(self, before: dict[Sample, float], after: dict[Sample, float]) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return self.after.get(key, 0.0) - self.before.get(key, 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Summed over the labels not given."""
        def matching(samples: dict[Sample, float]) -> float:
            return sum(value for (n, got), value in samples.items()
                       if n == name and set(labels.items()) <= got)
        return matching(self.after) - matching(self.before)


def audit_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def events(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == name]


LOGIN_A = {"bank": "bank-a", "client": PUBLIC, "flow": "redirect", "native": "false"}


async def test_a_login_a_replay_and_a_failed_login(world: World, log_buffer: io.StringIO) -> None:
    proxy = world.proxy
    before = await scrape(proxy)

    login = await proxy.login()
    tokens = await (await proxy.exchange(login)).json()
    await proxy.introspect(tokens["access_token"], rs=RS_BANK)
    replay = await proxy.exchange(login)
    assert replay.status == 400
    world.bank_a.deny = True
    denied_resp, _ = await proxy.authorize()
    denied = await proxy.follow(denied_resp)
    assert "error=access_denied" in denied.headers["Location"]

    after = await scrape(proxy)
    delta = Delta(before, after)
    assert delta("app2app_logins_started_total", **LOGIN_A) == 2
    assert delta("app2app_logins_completed_total", **LOGIN_A) == 1
    assert delta("app2app_logins_failed_total", **LOGIN_A, reason="access_denied",
                 stage="callback") == 1
    for kind in ("code", "access_token", "id_token", "refresh_token"):
        assert delta("app2app_tokens_issued_total", type=kind, client=PUBLIC) == 1, kind
    assert delta("app2app_replays_detected_total", kind="code", client=PUBLIC) == 1
    assert delta("app2app_tokens_revoked_total", type="grant", by="code_replay") == 1
    http = "app2app_http_requests_total"
    assert delta(http, route="/callback/{bank_id}", method="GET", status="302") == 2
    assert delta(http, route="/introspect", method="POST", status="200") == 1
    assert delta(http, route="/token", method="POST", status="200") == 1
    assert delta(http, route="/token", method="POST", status="400") == 1
    assert delta("app2app_http_request_duration_seconds_count", route="/token", method="POST",
                 status="200") == 1
    # one code exchanged at the bank; the denied login never reached its token endpoint
    assert delta("app2app_bank_request_duration_seconds_count", bank="bank-a",
                 operation="token") == 1
    assert delta.total("app2app_bank_request_errors_total", bank="bank-a") == 0

    # bounded labels: route patterns, never a path, a code or a token
    secrets = [login.code, tokens["access_token"], tokens["refresh_token"], tokens["id_token"],
               login.state]
    patterns = {r.canonical for r in create_app(proxy.config).router.resources()}
    for name, labels in after:
        for label, value in labels:
            assert all(secret not in value for secret in secrets), (name, label)
            if label == "route":
                assert value in patterns | {"<unmatched>"}, value

    lines = audit_lines(log_buffer)
    started = events(lines, "login.started")
    assert len(started) == 2
    assert {k: started[0][k] for k in ("bank_id", "client_id", "decoupled", "native")} == {
        "bank_id": "bank-a", "client_id": PUBLIC, "decoupled": False, "native": False}
    assert started[0]["request_id"]
    (completed,) = events(lines, "login.completed")
    assert (completed["bank_id"], completed["client_id"]) == ("bank-a", PUBLIC)
    (failed,) = events(lines, "login.failed")
    assert {k: failed[k] for k in ("reason", "stage", "bank_id", "client_id", "decoupled",
                                   "native")} == {
        "reason": "access_denied", "stage": "callback", "bank_id": "bank-a",
        "client_id": PUBLIC, "decoupled": False, "native": False}
    issued = events(lines, "token.issued")
    assert [line["kinds"] for line in issued] == [["code"],
                                                  ["access_token", "id_token", "refresh_token"]]
    grant = issued[0]["grant_fingerprint"]
    assert len(grant) == 12 and all(line["grant_fingerprint"] == grant for line in issued)
    (replayed,) = events(lines, "code.replayed")
    assert (replayed["level"], replayed["client_id"]) == ("warning", PUBLIC)
    assert replayed["grant_fingerprint"] == grant
    (revoked,) = events(lines, "token.revoked")
    assert (revoked["kind"], revoked["by"], revoked["grant_fingerprint"]) == (
        "grant", "code_replay", grant)
    # the old ad-hoc names are gone
    assert not {line["event"] for line in lines} & {
        "login_started", "login_completed", "code_replayed", "token_revoked"}
    text = log_buffer.getvalue()
    for secret in secrets:
        assert secret not in text


async def test_refresh_reuse_and_client_revocation(world_factory: WorldFactory,
                                                   log_buffer: io.StringIO) -> None:
    world: World = await world_factory(lifetimes=Lifetimes(refresh_grace=1))
    proxy = world.proxy
    tokens = await proxy.tokens()
    other = await proxy.tokens()
    before = await scrape(proxy)

    assert (await proxy.refresh(tokens["refresh_token"])).status == 200
    await asyncio.sleep(2.1)  # past refresh_grace
    reuse = await proxy.refresh(tokens["refresh_token"])
    assert reuse.status == 400
    resp = await proxy.post("/revoke", {"token": other["access_token"], "client_id": PUBLIC})
    assert resp.status == 200

    delta = Delta(before, await scrape(proxy))
    assert delta("app2app_tokens_issued_total", type="access_token", client=PUBLIC) == 1
    assert delta("app2app_tokens_issued_total", type="code", client=PUBLIC) == 0
    assert delta("app2app_replays_detected_total", kind="refresh_token", client=PUBLIC) == 1
    assert delta("app2app_tokens_revoked_total", type="grant", by="refresh_reuse") == 1
    assert delta("app2app_tokens_revoked_total", type="access_token", by="client") == 1

    lines = audit_lines(log_buffer)
    (reused,) = events(lines, "refresh.reused")
    assert (reused["level"], reused["client_id"]) == ("warning", PUBLIC)
    revoked = [(line["kind"], line["by"]) for line in events(lines, "token.revoked")]
    assert revoked == [("grant", "refresh_reuse"), ("access_token", "client")]
    assert "refresh_token_reused" not in {line["event"] for line in lines}
    text = log_buffer.getvalue()
    for secret in (tokens["refresh_token"], tokens["access_token"], other["access_token"]):
        assert secret not in text


async def test_decoupled_login(world_factory: WorldFactory, log_buffer: io.StringIO) -> None:
    world = await ciba_world(world_factory, interval=1)
    proxy = world.proxy
    before = await scrape(proxy)

    url, _ = await start(world)
    handle = url.rsplit("/", 1)[1]
    world.ciba.ciba_approve()
    await asyncio.sleep(1.1)
    done = await proxy.http.get(url, allow_redirects=False)
    assert done.status == 302

    after = await scrape(proxy)
    delta = Delta(before, after)
    # (start: the merchant backend pushed the request, which names the user)
    ciba = {"bank": "bank-c", "client": SERVER, "flow": "decoupled", "native": "false"}
    assert delta("app2app_logins_started_total", **ciba) == 1
    assert delta("app2app_logins_completed_total", **ciba) == 1
    assert delta("app2app_bank_request_duration_seconds_count", bank="bank-c",
                 operation="backchannel") == 1
    assert delta("app2app_http_requests_total", route="/resume/{handle}", method="GET",
                 status="302") == 1
    assert all(handle not in value for (_, labels) in after for _, value in labels)

    lines = audit_lines(log_buffer)
    (started,) = events(lines, "login.started")
    assert (started["bank_id"], started["decoupled"], started["deep_link"]) == (
        "bank-c", True, False)
    (completed,) = events(lines, "login.completed")
    assert (completed["bank_id"], completed["decoupled"]) == ("bank-c", True)
    assert handle not in log_buffer.getvalue()


async def test_fallback_and_a_failed_start(world_factory: WorldFactory,
                                          log_buffer: io.StringIO) -> None:
    # bank A cannot be reached: with its fallback_acr the login continues at bank B
    world: World = await world_factory(bank_a_overrides={
        "issuer": "http://127.0.0.1:9", "fallback_acr": ACR_B})
    proxy = world.proxy
    before = await scrape(proxy)
    await proxy.tokens(acr_values=ACR_A)
    delta = Delta(before, await scrape(proxy))
    assert delta("app2app_login_fallbacks_total", from_bank="bank-a", to_bank="bank-b",
                 reason="temporarily_unavailable") == 1
    assert delta("app2app_bank_request_errors_total", bank="bank-a", operation="metadata",
                 error="connection") >= 1
    assert delta("app2app_logins_started_total", bank="bank-b", client=PUBLIC,
                 flow="redirect", native="false") == 1
    assert delta.total("app2app_logins_started_total", bank="bank-a") == 0
    assert delta.total("app2app_logins_completed_total", bank="bank-b") == 1
    assert events(audit_lines(log_buffer), "fallback_taken")

    # without a fallback the login fails at its start
    world = await world_factory(bank_a_overrides={"issuer": "http://127.0.0.1:9"})
    before = await scrape(world.proxy)
    resp, _ = await world.proxy.authorize(acr_values=ACR_A)
    assert "error=temporarily_unavailable" in resp.headers["Location"]
    delta = Delta(before, await scrape(world.proxy))
    assert delta("app2app_logins_failed_total", bank="bank-a", client=PUBLIC, flow="redirect",
                 native="false", reason="temporarily_unavailable", stage="start") == 1
    failed = events(audit_lines(log_buffer), "login.failed")
    assert [(line["bank_id"], line["stage"], line["reason"]) for line in failed] == [
        ("bank-a", "start", "temporarily_unavailable")]
