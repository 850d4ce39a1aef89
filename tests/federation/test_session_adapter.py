"""SessionAdapter (kind: session) against the sandbox broker over HTTP: what it sends,
what it makes of every answer, and each fault of the headless flow."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import jwt
import pytest
from jwcrypto import jwk

from federation.protocol import (
    BankError,
    BankTokens,
    RedirectAdapter,
    RedirectStart,
    StartRequest,
    is_decoupled,
    is_redirect,
    is_session,
)
from federation.registry import build_adapters
from federation.sandbox import SandboxBroker, serve_broker
from federation.session import SessionAdapter
from tests.session_broker import (
    ACCOUNT,
    BROKER_CLIENT,
    BROKER_SECRET,
    new_broker,
    session_settings,
)

CALLBACK = "https://proxy.example/callback/itsme"


@pytest.fixture
async def broker() -> AsyncIterator[SandboxBroker]:
    async with serve_broker(new_broker(CALLBACK)) as served:
        yield served


def adapter_for(broker: SandboxBroker, session: aiohttp.ClientSession,
                api: dict[str, Any] | None = None, **overrides: Any) -> SessionAdapter:
    return SessionAdapter(session_settings(broker, api=api, **overrides), session)


async def started(adapter: SessionAdapter) -> RedirectStart:
    return await adapter.start(StartRequest("proxy-state-unused", CALLBACK))


async def app_return(http: aiohttp.ClientSession, start: RedirectStart) -> dict[str, str]:
    """The itsme app (the broker's page) answers; the query it brings to the callback."""
    async with http.get(start.url, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        location = resp.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    return dict(parse_qsl(urlsplit(location).query))


def paths(broker: SandboxBroker) -> list[str]:
    return [f"{r.method} {r.path}" for r in broker.requests]


async def test_a_whole_login(broker: SandboxBroker, session: aiohttp.ClientSession) -> None:
    adapter = adapter_for(broker, session)
    assert is_redirect(adapter) and is_session(adapter) and not is_decoupled(adapter)
    assert isinstance(adapter, RedirectAdapter)
    start = await started(adapter)
    opened = broker.session()
    # the broker's state keys the login; only its digest is kept in conn_data
    assert start.state == opened.state
    assert start.url == broker.authorization_url(opened)
    assert start.native is False
    assert opened.state not in repr(start.conn_data)
    assert start.conn_data["session"] == opened.id
    assert start.conn_data["transaction"] == opened.transaction_id

    token_call, create = broker.requests
    assert token_call.path == "/auth/open/connect/token"
    assert token_call.form == {"grant_type": "client_credentials", "scope": "signicat-api"}
    basic = base64.b64encode(f"{BROKER_CLIENT}:{BROKER_SECRET}".encode()).decode()
    assert token_call.headers["Authorization"] == f"Basic {basic}"
    assert create.path == "/auth/rest/sessions"
    assert create.json == {
        "allowedProviders": ["itsme"],
        "flow": "headless",
        "additionalParameters": {"itsme_redirect_url": CALLBACK},
        "requestedAttributes": ["name", "firstName", "lastName", "dateOfBirth", "nin"],
    }
    assert create.headers["Authorization"].startswith("Bearer ")
    assert create.headers["Signicat-AccountId"] == ACCOUNT

    params = await app_return(session, start)
    assert params["state"] == opened.state
    result = await adapter.finish(start.conn_data, params, CALLBACK)
    validation = next(r for r in broker.requests if r.path.endswith("/login-headless/token"))
    assert validation.json == {"code": params["code"], "state": opened.state,
                               "transactionId": opened.transaction_id}
    assert validation.headers["Signicat-AccountId"] == ACCOUNT
    assert paths(broker)[-1] == f"GET /auth/rest/sessions/{opened.id}"
    identity = result.identity
    assert identity.sub == broker.subject["id"]
    assert identity.authentication_level == "high"
    assert identity.claims["firstName"] == "Maxence"
    assert identity.claims["nin.value"] == "81042419835"  # a dotted path, resolved
    assert result.tokens == BankTokens(access_token=None)  # nothing to give introspection


async def test_the_api_token_is_fetched_once_and_again_after_a_401(
    broker: SandboxBroker, session: aiohttp.ClientSession
) -> None:
    adapter = adapter_for(broker, session)
    first, *_ = await asyncio.gather(*(started(adapter) for _ in range(5)))  # from cold
    await started(adapter)
    assert paths(broker).count("POST /auth/open/connect/token") == 1  # single flight, cached
    broker.expire_api_tokens()  # mid-flow: the next call is refused with a 401
    params = await app_return(session, first)
    result = await adapter.finish(first.conn_data, params, CALLBACK)
    assert result.identity.sub == broker.subject["id"]
    assert paths(broker).count("POST /auth/open/connect/token") == 2  # one new token


async def test_a_token_about_to_expire_is_renewed_before_use(
    broker: SandboxBroker, session: aiohttp.ClientSession
) -> None:
    broker.api_token_lifetime = 1  # renewed a tenth of its life early
    adapter = adapter_for(broker, session)
    await started(adapter)
    await asyncio.sleep(1.0)
    await started(adapter)
    # renewed before use: no create was refused with a 401 on the way
    assert paths(broker) == ["POST /auth/open/connect/token", "POST /auth/rest/sessions"] * 2


async def test_a_401_with_the_new_token_too_is_the_end(
    broker: SandboxBroker, session: aiohttp.ClientSession
) -> None:
    broker.api_token_lifetime = -1  # every token the broker issues is already expired
    with pytest.raises(BankError) as info:
        await started(adapter_for(broker, session))
    assert (info.value.error, info.value.detail) == (
        "server_error", "create session: HTTP 401, error invalid_token")
    assert paths(broker).count("POST /auth/open/connect/token") == 2  # once more, not again


@pytest.mark.parametrize(
    ("client", "error", "detail"),
    [
        ({"secret": "wrong"}, "server_error", "API token: HTTP 401, error invalid_client"),
        ({"auth_method": "client_secret_post"}, "server_error", "API token: HTTP 401"),
    ],
)
async def test_refused_api_credentials(
    broker: SandboxBroker, session: aiohttp.ClientSession, client: dict[str, str], error: str,
    detail: str,
) -> None:
    for key, value in client.items():
        setattr(broker.clients[BROKER_CLIENT], key, value)
    with pytest.raises(BankError) as info:
        await started(adapter_for(broker, session))
    assert info.value.error == error and info.value.detail.startswith(detail)
    assert info.value.description == "the bank refused the proxy's API credentials"
    assert (await adapter_for(broker, session).status())["api"] == "unavailable"


@pytest.mark.parametrize("method", ["client_secret_post", "private_key_jwt"])
async def test_api_token_with_each_client_auth(
    broker: SandboxBroker, session: aiohttp.ClientSession, method: str
) -> None:
    """The bank's client_auth authenticates the proxy at api_token_endpoint, as at any
    bank's token endpoint (a client assertion's aud is that endpoint)."""
    client = broker.clients[BROKER_CLIENT]
    client.auth_method = method
    overrides: dict[str, Any] = {"client_auth": method}
    if method == "private_key_jwt":
        key = jwk.JWK.generate(kty="EC", crv="P-256", kid="broker-key-1")
        client.jwks = {"keys": [key.export_public(as_dict=True)]}
        overrides.update(client_secret=None, private_key=key.export(private_key=True))
    await started(adapter_for(broker, session, **overrides))
    form = broker.requests[0].form
    if method == "private_key_jwt":
        claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
        assert claims["aud"] == broker.token_endpoint
        assert "Authorization" not in broker.requests[0].headers
    else:
        assert form["client_secret"] == BROKER_SECRET


async def test_status_reports_whether_an_api_token_can_be_had(
    broker: SandboxBroker, session: aiohttp.ClientSession
) -> None:
    assert await adapter_for(broker, session).status() == {"api": "ok"}


async def test_unreachable_broker(session: aiohttp.ClientSession) -> None:
    broker = new_broker(CALLBACK)
    broker.base = "http://127.0.0.1:9"  # nobody listens
    adapter = adapter_for(broker, session)
    with pytest.raises(BankError) as info:
        await started(adapter)
    assert info.value.error == "temporarily_unavailable"
    status = await adapter.status()
    assert status["api"] == "unavailable" and "error" in status


async def test_the_registry_builds_it_for_kind_session(
    broker: SandboxBroker, session: aiohttp.ClientSession
) -> None:
    adapters = build_adapters([session_settings(broker)], session)
    assert isinstance(adapters["itsme"], SessionAdapter)


# -- faults of the headless flow ---------------------------------------------------------


async def finish_with(broker: SandboxBroker, session: aiohttp.ClientSession,
                      **overrides: Any) -> BankError:  # fmt: skip
    adapter = adapter_for(broker, session, **overrides)
    start = await started(adapter)
    params = await app_return(session, start)
    with pytest.raises(BankError) as info:
        await adapter.finish(start.conn_data, params, CALLBACK)
    return info.value


async def test_state_mismatch(broker: SandboxBroker, session: aiohttp.ClientSession) -> None:
    broker.state_mismatch = True
    err = await finish_with(broker, session)
    assert (err.error, err.detail) == ("server_error", "callback: state differs from the session's")
    assert not any(r.path.endswith("/login-headless/token") for r in broker.requests)


async def test_the_user_cancels(broker: SandboxBroker, session: aiohttp.ClientSession) -> None:
    broker.decision = "abort"
    err = await finish_with(broker, session)
    assert (err.error, err.detail) == ("access_denied", "eID app error access_denied")
    assert broker.session().status == "ABORT"


@pytest.mark.parametrize("knob", ["wrong_code", "wrong_transaction_id"])
async def test_code_validation_refused(
    broker: SandboxBroker, session: aiohttp.ClientSession, knob: str
) -> None:
    setattr(broker, knob, True)
    err = await finish_with(broker, session)
    assert (err.error, err.description, err.detail) == (
        "server_error", "the bank refused the login's code",
        "token request: HTTP 400, error invalid_grant")


async def test_session_ends_in_error(broker: SandboxBroker, session: aiohttp.ClientSession
                                     ) -> None:  # fmt: skip
    broker.end_with = "ERROR"
    err = await finish_with(broker, session)
    assert (err.error, err.detail) == ("server_error", "session: status ERROR")


async def test_session_expired_before_the_user_came_back(
    broker: SandboxBroker, session: aiohttp.ClientSession
) -> None:
    broker.session_lifetime = 1
    adapter = adapter_for(broker, session)
    start = await started(adapter)
    params = await app_return(session, start)
    await asyncio.sleep(1.1)
    with pytest.raises(BankError) as info:
        await adapter.finish(start.conn_data, params, CALLBACK)
    assert info.value.error == "access_denied"
    assert "expired" in info.value.description
    assert not any(r.path.endswith("/login-headless/token") for r in broker.requests)
    assert await adapter.watch(start.conn_data) == "failed"


async def test_session_stays_pending_a_few_reads(
    broker: SandboxBroker, session: aiohttp.ClientSession
) -> None:
    broker.pending_reads = 3
    adapter = adapter_for(broker, session)
    start = await started(adapter)
    result = await adapter.finish(start.conn_data, await app_return(session, start), CALLBACK)
    assert result.identity.sub
    assert paths(broker).count(f"GET /auth/rest/sessions/{broker.session().id}") == 4


async def test_session_never_ends_within_timeout(
    broker: SandboxBroker, session: aiohttp.ClientSession
) -> None:
    broker.pending_reads = 10_000
    began = time.monotonic()
    err = await finish_with(broker, session, timeout=0.5)
    assert time.monotonic() - began < 1.5
    assert (err.error, err.detail) == ("temporarily_unavailable",
                                       "session: still CREATED after 0.5 s")


async def test_slow_api(broker: SandboxBroker, session: aiohttp.ClientSession) -> None:
    adapter = adapter_for(broker, session, timeout=0.3)
    start = await started(adapter)
    params = await app_return(session, start)
    broker.delay = 1.0
    began = time.monotonic()
    with pytest.raises(BankError) as info:
        await adapter.finish(start.conn_data, params, CALLBACK)
    assert time.monotonic() - began < 0.8
    assert info.value.error == "temporarily_unavailable"
    with pytest.raises(BankError) as info:
        await started(adapter)
    assert info.value.error == "temporarily_unavailable"


async def test_token_request_url_on_another_origin(
    broker: SandboxBroker, session: aiohttp.ClientSession
) -> None:
    broker.foreign_token_url = True
    with pytest.raises(BankError) as info:
        await started(adapter_for(broker, session))
    assert (info.value.error, info.value.detail) == (
        "server_error", "session: idpData.tokenRequestUrl is not on the API's origin")


@pytest.mark.parametrize(
    ("loa", "levels", "outcome"),
    [
        ("substantial", {"high": "high"}, "access_denied"),
        (None, {"high": "high"}, "access_denied"),
        ("high", {"high": "eidas-high"}, "eidas-high"),
        ("low", {}, None),  # no map: the bank's configured authentication_level applies
    ],
)
async def test_loa(broker: SandboxBroker, session: aiohttp.ClientSession, loa: str | None,
                   levels: dict[str, str], outcome: str | None) -> None:  # fmt: skip
    broker.loa = loa
    adapter = adapter_for(broker, session, api={"loa": levels})
    start = await started(adapter)
    params = await app_return(session, start)
    if outcome == "access_denied":
        with pytest.raises(BankError) as info:
            await adapter.finish(start.conn_data, params, CALLBACK)
        assert info.value.error == "access_denied"
        assert info.value.description == (
            "the login's level of assurance is lower than this route accepts")
        return
    result = await adapter.finish(start.conn_data, params, CALLBACK)
    assert result.identity.authentication_level == outcome


async def test_watch(broker: SandboxBroker, session: aiohttp.ClientSession) -> None:
    broker.decision = None  # the app page waits for the user
    adapter = adapter_for(broker, session)
    start = await started(adapter)
    assert await adapter.watch(start.conn_data) == "pending"
    broker.decide(broker.session(), "abort")
    assert await adapter.watch(start.conn_data) == "failed"
    other = await started(adapter)
    url = broker.decide(broker.session(), "approve")
    await adapter.finish(other.conn_data, dict(parse_qsl(urlsplit(url).query)), CALLBACK)
    assert await adapter.watch(other.conn_data) == "complete"


async def test_refresh_has_nothing_to_refresh(
    broker: SandboxBroker, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(BankError) as info:
        await adapter_for(broker, session).refresh(BankTokens(access_token=None))
    assert info.value.error == "invalid_grant"


async def test_damaged_conn_data(broker: SandboxBroker, session: aiohttp.ClientSession) -> None:
    adapter = adapter_for(broker, session)
    start = await started(adapter)
    params = await app_return(session, start)
    damaged = {**start.conn_data, "expires_at": "soon"}
    with pytest.raises(BankError) as info:
        await adapter.finish(damaged, params, CALLBACK)
    assert info.value.error == "server_error"
