"""Session banks (``kind: session``, itsme through the sandbox broker) end to end, on
real Redis: through /authorize, /par + /authorize and /native/authorize; across two
instances; every fault of the headless flow ends in a clean OAuth error with the
client's state and iss."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema_rs
import jwt
import pytest
import yaml

from proxy.config.settings import Lifetimes
from proxy.model.records import Transaction
from proxy.oauth.jose import Cipher
from proxy.store import open_store
from tests.flows.harness import (
    ACR_A,
    APP,
    APP_REDIRECT,
    PUBLIC,
    RS_BANK,
    Login,
    Proxy,
    app_redirect_params,
    new_request,
    query_of,
)
from tests.flows.session_world import SessionWorld, SessionWorldFactory
from tests.session_broker import ACR_ITSME

DOORS = ["authorize", "par", "native"]
OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


async def begin(world: SessionWorld, door: str, proxy: Proxy | None = None,
                **overrides: str | None) -> tuple[aiohttp.ClientResponse, Login]:  # fmt: skip
    """The proxy's first answer to a login at itsme through ``door``."""
    proxy = proxy or world.proxy
    if door == "authorize":
        return await proxy.authorize(acr_values=ACR_ITSME, **overrides)
    if door == "native":
        return await proxy.native(acr_values=ACR_ITSME, **overrides)
    login, form = new_request(acr_values=ACR_ITSME, **overrides)
    pushed = await proxy.post("/par", form)  # a public client pushes with its client_id
    body = await pushed.json()
    assert pushed.status == 201, body
    resp = await proxy.http.get(f"{proxy.issuer}/authorize", allow_redirects=False,
                                params={"client_id": PUBLIC, "request_uri": body["request_uri"]})
    await resp.read()
    return resp, login


async def onward(resp: aiohttp.ClientResponse, door: str) -> tuple[str, dict[str, Any]]:
    """Where the proxy sends the user agent (a 302, or the browser-less JSON action),
    and the JSON body (empty for a 302)."""
    if door == "native":
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body["url"], body
    assert resp.status == 302, await resp.text()
    return resp.headers["Location"], {}


async def back_at_callback(world: SessionWorld, callback: str, door: str,
                           proxy: Proxy | None = None) -> dict[str, str]:  # fmt: skip
    """The itsme app opened the proxy's callback (in the browser; or it opened the
    merchant app, which calls it for JSON): the merchant redirect's parameters."""
    proxy = proxy or world.proxy
    if door == "native":
        resp = await proxy.call(callback)
        url, body = await onward(resp, door)
        assert body["action"] == "call"
        assert url.startswith(APP_REDIRECT + "?")
        return query_of(url)
    resp = await proxy.http.get(callback, allow_redirects=False)
    await resp.read()
    assert resp.status == 302, await resp.text()
    return app_redirect_params(resp)


async def first_error(world: SessionWorld, door: str, **overrides: str | None
                      ) -> tuple[dict[str, str], Login]:  # fmt: skip
    """A login that fails at the start: the merchant redirect's parameters."""
    resp, login = await begin(world, door, **overrides)
    url, body = await onward(resp, door)
    if door == "native":
        assert body["action"] == "call"
    assert url.startswith(APP_REDIRECT + "?"), url
    return query_of(url), login


async def login_to_callback(world: SessionWorld, door: str) -> tuple[dict[str, str], Login]:
    """A login up to the itsme app's return: the merchant redirect's parameters."""
    resp, login = await begin(world, door)
    url, _ = await onward(resp, door)
    callback = await world.itsme(url)
    return await back_at_callback(world, callback, door), login


def client_of(door: str) -> str:
    return APP if door == "native" else PUBLIC


def assert_error(params: dict[str, str], login: Login, world: SessionWorld, error: str) -> None:
    assert params["error"] == error, params
    assert params["state"] == login.state
    assert params["iss"] == world.proxy.issuer
    assert "code" not in params


# -- whole logins ----------------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
async def test_login(session_world: SessionWorldFactory, door: str) -> None:
    world: SessionWorld = await session_world()
    # national_id (config: nin.value, a nested attribute) is released under its scope
    resp, login = await begin(world, door, scope="openid profile offline_access national_id")
    url, body = await onward(resp, door)
    opened = world.broker.session()
    assert url == world.broker.authorization_url(opened)  # the itsme app's universal link
    if door == "native":
        assert body["action"] == "deep_link"
        assert body["status_uri"].startswith(f"{world.proxy.issuer}/authorize/status/")
    create = next(r for r in world.broker.requests if r.path == "/auth/rest/sessions")
    assert create.json["additionalParameters"] == {
        "itsme_redirect_url": f"{world.proxy.issuer}/callback/itsme"}
    callback = await world.itsme(url)
    login.params = await back_at_callback(world, callback, door)
    assert login.params["state"] == login.state
    assert login.params["iss"] == world.proxy.issuer
    proxy = world.proxy
    resp = await proxy.exchange(login, client_id=client_of(door))
    tokens = await resp.json()
    assert resp.status == 200, tokens
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert (claims["acr"], claims["authentication_level"]) == (ACR_ITSME, "high")
    assert (claims["nonce"], claims["aud"]) == (login.nonce, client_of(door))
    info = await proxy.introspect(tokens["access_token"], rs=RS_BANK)
    assert (info["active"], info["acr"], info["bank_id"]) == (True, ACR_ITSME, "itsme")
    assert info["authentication_level"] == "high"
    assert "bank_access_token" not in info  # a session bank issues none
    userinfo = await proxy.http.get(f"{proxy.issuer}/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})
    assert await userinfo.json() == {
        "sub": info["sub"], "name": "Maxence Legrand", "given_name": "Maxence",
        "family_name": "Legrand", "birthdate": "1981-04-24", "national_id": "81042419835"}
    # refresh works from the proxy's own grant; the broker is not asked
    calls = len(world.broker.requests)
    refreshed = await proxy.refresh(tokens["refresh_token"], client_id=client_of(door))
    assert refreshed.status == 200, await refreshed.text()
    assert len(world.broker.requests) == calls


async def test_the_login_is_kept_under_the_brokers_state(
    session_world: SessionWorldFactory, redis_url: str
) -> None:
    world: SessionWorld = await session_world()
    url, _ = await world.start()
    state = query_of(url)["state"]
    assert state == world.broker.session().state
    store = open_store(world.proxy.config.store)
    try:
        found = await store.find(Transaction.kind, state)
        assert found is not None and found["bank_id"] == "itsme"
        assert state not in str(found)  # only a digest of it is kept, and that sealed
        assert found["conn_data"] == {}
        conn_data = Cipher(*world.proxy.config.keys.token_keys).decrypt(found["sealed"])
        assert conn_data["conn_data"]["state_sha256"] == hashlib.sha256(state.encode()).hexdigest()
        assert "watch" not in found  # a browser is told no status URL: none is kept
    finally:
        await store.close()
    resp, _ = await begin(world, "native")
    native_state = query_of((await onward(resp, "native"))[0])["state"]
    store = open_store(world.proxy.config.store)
    try:
        found = await store.find(Transaction.kind, native_state)
        assert found is not None and found["watch"]
    finally:
        await store.close()


async def test_a_second_instance_takes_the_callback(session_world: SessionWorldFactory) -> None:
    world: SessionWorld = await session_world()
    other = await world.another_proxy()
    resp, login = await begin(world, "native")
    _url, body = await onward(resp, "native")
    status_uri = body["status_uri"]
    world.broker.decision = None
    # the status is read on the other instance too
    read = await other.http.get(status_uri.replace(world.proxy.issuer, other.issuer))
    assert await read.json() == {"status": "pending", "interval": 1}
    callback = world.broker.decide(world.broker.session(), "approve")
    login.params = await back_at_callback(
        world, callback.replace(world.proxy.issuer, other.issuer), "native", other)
    tokens = await other.exchange(login, client_id=APP)
    assert tokens.status == 200, await tokens.text()
    access_token = (await tokens.json())["access_token"]
    assert (await world.proxy.introspect(access_token))["active"] is True
    # the other instance fetched an API token of its own: nothing but Redis is shared
    assert [r.path for r in world.broker.requests].count("/auth/open/connect/token") == 2


async def test_status_while_the_user_is_in_the_itsme_app(
    session_world: SessionWorldFactory,
) -> None:
    world: SessionWorld = await session_world(api={"poll_interval": 1.0})
    world.broker.decision = None  # the user has not answered yet
    resp, _ = await begin(world, "native")
    _, body = await onward(resp, "native")
    status_uri = body["status_uri"]

    async def status() -> dict[str, Any]:
        answer = await world.proxy.http.get(status_uri)
        assert answer.status == 200 and answer.headers["Cache-Control"] == "no-store"
        found: dict[str, Any] = await answer.json()
        return found

    reads = [r for r in world.broker.requests if r.method == "GET"]
    assert await status() == {"status": "pending", "interval": 1}
    assert await status() == {"status": "pending", "interval": 1}
    # at most one read of the broker per interval, however often the app asks
    assert len([r for r in world.broker.requests if r.method == "GET"]) == len(reads) + 1
    callback = world.broker.decide(world.broker.session(), "approve")
    await back_at_callback(world, callback, "native")
    assert await status() == {"status": "complete", "interval": 1}


async def test_answers_match_the_document(session_world: SessionWorldFactory) -> None:
    """docs/openapi.yaml's NativeAction (with status_uri), LoginStatus and BankStatuses
    describe what a session login answers (the schemathesis run has no session bank)."""
    schemas = yaml.safe_load(OPENAPI.read_text())["components"]["schemas"]
    world: SessionWorld = await session_world()
    world.broker.decision = None
    resp, _ = await begin(world, "native")
    _, action = await onward(resp, "native")
    jsonschema_rs.validate(schemas["NativeAction"], action)
    status = await world.proxy.http.get(action["status_uri"])
    jsonschema_rs.validate(schemas["LoginStatus"], await status.json())
    ready = await world.proxy.http.get(f"{world.proxy.issuer}/readyz")
    jsonschema_rs.validate(schemas["BankStatuses"], (await ready.json())["banks"])
    with pytest.raises(ValueError):  # the schemas do check: a wrong status is refused
        jsonschema_rs.validate(schemas["LoginStatus"], {"status": "done", "interval": 1})


async def test_status_after_the_user_cancelled(session_world: SessionWorldFactory) -> None:
    world: SessionWorld = await session_world(api={"poll_interval": 0.2})
    world.broker.decision = None
    resp, _ = await begin(world, "native")
    _, body = await onward(resp, "native")
    world.broker.decide(world.broker.session(), "abort")  # the app never came back
    answer = await world.proxy.http.get(body["status_uri"])
    assert await answer.json() == {"status": "failed", "interval": 1}
    again = await world.proxy.http.get(body["status_uri"])  # within the interval: kept
    assert await again.json() == {"status": "failed", "interval": 1}


async def test_status_says_how_the_callback_ended(session_world: SessionWorldFactory) -> None:
    """The broker's session succeeded, but the proxy refused the login (its loa is below
    the route's): the status is the login's, failed, not the broker's SUCCESS."""
    world: SessionWorld = await session_world(api={"loa": {"high": "high"}})
    world.broker.loa = "substantial"
    resp, _ = await begin(world, "native")
    url, body = await onward(resp, "native")
    params = await back_at_callback(world, await world.itsme(url), "native")
    assert params["error"] == "access_denied"
    assert world.broker.session().status == "SUCCESS"
    answer = await world.proxy.http.get(body["status_uri"])
    assert await answer.json() == {"status": "failed", "interval": 1}


async def test_status_of_an_expired_session(session_world: SessionWorldFactory) -> None:
    world: SessionWorld = await session_world()
    world.broker.decision = None
    world.broker.session_lifetime = 1
    resp, _ = await begin(world, "native")
    _, body = await onward(resp, "native")
    await asyncio.sleep(1.1)
    answer = await world.proxy.http.get(body["status_uri"])
    assert await answer.json() == {"status": "failed", "interval": 1}


async def test_the_callback_is_taken_once(session_world: SessionWorldFactory) -> None:
    world: SessionWorld = await session_world()
    url, _ = await world.start()
    callback = await world.itsme(url)
    first = await world.proxy.http.get(callback, allow_redirects=False)
    assert first.status == 302 and app_redirect_params(first)["code"]
    again = await world.proxy.http.get(callback, allow_redirects=False)
    assert again.status == 400 and "Location" not in again.headers
    assert "already completed" in await again.text()


async def test_interstitial(session_world: SessionWorldFactory) -> None:
    world: SessionWorld = await session_world(interstitial=True)
    resp, _ = await world.proxy.authorize(acr_values=ACR_ITSME)
    assert resp.status == 200
    page = await resp.text()
    assert "Continue to itsme" in page
    assert world.broker.authorization_url(world.broker.session()).replace("&", "&amp;") in page


async def test_native_false(session_world: SessionWorldFactory) -> None:
    world: SessionWorld = await session_world(native=False)
    resp, _ = await begin(world, "native")
    assert resp.status == 400
    assert (await resp.json())["error"] == "native_app2app_unsupported"
    assert world.broker.requests == []


async def test_readiness_reports_the_api(session_world: SessionWorldFactory) -> None:
    world: SessionWorld = await session_world()
    ready = await world.proxy.http.get(f"{world.proxy.issuer}/readyz")
    assert ready.status == 200
    assert (await ready.json())["banks"]["itsme"] == {"api": "ok"}


async def test_nothing_secret_is_logged(session_world: SessionWorldFactory,
                                        log_buffer: io.StringIO) -> None:  # fmt: skip
    world: SessionWorld = await session_world()
    login = await world.login()
    opened = world.broker.session()
    validation = next(r for r in world.broker.requests if r.path.endswith("/token")
                      and r.json is not None)
    api_token = validation.headers["Authorization"].removeprefix("Bearer ")
    logs = log_buffer.getvalue()
    assert "login.completed" in logs
    for secret in (opened.state, validation.json["code"], api_token, login.code,
                   opened.transaction_id):
        assert secret not in logs


# -- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
async def test_the_user_cancels_in_itsme(session_world: SessionWorldFactory, door: str) -> None:
    world: SessionWorld = await session_world()
    world.broker.decision = "abort"
    params, login = await login_to_callback(world, door)
    assert_error(params, login, world, "access_denied")
    assert not any(r.path.endswith("/login-headless/token") for r in world.broker.requests)


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("knob", ["wrong_code", "wrong_transaction_id"])
async def test_code_validation_fails(session_world: SessionWorldFactory, door: str,
                                     knob: str) -> None:  # fmt: skip
    world: SessionWorld = await session_world()
    setattr(world.broker, knob, True)
    params, login = await login_to_callback(world, door)
    assert_error(params, login, world, "server_error")
    assert params["error_description"] == "the bank refused the login's code"


@pytest.mark.parametrize("door", DOORS)
async def test_session_ends_in_error(session_world: SessionWorldFactory, door: str) -> None:
    world: SessionWorld = await session_world()
    world.broker.end_with = "ERROR"
    params, login = await login_to_callback(world, door)
    assert_error(params, login, world, "server_error")


@pytest.mark.parametrize("door", DOORS)
async def test_session_expired(session_world: SessionWorldFactory, door: str) -> None:
    world: SessionWorld = await session_world()
    world.broker.session_lifetime = 1
    resp, login = await begin(world, door)
    url, _ = await onward(resp, door)
    callback = await world.itsme(url)
    await asyncio.sleep(1.1)
    params = await back_at_callback(world, callback, door)
    assert_error(params, login, world, "access_denied")
    assert "expired" in params["error_description"]


@pytest.mark.parametrize("door", DOORS)
async def test_state_that_does_not_match(session_world: SessionWorldFactory, door: str) -> None:
    world: SessionWorld = await session_world()
    world.broker.state_mismatch = True
    resp, _ = await begin(world, door)
    url, _ = await onward(resp, door)
    callback = await world.itsme(url)
    if door == "native":
        answer = await world.proxy.call(callback)
        assert answer.status == 400 and (await answer.json())["error"] == "invalid_request"
    else:
        # no login has this state: nothing to redirect to, an error page
        answer = await world.proxy.http.get(callback, allow_redirects=False)
        assert answer.status == 400 and "Location" not in answer.headers
        assert "<code>invalid_request</code>" in await answer.text()
    assert not any(r.path.endswith("/login-headless/token") for r in world.broker.requests)


@pytest.mark.parametrize("door", DOORS)
async def test_token_request_url_on_another_origin(
    session_world: SessionWorldFactory, door: str, log_buffer: io.StringIO
) -> None:
    world: SessionWorld = await session_world()
    world.broker.foreign_token_url = True
    params, login = await first_error(world, door)
    assert_error(params, login, world, "server_error")
    assert "session: idpData.tokenRequestUrl is not on the API's origin" in log_buffer.getvalue()


@pytest.mark.parametrize("door", DOORS)
async def test_api_token_expires_mid_flow(session_world: SessionWorldFactory, door: str) -> None:
    world: SessionWorld = await session_world()
    resp, login = await begin(world, door)
    url, _ = await onward(resp, door)
    callback = await world.itsme(url)
    world.broker.expire_api_tokens()
    login.params = await back_at_callback(world, callback, door)
    assert login.params["code"]
    tokens = await world.proxy.exchange(login, client_id=client_of(door))
    assert tokens.status == 200


@pytest.mark.parametrize("door", DOORS)
async def test_slow_api(session_world: SessionWorldFactory, door: str) -> None:
    world: SessionWorld = await session_world(timeout=0.5)
    resp, login = await begin(world, door)
    url, _ = await onward(resp, door)
    callback = await world.itsme(url)
    world.broker.delay = 2.0
    began = time.monotonic()
    params = await back_at_callback(world, callback, door)
    assert time.monotonic() - began < 1.5
    assert_error(params, login, world, "temporarily_unavailable")
    # at the start too
    params, login = await first_error(world, door)
    assert_error(params, login, world, "temporarily_unavailable")


@pytest.mark.parametrize("door", DOORS)
async def test_session_never_ends(session_world: SessionWorldFactory, door: str) -> None:
    world: SessionWorld = await session_world(timeout=0.5, api={"poll_interval": 0.1})
    world.broker.pending_reads = 10_000
    params, login = await login_to_callback(world, door)
    assert_error(params, login, world, "temporarily_unavailable")


@pytest.mark.parametrize("door", DOORS)
async def test_loa_below_the_route(session_world: SessionWorldFactory, door: str) -> None:
    world: SessionWorld = await session_world(api={"loa": {"high": "high"}})
    world.broker.loa = "substantial"
    params, login = await login_to_callback(world, door)
    assert_error(params, login, world, "access_denied")


@pytest.mark.parametrize("door", DOORS)
async def test_broker_refuses_the_session(session_world: SessionWorldFactory, door: str) -> None:
    world: SessionWorld = await session_world()
    world.broker.redirect_urls = []  # the callback is not allowlisted at the broker
    params, login = await first_error(world, door)
    assert_error(params, login, world, "server_error")
    assert params["error_description"] == "the bank refused the login request"


async def test_refused_session_falls_back(session_world: SessionWorldFactory) -> None:
    world: SessionWorld = await session_world(fallback_acr=ACR_A)
    world.broker.redirect_urls = []
    resp, _ = await world.proxy.authorize(acr_values=ACR_ITSME)
    assert resp.status == 302
    assert resp.headers["Location"].startswith(world.bank_a.issuer + "/authorize?")


async def test_a_state_the_broker_gives_twice_is_refused(
    session_world: SessionWorldFactory,
) -> None:
    world: SessionWorld = await session_world()
    fixed = "S" * 43 + ":a-sandbox"

    def same_state(body: dict[str, Any]) -> dict[str, Any]:
        url = body["idpData"]["authorizationRequestUrl"]
        body["idpData"]["authorizationRequestUrl"] = url.split("&state=")[0] + f"&state={fixed}"
        return body

    world.broker.create_answer = same_state
    first, _ = await world.start()
    assert query_of(first)["state"] == fixed
    params, login = await first_error(world, "authorize")
    assert_error(params, login, world, "server_error")


async def test_expired_transaction(session_world: SessionWorldFactory) -> None:
    world: SessionWorld = await session_world(lifetimes=Lifetimes(transaction=1))
    url, _ = await world.start()
    callback = await world.itsme(url)
    await asyncio.sleep(2.1)
    resp = await world.proxy.http.get(callback, allow_redirects=False)
    assert resp.status == 400 and "Location" not in resp.headers
    assert "expired" in await resp.text()


HUGE = b'"' + b"x" * (2 * 1024 * 1024) + b'"'


@pytest.mark.parametrize("answer", [b"[" * 200_000, b"<html>", HUGE, {}, {"id": "x"}, [1]])
async def test_odd_created_sessions_are_server_errors(session_world: SessionWorldFactory,
                                                      answer: Any) -> None:  # fmt: skip
    world: SessionWorld = await session_world()
    world.broker.create_answer = lambda _: answer
    params, login = await first_error(world, "authorize")
    assert_error(params, login, world, "server_error")


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda body: b"[" * 200_000,
        lambda body: HUGE,
        lambda body: {**body, "status": ["SUCCESS"]},
        lambda body: {**body, "subject": None},
        lambda body: {**body, "subject": {"id": {"nested": True}}},
    ],
)
async def test_odd_session_reads_are_server_errors(session_world: SessionWorldFactory,
                                                   rewrite: Any) -> None:  # fmt: skip
    world: SessionWorld = await session_world()
    world.broker.read_answer = rewrite
    params, login = await login_to_callback(world, "authorize")
    assert_error(params, login, world, "server_error")
