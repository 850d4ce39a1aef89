"""CIBA poll mode on the sandbox bank, and its bank app page (BankID App2App style),
driven over real HTTP as the proxy will drive them."""

from __future__ import annotations

import html
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest
from test_sandbox import (
    CLIENT_OF,
    METHODS,
    SECRET,
    assertion,
    auth,
    bank_jwks,
    make_clients,
    post_token,
    unverified,
    verify,
)

from federation.sandbox import (
    CIBA_GRANT_TYPE,
    CibaRequestClosed,
    SandboxBank,
    UnknownCibaRequest,
    serve_sandbox,
)

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
APP_CALLBACK = "https://merchant.example/app2app/return?shop=1"


@pytest.fixture
async def bank() -> AsyncIterator[SandboxBank]:
    # auto_approve stays at its default (True): it must not touch CIBA requests
    async with serve_sandbox(SandboxBank(clients=make_clients())) as served:
        yield served


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- helpers ---------------------------------------------------------------


async def bc_authorize(
    http: aiohttp.ClientSession,
    bank: SandboxBank,
    client_id: str = "basic-client",
    fields: Mapping[str, str | None] | None = None,
    secret: str = SECRET,
) -> tuple[int, dict[str, Any]]:
    """POST /bc-authorize; a field given as None is left out."""
    headers, creds = auth(bank, client_id, secret)
    form = {"scope": "openid profile", "login_hint": "alice", **creds, **(fields or {})}
    data = {k: v for k, v in form.items() if v is not None}
    async with http.post(f"{bank.issuer}/bc-authorize", data=data, headers=headers) as resp:
        assert resp.content_type == "application/json"
        return resp.status, await resp.json()


async def start(
    http: aiohttp.ClientSession,
    bank: SandboxBank,
    client_id: str = "basic-client",
    **fields: str | None,
) -> dict[str, Any]:
    status, body = await bc_authorize(http, bank, client_id, fields)
    assert status == 200, body
    return body


async def poll(
    http: aiohttp.ClientSession,
    bank: SandboxBank,
    auth_req_id: str,
    client_id: str = "basic-client",
) -> tuple[int, dict[str, Any]]:
    form = {"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id}
    return await post_token(http, bank, client_id, form)


async def poll_error(
    http: aiohttp.ClientSession,
    bank: SandboxBank,
    auth_req_id: str,
    client_id: str = "basic-client",
) -> tuple[int, str]:
    status, body = await poll(http, bank, auth_req_id, client_id)
    return status, body.get("error", "")


def elapse(bank: SandboxBank, auth_req_id: str, seconds: float) -> None:
    """As if ``seconds`` had passed for that request (its expiry and its last poll)."""
    req = bank.ciba_requests[auth_req_id]
    req.expires_at -= seconds
    if req.last_poll is not None:
        req.last_poll -= seconds


# -- discovery and /bc-authorize ---------------------------------------------------


async def test_metadata(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{bank.issuer}/.well-known/openid-configuration") as resp:
        meta = await resp.json()
    assert meta["backchannel_authentication_endpoint"] == f"{bank.issuer}/bc-authorize"
    assert meta["backchannel_token_delivery_modes_supported"] == ["poll"]
    assert meta["backchannel_user_code_parameter_supported"] is False
    assert CIBA_GRANT_TYPE == CIBA_GRANT
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token", CIBA_GRANT,
                                             "client_credentials"]
    assert meta["app_authentication_endpoint"] == f"{bank.issuer}/oidc/v1/app-authorize"


async def test_acknowledgement(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    body = await start(http, bank)
    assert set(body) == {"auth_req_id", "expires_in", "interval"}
    assert (body["expires_in"], body["interval"]) == (120, 5)
    req = bank.ciba_requests[body["auth_req_id"]]
    assert (req.status, req.client_id, req.interval) == ("pending", "basic-client", 5)
    assert req.handle != body["auth_req_id"]
    assert body["auth_req_id"] not in repr(req) and req.handle not in repr(req)


async def test_expiry_and_interval_knobs(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.ciba_interval, bank.ciba_expires_in = 2, 60
    body = await start(http, bank, requested_expiry="30")
    assert (body["expires_in"], body["interval"]) == (30, 2)
    assert (await start(http, bank, requested_expiry="600"))["expires_in"] == 60  # the min
    assert (await start(http, bank))["expires_in"] == 60


@pytest.mark.parametrize("hint", ["login_hint_token", "id_token_hint"])
async def test_each_hint_alone_is_enough(
    hint: str, bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    body = await start(http, bank, login_hint=None, **{hint: "opaque-hint"})
    assert bank.ciba_requests[body["auth_req_id"]].form[hint] == "opaque-hint"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"login_hint": None}, "invalid_request"),
        ({"login_hint": ""}, "invalid_request"),
        ({"id_token_hint": "eyJ.e30.sig"}, "invalid_request"),
        ({"login_hint": None, "login_hint_token": "t", "id_token_hint": "i"}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"scope": None}, "invalid_scope"),
        ({"requested_expiry": "0"}, "invalid_request"),
        ({"requested_expiry": "-5"}, "invalid_request"),
        ({"requested_expiry": "1.5"}, "invalid_request"),
        ({"requested_expiry": "soon"}, "invalid_request"),
        ({"requested_expiry": ""}, "invalid_request"),
        ({"app_callback_uri": "no scheme"}, "invalid_request"),
    ],
    ids=[
        "no-hint",
        "empty-hint",
        "two-hints",
        "two-other-hints",
        "no-openid",
        "no-scope",
        "expiry-0",
        "expiry-negative",
        "expiry-fraction",
        "expiry-word",
        "expiry-empty",
        "bad-app-callback",
    ],
)
async def test_bc_authorize_validation(
    fields: dict[str, str | None], error: str, bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    status, body = await bc_authorize(http, bank, fields=fields)
    assert (status, body["error"]) == (400, error)
    assert body["error_description"]
    assert bank.ciba_requests == {}


@pytest.mark.parametrize("client_id", ["basic-client", "post-client"])
async def test_bc_authorize_bad_client_auth(
    client_id: str, bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    status, body = await bc_authorize(http, bank, client_id, secret="wrong")
    assert (status, body["error"]) == (401, "invalid_client")
    async with http.post(
        f"{bank.issuer}/bc-authorize", data={"scope": "openid", "login_hint": "alice"}
    ) as resp:
        assert (resp.status, (await resp.json())["error"]) == (401, "invalid_client")
    assert bank.ciba_requests == {}


async def test_client_assertion_may_name_the_backchannel_endpoint(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    signed = assertion(bank, "jwt-client", aud=f"{bank.issuer}/bc-authorize")
    form = {
        "scope": "openid",
        "login_hint": "alice",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": signed,
    }
    async with http.post(f"{bank.issuer}/bc-authorize", data=form) as resp:
        assert resp.status == 200
        rid = (await resp.json())["auth_req_id"]
    assert "client_assertion" not in bank.ciba_requests[rid].form


@pytest.mark.parametrize(
    ("error", "status"),
    [("unknown_user_id", 400), ("expired_login_hint_token", 400), ("access_denied", 403)],
)
async def test_ciba_refuse(
    error: str, status: int, bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    bank.ciba_refuse = error
    got, body = await bc_authorize(http, bank)
    assert (got, body["error"]) == (status, error)
    assert bank.ciba_requests == {}


async def test_other_fields_are_kept_credentials_are_not(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    body = await start(
        http,
        bank,
        "post-client",
        device_info='{"os": "iOS"}',
        app_callback_uri=APP_CALLBACK,
        binding_message="A1B2",
    )
    req = bank.ciba_requests[body["auth_req_id"]]
    assert req.form["device_info"] == '{"os": "iOS"}'
    assert req.app_callback_uri == APP_CALLBACK and req.binding_message == "A1B2"
    assert "client_secret" not in req.form and req.form["client_id"] == "post-client"
    sent = bank.last("/bc-authorize")
    assert sent.form["device_info"] == '{"os": "iOS"}' and sent.form["client_secret"] == SECRET


# -- polling -----------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
async def test_poll_then_approve(
    method: str, bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    client_id = CLIENT_OF[method]
    body = await start(http, bank, client_id, acr_values="urn:other:loa urn:sandbox:loa:high")
    rid = body["auth_req_id"]
    assert await poll_error(http, bank, rid, client_id) == (400, "authorization_pending")
    bank.ciba_approve(rid)
    status, tokens = await poll(http, bank, rid, client_id)  # at once: decided, no slow_down
    assert status == 200, tokens
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 300
    assert tokens["access_token"] and tokens["refresh_token"]
    assert tokens["scope"] == "openid profile"
    claims = verify(tokens["id_token"], await bank_jwks(http, bank), bank, client_id)
    assert claims["sub"] == "sandbox-user-1"
    assert claims["aud"] == claims["azp"] == client_id
    assert claims["acr"] == "urn:sandbox:loa:high"  # the first supported acr_values entry
    assert claims["at_hash"] and claims["name"] == "Alice Sandbox"
    assert "nonce" not in claims
    assert "urn:openid:params:jwt:claim:auth_req_id" not in claims  # Push mode only
    assert abs(claims["auth_time"] - time.time()) < 5
    assert bank.last("/token").form["grant_type"] == CIBA_GRANT


async def test_default_acr_when_none_supported(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    bank.ciba_decision = "approve"
    rid = (await start(http, bank, acr_values="urn:other:loa"))["auth_req_id"]
    _, tokens = await poll(http, bank, rid)
    assert unverified(tokens["id_token"])["acr"] == "urn:sandbox:loa:substantial"


async def test_tokens_work_at_userinfo_introspect_and_refresh(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    bank.ciba_decision = "approve"
    rid = (await start(http, bank))["auth_req_id"]
    _, tokens = await poll(http, bank, rid)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with http.get(f"{bank.issuer}/userinfo", headers=bearer) as resp:
        assert resp.status == 200 and (await resp.json())["sub"] == "sandbox-user-1"
    headers, fields = auth(bank, "basic-client")
    async with http.post(
        f"{bank.issuer}/introspect",
        data={**fields, "token": tokens["access_token"]},
        headers=headers,
    ) as resp:
        info = await resp.json()
    assert info["active"] is True and info["client_id"] == "basic-client"
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    status, refreshed = await post_token(http, bank, "basic-client", form)
    assert status == 200 and refreshed["access_token"] != tokens["access_token"]
    assert unverified(refreshed["id_token"])["sub"] == "sandbox-user-1"


async def test_slow_down_when_polled_within_interval(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    rid = (await start(http, bank))["auth_req_id"]
    assert await poll_error(http, bank, rid) == (400, "authorization_pending")
    assert await poll_error(http, bank, rid) == (400, "slow_down")  # sooner than 5 s
    elapse(bank, rid, 5)
    assert await poll_error(http, bank, rid) == (400, "authorization_pending")


async def test_slow_down_knob(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.ciba_slow_down = 2
    rid = (await start(http, bank))["auth_req_id"]
    for expected in ("slow_down", "slow_down", "authorization_pending"):
        assert await poll_error(http, bank, rid) == (400, expected)
        elapse(bank, rid, 5)
    assert bank.ciba_slow_down == 0


async def test_deny_is_access_denied(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    rid = (await start(http, bank))["auth_req_id"]
    bank.ciba_deny(rid)
    assert await poll_error(http, bank, rid) == (400, "access_denied")
    assert await poll_error(http, bank, rid) == (400, "access_denied")  # not slow_down
    with pytest.raises(CibaRequestClosed):
        bank.ciba_approve(rid)


async def test_expired_is_expired_token(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    body = await start(http, bank, requested_expiry="1")
    rid = body["auth_req_id"]
    assert body["expires_in"] == 1
    assert bank.ciba_requests[rid].expires_at - time.time() <= 1
    elapse(bank, rid, 1)
    assert await poll_error(http, bank, rid) == (400, "expired_token")
    with pytest.raises(CibaRequestClosed):
        bank.ciba_approve(rid)


async def test_expired_after_approval_is_expired_token(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    bank.ciba_decision = "approve"
    rid = (await start(http, bank))["auth_req_id"]
    elapse(bank, rid, 120)
    assert await poll_error(http, bank, rid) == (400, "expired_token")


async def test_second_exchange_is_invalid_grant(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    rid = (await start(http, bank))["auth_req_id"]
    bank.ciba_approve()
    assert (await poll(http, bank, rid))[0] == 200
    assert await poll_error(http, bank, rid) == (400, "invalid_grant")
    assert bank.ciba_requests[rid].consumed  # kept, so the replay is seen


async def test_other_clients_request_is_invalid_grant(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    rid = (await start(http, bank, "basic-client"))["auth_req_id"]
    bank.ciba_approve(rid)
    assert await poll_error(http, bank, rid, "post-client") == (400, "invalid_grant")
    assert (await poll(http, bank, rid, "basic-client"))[0] == 200  # still the owner's


async def test_unknown_or_missing_auth_req_id(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    assert await poll_error(http, bank, "made-up") == (400, "invalid_grant")
    form = {"grant_type": CIBA_GRANT}
    status, body = await post_token(http, bank, "basic-client", form)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_poll_needs_client_auth(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    rid = (await start(http, bank))["auth_req_id"]
    bank.ciba_approve(rid)
    form = {"grant_type": CIBA_GRANT, "auth_req_id": rid}
    status, body = await post_token(http, bank, "basic-client", form, secret="wrong")
    assert (status, body["error"]) == (401, "invalid_client")
    assert not bank.ciba_requests[rid].consumed


async def test_id_token_only(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.ciba_id_token_only = True
    bank.ciba_decision = "approve"
    rid = (await start(http, bank))["auth_req_id"]
    status, tokens = await poll(http, bank, rid)
    assert status == 200
    assert set(tokens) == {"id_token", "token_type", "expires_in"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 300)
    claims = verify(tokens["id_token"], await bank_jwks(http, bank), bank, "basic-client")
    assert "at_hash" not in claims and claims["sub"] == "sandbox-user-1"
    assert bank.access_tokens == {} and bank.refresh_tokens == {}


async def test_id_token_fault_applies(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.id_token_fault = "wrong_aud"
    bank.ciba_decision = "approve"
    rid = (await start(http, bank))["auth_req_id"]
    _, tokens = await poll(http, bank, rid)
    assert unverified(tokens["id_token"])["aud"] == "someone-else"


# -- deciding ----------------------------------------------------------------------


async def test_auto_approve_does_not_apply_ciba_decision_does(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    assert bank.auto_approve
    rid = (await start(http, bank))["auth_req_id"]
    assert bank.ciba_requests[rid].status == "pending"
    bank.ciba_decision = "deny"
    rid = (await start(http, bank))["auth_req_id"]
    assert await poll_error(http, bank, rid) == (400, "access_denied")
    bank.ciba_decision = "approve"
    rid = (await start(http, bank))["auth_req_id"]
    assert (await poll(http, bank, rid))[0] == 200
    with pytest.raises(ValueError, match="unknown ciba_decision"):
        bank.ciba_decision = "maybe"


async def test_bank_methods_decide_the_most_recent_by_default(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(UnknownCibaRequest):
        bank.ciba_approve()
    with pytest.raises(LookupError):
        bank.ciba_deny("made-up")
    first = (await start(http, bank))["auth_req_id"]
    second = (await start(http, bank))["auth_req_id"]
    assert bank.ciba_approve().auth_req_id == second
    assert bank.ciba_requests[first].status == "pending"
    assert bank.ciba_deny(first).status == "denied"
    assert bank.ciba_requests[second].status == "approved"


async def test_decide_endpoint(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    rid = (await start(http, bank))["auth_req_id"]

    async def decide(form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        async with http.post(f"{bank.issuer}/ciba/decide", data=form) as resp:
            assert resp.content_type == "application/json"
            return resp.status, await resp.json()

    status, body = await decide({"auth_req_id": rid, "decision": "maybe"})
    assert (status, body["error"]) == (400, "invalid_request")
    assert (await decide({"auth_req_id": "made-up", "decision": "approve"}))[0] == 404
    assert (await decide({"decision": "approve"}))[0] == 404
    assert await decide({"auth_req_id": rid, "decision": "approve"}) == (
        200,
        {"status": "approved"},
    )
    assert (await decide({"auth_req_id": rid, "decision": "deny"}))[0] == 409
    assert (await poll(http, bank, rid))[0] == 200


# -- the bank app (BankID App2App extension) ---------------------------------------


async def open_app(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, allow_redirects=False) as resp:
        assert resp.content_type == "text/html"
        return resp.status, await resp.text()


async def app_decide(
    http: aiohttp.ClientSession, authorize_uri: str, decision: str
) -> aiohttp.ClientResponse:
    async with http.post(
        f"{authorize_uri}/decide", data={"decision": decision}, allow_redirects=False
    ) as resp:
        await resp.read()
        return resp


async def test_deep_link_only_with_the_knob(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    assert "authorize_uri" not in await start(http, bank)
    bank.ciba_deep_link = True
    body = await start(http, bank)
    handle = bank.ciba_requests[body["auth_req_id"]].handle
    assert body["authorize_uri"] == f"{bank.issuer}/app2app/{handle}"
    assert body["auth_req_id"] not in body["authorize_uri"]


async def test_app_page_approve_returns_to_the_app(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    bank.ciba_deep_link = True
    message = '<b>Pay</b> "10 EUR" & more'
    body = await start(http, bank, binding_message=message, app_callback_uri=APP_CALLBACK)
    uri, rid = body["authorize_uri"], body["auth_req_id"]
    status, text = await open_app(http, uri)
    assert status == 200
    assert html.escape(message) in text and message not in text
    assert ">Approve<" in text and ">Deny<" in text
    assert f'action="{uri}/decide"' in text
    assert '<html lang="en">' in text
    assert rid not in text
    resp = await app_decide(http, uri, "approve")
    assert resp.status == 302 and resp.headers["Location"] == APP_CALLBACK
    status, tokens = await poll(http, bank, rid)
    assert status == 200 and tokens["id_token"]
    # answered: the page says so, without buttons (Back from the merchant lands here);
    # its form refuses a second decision
    status, text = await open_app(http, uri)
    assert status == 200 and "You already answered" in text and "<form" not in text
    assert (await app_decide(http, uri, "deny")).status == 409


async def test_app_page_deny_without_callback(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    bank.ciba_deep_link = True
    body = await start(http, bank)
    uri, rid = body["authorize_uri"], body["auth_req_id"]
    assert (await app_decide(http, uri, "maybe")).status == 400
    resp = await app_decide(http, uri, "deny")
    # post/redirect/get: the answer page is a GET of its own, so a reload posts nothing
    assert resp.status == 303 and resp.headers["Location"] == f"{uri}/done"
    status, text = await open_app(http, f"{uri}/done")
    assert status == 200 and "you denied the sign-in" in text
    assert await poll_error(http, bank, rid) == (400, "access_denied")
    async with http.post(f"{uri}/decide", data={"decision": "deny"}) as page:
        assert page.status == 409


async def test_app_page_return_page(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.ciba_deep_link = True
    uri = (await start(http, bank))["authorize_uri"]
    async with http.post(f"{uri}/decide", data={"decision": "approve"}) as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert "Return to the app" in await resp.text()


async def test_app_page_unknown_handle(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    status, text = await open_app(http, f"{bank.issuer}/app2app/made-up")
    assert status == 404 and "no such sign-in request" in text
    resp = await app_decide(http, f"{bank.issuer}/app2app/made-up", "approve")
    assert resp.status == 404 and "Location" not in resp.headers
