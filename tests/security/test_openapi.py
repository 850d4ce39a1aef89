"""docs/openapi.yaml against the running proxy.

schemathesis generates requests for every operation of the document, valid and
invalid (positive and negative generation), and sends them to a real proxy (the
flows harness: sandbox banks, one of them decoupled, and Redis). So that requests
also get past the first checks, hypothesis mixes the generated values into
*seeds*: complete, valid requests taken from real logins (a pending code, a bank
callback's state and code, a picker id, a decoupled login's handle, tokens, Basic
credentials) — keeping some generated values, swapping others for known ones.

What must hold for every answer:
- never a 5xx other than 503 (a store outage, which does not happen here): every
  bad input gets an OAuth error, never a 500;
- never a hang: each request has a timeout;
- never ``text/plain`` (but /metrics: the Prometheus text format); a 503 carries
  Retry-After;
- the status code, content type, documented headers and body are those the
  document gives for that operation.

The proxy serves on the test's event loop, so the synchronous schemathesis (and
requests) calls run in a worker thread. Runs are derandomized (the examples come
from a seed derived from the test), without shrinking, bounded per operation.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from proxy.app import create_app
from proxy.config.settings import Lifetimes, RateLimits, StoreSettings
from proxy.web.ratelimit import LIMITED
from tests.flows.harness import (
    ACR_A,
    ACR_B,
    ACR_C,
    APP,
    APP_REDIRECT,
    CAL_AUDIENCE,
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    DPOP_CLIENT,
    JWT_CLIENT,
    NATIVE_CALLBACK,
    PAY_AUDIENCE,
    PAY_CLIENT,
    PUBLIC,
    RS_BANK,
    RS_CAL,
    RS_PLAIN,
    SERVER,
    DPoPKey,
    Proxy,
    World,
    WorldFactory,
    make_config,
    new_request,
    query_of,
    run_proxy,
)
from tests.ports import free_port

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(
    SPEC,
    config=schemathesis.Config.from_dict(
        # no NUL in generated strings: aiohttp's HTTP parser refuses a NUL in a header
        # with a plain-text 400 before any middleware runs (see
        # tests/flows/test_odd_input.py::header_safe)
        {"generation": {"allow-x00": False}}
    ),
)
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()
              if isinstance(result, Ok)}

MAX_EXAMPLES = 50  # per operation, positive and negative together
TIMEOUT = 5.0  # seconds per request: a hang fails the test instead of stalling it
# operations without parameters: nothing to negate
PARAMETERLESS = {
    "GET /.well-known/openid-configuration", "GET /jwks", "GET /healthz", "GET /readyz",
    "GET /.well-known/apple-app-site-association", "GET /.well-known/assetlinks.json",
    "GET /metrics",
}


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# a seed: values per location ("path", "query", "body", "headers")
Seed = dict[str, dict[str, str]]


@dataclass
class Known:
    """What the proxy recognises: whole seed requests, and values by parameter name."""

    seeds: list[Seed] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)
    authorization: list[str] = field(default_factory=list)


# -- seeds from real logins ------------------------------------------------------------


async def bank_callback(proxy: Proxy, **overrides: str | None) -> dict[str, str]:
    """Start a login and let the bank answer: the callback's query, not yet delivered."""
    resp, _ = await proxy.authorize(**overrides)
    bank = await proxy.http.get(resp.headers["Location"], allow_redirects=False)
    return query_of(bank.headers["Location"])


async def picker_id(proxy: Proxy) -> str:
    resp, _ = await proxy.authorize(client_id=APP)
    found = re.search(r'href="[^"]*/authorize/pick/([^"/]+)/bank-a"', await resp.text())
    assert found, await resp.text()
    return found.group(1)


async def prompt_id(proxy: Proxy) -> str:
    resp, _ = await proxy.native()
    body: dict[str, Any] = await resp.json()
    return str(body["id"])


async def decoupled_handle(world: World, *, native: bool, decision: str | None) -> str:
    world.ciba.ciba_decision = decision
    # a request that names its user reaches a decoupled bank only pushed by a backend
    if native:
        resp, _ = await world.proxy.native_pushed(acr_values=ACR_C, login_hint="alice")
        url = str((await resp.json())["url"])
    else:
        resp, _ = await world.proxy.authorize_pushed(acr_values=ACR_C, login_hint="alice")
        url = resp.headers["Location"]
    world.ciba.ciba_decision = None
    assert url.startswith(f"{world.proxy.issuer}/resume/"), url
    return url.rsplit("/", 1)[1]


def authorization_request(**overrides: str | None) -> dict[str, str]:
    return new_request(**overrides)[1]


async def known_values(world: World, label: str) -> Known:
    proxy = world.proxy
    tokens = await proxy.tokens()
    at, rt = tokens["access_token"], tokens["refresh_token"]
    key = DPoPKey.generate()
    dpop_at = (await proxy.dpop_tokens(key, client_id=DPOP_CLIENT))["access_token"]
    known = Known(
        values={
            "client_id": [PUBLIC, CONFIDENTIAL, APP, JWT_CLIENT, DPOP_CLIENT, PAY_CLIENT],
            "redirect_uri": [APP_REDIRECT, "http://127.0.0.1:1/cb"],
            "native_callback_uri": [NATIVE_CALLBACK],
            "scope": ["openid profile offline_access", "openid", "profile"],
            "response_type": ["code"],
            "acr_values": [ACR_A, ACR_B, ACR_C],
            "token": [at, rt],
            "access_token": [at],
            "refresh_token": [rt],
            "bank_id": ["bank-a", "bank-b", "bank-c"],
            "bank": ["bank-a", "bank-b", "bank-c"],
            "iss": [world.bank_a.issuer],
            "login_hint": ["alice"],
            "resource": [CAL_AUDIENCE, PAY_AUDIENCE],
            "dpop_jkt": [key.jkt],
        },
        authorization=[
            basic(CONFIDENTIAL, CONFIDENTIAL_SECRET), basic(*RS_PLAIN), basic(*RS_BANK),
            basic(*RS_CAL), basic(CONFIDENTIAL, "wrong"), f"Bearer {at}",
            f"DPoP {dpop_at}", f"Bearer {dpop_at}", "Bearer a2a_at_unknown", "Basic !!!",
            "Digest x",
        ],
    )
    method, path = label.split(" ")
    where = "query" if method == "GET" else "body"
    seeds: list[Seed] = []
    if path in ("/authorize", "/native/authorize"):
        native = {"client_id": APP, "native_callback_uri": NATIVE_CALLBACK}
        extra = native if path.startswith("/native") else {}
        pushed = await proxy.post("/par", authorization_request(**extra, acr_values=ACR_A))
        request_uri = (await pushed.json())["request_uri"]
        for acr in (ACR_A, ACR_B, ACR_C, None):
            seeds.append({where: authorization_request(**extra, acr_values=acr,
                                                       login_hint="alice")})
        seeds.append({where: {"client_id": extra.get("client_id", PUBLIC),
                              "request_uri": request_uri, **extra}})
        # the backend-pushed shape: a confidential client's request naming the user
        request_uri, _ = await proxy.push(acr_values=ACR_C, login_hint="alice")
        seeds.append({where: {"client_id": SERVER, "request_uri": request_uri,
                              **({"native_callback_uri": NATIVE_CALLBACK} if extra else {})}})
    elif path == "/authorize/pick/{pick_id}/{bank_id}":
        # a choice is taken once: a few of them, each with a bank
        seeds = [{"path": {"pick_id": await picker_id(proxy), "bank_id": bank}}
                 for bank in ("bank-a", "bank-b", "bank-c") * 2]
    elif path == "/native/authorize/pick":
        seeds = [{"body": {"id": await prompt_id(proxy), "bank": bank}}
                 for bank in ("bank-a", "bank-b", "bank-c") * 2]
    elif path == "/par":
        seeds = [
            {"body": authorization_request(client_id=CONFIDENTIAL),
             "headers": {"Authorization": basic(CONFIDENTIAL, CONFIDENTIAL_SECRET)}},
            {"body": authorization_request(client_id=CONFIDENTIAL,
                                           client_secret=CONFIDENTIAL_SECRET)},
            {"body": authorization_request()},
        ]
    elif path == "/callback/{bank_id}":
        browser = await bank_callback(proxy)
        resp, _ = await proxy.native(acr_values=ACR_A)
        bank_app = await proxy.http.get((await resp.json())["url"], allow_redirects=False)
        native = query_of(bank_app.headers["Location"])
        seeds = [{"path": {"bank_id": "bank-a"}, "query": query}
                 for query in (browser, native, await bank_callback(proxy))]
        seeds.append({"path": {"bank_id": "bank-a"}, "query": await bank_callback(proxy),
                      "headers": {"Accept": "application/json"}})
    elif path in ("/resume/{handle}", "/authorize/status/{handle}"):
        handles = [
            await decoupled_handle(world, native=False, decision=None),
            await decoupled_handle(world, native=False, decision="approve"),
            await decoupled_handle(world, native=False, decision="deny"),
            await decoupled_handle(world, native=True, decision="approve"),
        ]
        seeds = [{"path": {"handle": handle}} for handle in handles]
    elif path == "/token":
        seeds = [{"body": {"grant_type": "refresh_token", "refresh_token": rt,
                           "client_id": PUBLIC}}]
        for client_id, bound in ((PUBLIC, False), (DPOP_CLIENT, True), (PAY_CLIENT, False)):
            pending = await proxy.login(client_id=client_id)
            seeds.append({"body": {"grant_type": "authorization_code", "code": pending.code,
                                   "redirect_uri": APP_REDIRECT, "client_id": client_id,
                                   "code_verifier": pending.verifier}})
            if bound:
                proof = key.proof("POST", f"{proxy.issuer}/token")
                seeds[-1]["headers"] = {"DPoP": proof}
    elif path == "/introspect":
        seeds = [{"body": {"token": token}, "headers": {"Authorization": basic(*rs)}}
                 for token in (at, rt) for rs in (RS_PLAIN, RS_BANK)]
        seeds.append({"body": {"token": at},
                      "headers": {"Authorization": basic(*RS_BANK),
                                  "Accept": "application/token-introspection+jwt"}})
    elif path == "/revoke":
        seeds = [{"body": {"token": token, "client_id": PUBLIC}} for token in (at, rt)]
    elif path == "/gateway/check{tail}":
        # nginx names the request in headers, Envoy appends its path (docs/gateways.md)
        gateway = {"Gateway-Authorization": basic(*RS_PLAIN), "X-Forwarded-Proto": "https",
                   "X-Forwarded-Host": "api.merchant.example"}
        proof = key.proof(method, "https://api.merchant.example/orders/7", access_token=dpop_at)
        seeds = [
            {"path": {"tail": ""}, "headers": {**gateway, "Authorization": f"Bearer {at}",
                                               "X-Forwarded-Method": method,
                                               "X-Forwarded-Uri": "/orders/7"}},
            {"path": {"tail": "/orders/7"},
             "headers": {**gateway, "Authorization": f"DPoP {dpop_at}", "DPoP": proof}},
            {"path": {"tail": ""}, "headers": {"Gateway-Authorization": basic(*RS_BANK),
                                               "Authorization": f"Bearer {at}"}},
        ]
    elif path == "/userinfo":
        proof = key.proof(method, f"{proxy.issuer}/userinfo", access_token=dpop_at)
        seeds = [{"headers": {"Authorization": f"Bearer {at}"}},
                 {"headers": {"Authorization": f"DPoP {dpop_at}", "DPoP": proof}}]
        if method == "POST":
            seeds.append({"body": {"access_token": at}})
    known.seeds = seeds
    return known


# -- mixing generated and known values ---------------------------------------------------


def _container(case: Case[Any], location: str) -> dict[str, Any] | None:
    value: Any = {"path": case.path_parameters, "query": case.query, "body": case.body,
                  "headers": case.headers}[location]
    if value is None:
        return {}
    return dict(value) if isinstance(value, dict) or hasattr(value, "items") else None


def _assign(case: Case[Any], location: str, value: dict[str, Any]) -> None:
    attribute = {"path": "path_parameters", "query": "query", "body": "body",
                 "headers": "headers"}[location]
    setattr(case, attribute, value)


def sometimes(data: st.DataObject, label: str) -> bool:
    """True one time in four."""
    return data.draw(st.integers(0, 3), label=label) == 0


def mix(case: Case[Any], known: Known, data: st.DataObject) -> None:
    """Hypothesis chooses: a seed to start from (keeping some generated values over it),
    known values in place of some generated ones, and an Authorization header."""
    seed = data.draw(st.none() | st.sampled_from(known.seeds), label="seed") if known.seeds \
        else None
    for location, values in (seed or {}).items():
        generated = _container(case, location)
        if generated is None:  # a negative body that is not a mapping: left as generated
            continue
        kept = {k: v for k, v in generated.items()
                if sometimes(data, f"keep {location} {k}")}
        _assign(case, location, {**values, **kept})
    for location in ("path", "query", "body"):
        container = _container(case, location)
        if not container:
            continue
        for name in list(container):
            choices = known.values.get(name)
            if choices and data.draw(st.booleans(), label=f"known {name}"):
                container[name] = data.draw(st.sampled_from(choices), label=name)
        _assign(case, location, container)
    if sometimes(data, "swap Authorization"):
        auth = data.draw(st.sampled_from(known.authorization), label="Authorization")
        _assign(case, "headers", {**(_container(case, "headers") or {}), "Authorization": auth})


# -- checks -------------------------------------------------------------------------------


def no_server_error(ctx: CheckContext, response: schemathesis.Response, case: Case[Any]) -> None:
    """Only 503 (store outage, with Retry-After) may be a 5xx; never plain text."""
    status = response.status_code
    content_type = response.headers.get("content-type", [""])[0]
    label = case.operation.label
    assert status < 500 or status == 503, f"{label}: {status} {response.text}"
    # a draining /readyz answers 503 without Retry-After: a probe does not retry
    retry_after = "retry-after" in response.headers or label == "GET /readyz"
    assert status not in (429, 503) or retry_after, f"{status} without Retry-After"
    # the Prometheus text exposition format is text/plain; nothing else is
    prometheus = label == "GET /metrics" and status == 200
    assert prometheus or not content_type.startswith("text/plain"), (
        f"plain text: {status} {response.text}")


CHECKS: list[Callable[..., Any]] = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzz(label: str, base_url: str, known: Known, max_examples: int = MAX_EXAMPLES) -> None:
    """Run hypothesis over one operation, synchronously (in a worker thread)."""
    operation = OPERATIONS[label]
    strategy = operation.as_strategy(GenerationMode.POSITIVE)
    if label not in PARAMETERLESS:
        strategy = strategy | operation.as_strategy(GenerationMode.NEGATIVE)
    session = requests.Session()

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, data=st.data())
    def run(case: Case[Any], data: st.DataObject) -> None:
        mix(case, known, data)
        response = case.call(base_url=base_url, session=session, timeout=TIMEOUT,
                             allow_redirects=False)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    finally:
        session.close()


async def ciba_world(world_factory: WorldFactory) -> World:
    world: World = await world_factory(ciba=True)
    world.ciba.ciba_interval = 1  # a browser-less /resume holds about one interval
    return world


@pytest.mark.parametrize("label", sorted(OPERATIONS))
async def test_operation(world_factory: WorldFactory, label: str) -> None:
    world = await ciba_world(world_factory)
    known = await known_values(world, label)
    await asyncio.to_thread(fuzz, label, world.proxy.issuer, known)


RATE_LIMITED = sorted(label for label in OPERATIONS if label.split(" ")[1] in LIMITED)


@pytest.mark.parametrize("label", RATE_LIMITED)
async def test_rate_limited_operation(world_factory: WorldFactory, label: str) -> None:
    """With rate limits configured, the refusals (429, Retry-After) are documented too."""
    world = await ciba_world(world_factory)
    known = await known_values(world, label)
    port = free_port()
    limits = RateLimits(per_address=dict.fromkeys(set(LIMITED.values()), 5))
    config = dataclasses.replace(world.proxy.config, rate_limits=limits)
    await world.stack.enter_async_context(run_proxy(config, port))
    await asyncio.to_thread(fuzz, label, f"http://127.0.0.1:{port}", known, 15)


# -- defects found here, not yet fixed: each test states the rule and fails until it holds


BACK_CHANNEL = [
    ("/token", {"grant_type": "nope", "client_id": PUBLIC}),
    ("/par", {"client_id": "nobody"}),
    ("/revoke", {"client_id": "nobody", "token": "x"}),
    ("/introspect", {"token": "x"}),
    ("/userinfo", {}),
    ("/native/authorize", {"client_id": "nobody"}),
    ("/native/authorize/pick", {"id": "x", "bank": "y"}),
]


@pytest.mark.parametrize(("path", "form"), BACK_CHANNEL)
async def test_back_channel_errors_are_json_whatever_the_accept_header(
    world: World, path: str, form: dict[str, str]
) -> None:
    """DESIGN.md: errors are JSON on back-channel endpoints, and "every answer" of the
    browser-less endpoints is JSON. Clients send browser-like Accept headers (Java's
    HttpURLConnection sends "text/html, image/gif, ..." by default)."""
    resp = await world.proxy.post(path, form, headers={"Accept": "text/html, */*"})
    assert 400 <= resp.status < 500
    assert resp.content_type == "application/json", (resp.status, resp.content_type)


async def test_a_refused_refresh_does_not_use_up_the_refresh_token(
    world_factory: WorldFactory,
) -> None:
    """RFC 6749 §5.2: invalid_scope is an error response to one request; the refresh token
    stays valid, and the corrected request gets new tokens at once."""
    world: World = await world_factory(lifetimes=Lifetimes(refresh_grace=2))
    refresh_token = (await world.proxy.tokens())["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": PUBLIC, "scope": "openid payments"}
    refused = await world.proxy.post("/token", form)
    assert (await refused.json())["error"] == "invalid_scope"
    started = time.monotonic()
    retried = await world.proxy.refresh(refresh_token)
    assert time.monotonic() - started < 1, "the retry was held until refresh_grace ran out"
    assert retried.status == 200, await retried.text()


@pytest.mark.parametrize(("method", "path", "case"), [
    ("POST", "/token", "basic"), ("POST", "/introspect", "basic"),
    ("GET", "/authorize", "bracket"), ("POST", "/native/authorize", "bracket"),
])
async def test_odd_credentials_and_redirect_uris_are_oauth_errors(
    world: World, method: str, path: str, case: str
) -> None:
    """test_parsers.py pins the causes; here the answer a client gets."""
    url = f"{world.proxy.issuer}{path}"
    if case == "basic":
        resp = await world.proxy.http.post(
            url, data={"grant_type": "authorization_code", "token": "x"},
            headers={"Authorization": "Basic \u00e9t\u00e9"},
        )
    else:
        _, params = new_request(client_id=APP, redirect_uri="http://[",
                                native_callback_uri=NATIVE_CALLBACK)
        if method == "GET":
            resp = await world.proxy.http.get(url, params=params, allow_redirects=False)
        else:
            resp = await world.proxy.http.post(url, data=params, allow_redirects=False)
    assert 400 <= resp.status < 500, resp.status


# -- the document itself -------------------------------------------------------------------


def test_document_is_valid_openapi() -> None:
    SCHEMA.validate()


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    config = make_config("http://127.0.0.1", StoreSettings(url="memory://"), [])
    served = {
        (route.method, route.resource.canonical)
        for route in create_app(config).router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {tuple(label.split(" ")) for label in OPERATIONS}
    assert served == documented


async def test_every_endpoint_discovery_advertises_is_documented(world: World) -> None:
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/.well-known/openid-configuration")
    metadata = await resp.json()
    advertised = {
        value.removeprefix(world.proxy.issuer)
        for key, value in metadata.items()
        if key.endswith(("_endpoint", "_uri")) and isinstance(value, str)
    }
    assert advertised <= {label.split(" ")[1] for label in OPERATIONS}

