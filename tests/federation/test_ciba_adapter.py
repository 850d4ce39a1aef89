"""CibaAdapter (CIBA poll mode + BankID app-authorize deep link) against the fake bank."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from fedfakes import CLIENT_ID, SECRET, FakeBank, new_key, self_signed, settings_for

from federation.ciba import CibaAdapter, usable_deep_link
from federation.idtoken import DESCRIPTION
from federation.oidc_params import tokens_from_response
from federation.protocol import (
    BankError,
    BankResult,
    BankTokens,
    DecoupledAdapter,
    DecoupledRequest,
    DecoupledStart,
    Pending,
    RedirectAdapter,
)
from federation.registry import ADAPTERS, build_adapters
from federation.settings import TlsSettings

RETURN = "https://proxy.example/resume/h-1"
REQUEST = DecoupledRequest(
    return_uri=RETURN, requested_expiry=300, login_hint="alice", binding_message="W4SCT"
)
ACK = {"auth_req_id": "arid-1", "expires_in": 120, "interval": 2}
CLIENT_KEY = new_key(kid="merchant-key-1")


@pytest.fixture
def bank(fake_bank: FakeBank) -> FakeBank:
    fake_bank.backchannel = True
    fake_bank.answers["/bc-authorize"] = (200, ACK)
    return fake_bank


def adapter_for(bank: FakeBank, session: aiohttp.ClientSession, **overrides: Any) -> CibaAdapter:
    return CibaAdapter(settings_for(bank.issuer, kind="ciba", **overrides), session)


def token_answer(bank: FakeBank, **fields: Any) -> dict[str, Any]:
    body = {
        "access_token": "at-1",
        "token_type": "Bearer",
        "expires_in": 60,
        "id_token": bank.id_token(nonce=None),
        "refresh_token": "rt-1",
        "scope": "openid",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


async def refused(adapter: CibaAdapter, request: DecoupledRequest = REQUEST) -> BankError:
    with pytest.raises(BankError) as info:
        await adapter.start_decoupled(request)
    return info.value


async def poll_refused(adapter: CibaAdapter, auth_req_id: str = "arid-1") -> BankError:
    with pytest.raises(BankError) as info:
        await adapter.poll(auth_req_id, 5)
    return info.value


# -- wiring ---------------------------------------------------------------------


async def test_is_a_decoupled_adapter(bank: FakeBank, session: aiohttp.ClientSession):
    adapter = adapter_for(bank, session)
    assert isinstance(adapter, DecoupledAdapter)
    assert not isinstance(adapter, RedirectAdapter)
    built = build_adapters([settings_for(bank.issuer, kind="ciba")], session)
    assert type(ADAPTERS["ciba"](settings_for(bank.issuer, kind="ciba"), session)) is CibaAdapter
    assert type(built["bank-a"]) is CibaAdapter
    assert await adapter.status() == {"metadata": "ok"}


# -- the backchannel authentication request -------------------------------------


async def test_start_sends_the_backchannel_request(bank: FakeBank, session: aiohttp.ClientSession):
    adapter = adapter_for(
        bank,
        session,
        scopes=("openid", "profile"),
        upstream_acr_values=("urn:bankid:loa:high", "urn:bankid:loa:sub"),
    )
    started = await adapter.start_decoupled(
        DecoupledRequest(
            return_uri=RETURN,
            requested_expiry=300,
            login_hint="alice",
            binding_message="W4SCT",
            extra={"device_info": "eyJvcyI6ImlPUyJ9"},
        )
    )
    assert started == DecoupledStart(auth_req_id="arid-1", expires_in=120, interval=2)
    sent = bank.last("/bc-authorize")
    assert sent.method == "POST"
    assert sent.form == {
        "scope": "openid profile",
        "acr_values": "urn:bankid:loa:high urn:bankid:loa:sub",
        "login_hint": "alice",
        "binding_message": "W4SCT",
        "requested_expiry": "300",
        "app_callback_uri": RETURN,
        "device_info": "eyJvcyI6ImlPUyJ9",
    }
    assert sent.headers["Authorization"].startswith("Basic ")


async def test_optional_fields_are_left_out(bank: FakeBank, session: aiohttp.ClientSession):
    await adapter_for(bank, session).start_decoupled(
        DecoupledRequest(return_uri=RETURN, requested_expiry=0, login_hint="alice")
    )
    assert bank.last("/bc-authorize").form == {
        "scope": "openid",
        "login_hint": "alice",
        "app_callback_uri": RETURN,
    }


async def test_pass_through_fields_never_override(bank: FakeBank, session: aiohttp.ClientSession):
    extra = {
        "scope": "openid admin",
        "login_hint": "mallory",
        "login_hint_token": "forged",
        "id_token_hint": "ey.forged",
        "app_callback_uri": "https://evil.example/",
        "requested_expiry": "99999",
        "binding_message": "OTHER",
        "client_id": "someone-else",
        "client_assertion": "forged",
        "device_info": "d-1",
    }
    request = DecoupledRequest(
        return_uri=RETURN, requested_expiry=300, login_hint="alice", extra=extra
    )
    await adapter_for(bank, session).start_decoupled(request)
    assert bank.last("/bc-authorize").form == {
        "scope": "openid",
        "login_hint": "alice",
        "requested_expiry": "300",
        "app_callback_uri": RETURN,
        "device_info": "d-1",
    }


async def test_login_hint_token_wins_over_login_hint(
    bank: FakeBank, session: aiohttp.ClientSession
):
    adapter = adapter_for(bank, session)
    both = DecoupledRequest(
        return_uri=RETURN, requested_expiry=300, login_hint="alice", login_hint_token="lht-1"
    )
    await adapter.start_decoupled(both)
    form = bank.last("/bc-authorize").form
    assert form["login_hint_token"] == "lht-1"
    assert "login_hint" not in form
    only_token = DecoupledRequest(return_uri=RETURN, requested_expiry=300, login_hint_token="t")
    await adapter.start_decoupled(only_token)
    assert bank.last("/bc-authorize").form["login_hint_token"] == "t"


async def test_no_hint_is_refused_before_calling_the_bank(
    bank: FakeBank, session: aiohttp.ClientSession
):
    error = await refused(
        adapter_for(bank, session), DecoupledRequest(return_uri=RETURN, requested_expiry=300)
    )
    assert (error.error, error.description) == (
        "invalid_request",
        "this bank needs login_hint or login_hint_token",
    )
    assert bank.requests == []  # not even discovery


async def test_private_key_jwt_audience_is_the_issuer(
    bank: FakeBank, session: aiohttp.ClientSession
):
    adapter = adapter_for(
        bank,
        session,
        client_auth="private_key_jwt",
        client_secret=None,
        private_key=CLIENT_KEY.export(private_key=True),
    )
    await adapter.start_decoupled(REQUEST)
    form = bank.last("/bc-authorize").form
    assert form["client_id"] == CLIENT_ID
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    public_pem = CLIENT_KEY.export_to_pem()
    claims = jwt.decode(
        form["client_assertion"], public_pem, algorithms=["ES256"], audience=bank.issuer
    )
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert "Authorization" not in bank.last("/bc-authorize").headers

    # the poll goes to the token endpoint: the assertion is for it there, as in the code flow
    bank.answers["/token"] = (400, {"error": "authorization_pending"})
    await adapter.poll("arid-1", 5)
    assertion = bank.last("/token").form["client_assertion"]
    assert jwt.decode(assertion, options={"verify_signature": False})["aud"] == (
        f"{bank.issuer}/token"
    )


async def test_client_secret_post(bank: FakeBank, session: aiohttp.ClientSession):
    await adapter_for(bank, session, client_auth="client_secret_post").start_decoupled(REQUEST)
    sent = bank.last("/bc-authorize")
    assert sent.form["client_id"] == CLIENT_ID
    assert sent.form["client_secret"] == SECRET
    assert "Authorization" not in sent.headers


async def test_tls_client_auth_uses_the_mtls_alias(
    bank: FakeBank, session: aiohttp.ClientSession, tmp_path: Path
):
    cert, key = self_signed(tmp_path, "merchant-client")
    bank.extra["mtls_endpoint_aliases"] = {
        "backchannel_authentication_endpoint": f"{bank.issuer}/mtls/bc-authorize"
    }
    bank.answers["/mtls/bc-authorize"] = (200, ACK)
    adapter = adapter_for(
        bank,
        session,
        client_auth="tls_client_auth",
        client_secret=None,
        tls=TlsSettings(cert=cert, key=key),
    )
    await adapter.start_decoupled(REQUEST)
    assert bank.last("/mtls/bc-authorize").form["client_id"] == CLIENT_ID
    assert bank.hits["/bc-authorize"] == 0


async def test_bank_without_backchannel_endpoint(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    error = await refused(adapter_for(fake_bank, session))
    assert (error.error, error.detail) == (
        "server_error",
        "metadata has no backchannel_authentication_endpoint",
    )


async def test_interval_defaults_to_five(bank: FakeBank, session: aiohttp.ClientSession):
    bank.answers["/bc-authorize"] = (200, {"auth_req_id": "arid-1", "expires_in": 120})
    started = await adapter_for(bank, session).start_decoupled(REQUEST)
    assert started == DecoupledStart("arid-1", 120, 5, None)


async def test_lenient_numbers(bank: FakeBank, session: aiohttp.ClientSession):
    answer = {"auth_req_id": "arid-1", "expires_in": "120", "interval": 3.0, "extra": [1]}
    bank.answers["/bc-authorize"] = (200, answer)
    started = await adapter_for(bank, session).start_decoupled(REQUEST)
    assert (started.expires_in, started.interval) == (120, 3)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("<html>", "backchannel: HTTP 200, body is not a JSON object"),
        ([ACK], "backchannel: HTTP 200, body is not a JSON object"),
        ({**ACK, "auth_req_id": None}, "backchannel: auth_req_id missing or not a string"),
        ({**ACK, "auth_req_id": ""}, "backchannel: auth_req_id missing or not a string"),
        ({**ACK, "auth_req_id": 7}, "backchannel: auth_req_id missing or not a string"),
        ({**ACK, "expires_in": None}, "backchannel: expires_in missing or not a positive integer"),
        ({**ACK, "expires_in": 0}, "backchannel: expires_in missing or not a positive integer"),
        ({**ACK, "expires_in": -5}, "backchannel: expires_in missing or not a positive integer"),
        ({**ACK, "expires_in": 1.5}, "backchannel: expires_in missing or not a positive integer"),
        ({**ACK, "expires_in": True}, "backchannel: expires_in missing or not a positive integer"),
        ({**ACK, "expires_in": "2m"}, "backchannel: expires_in missing or not a positive integer"),
        ({**ACK, "interval": 0}, "backchannel: interval is not a positive integer"),
        ({**ACK, "interval": "soon"}, "backchannel: interval is not a positive integer"),
        ({**ACK, "interval": -1}, "backchannel: interval is not a positive integer"),
        ({**ACK, "interval": "\u00b2"}, "backchannel: interval is not a positive integer"),
    ],
)
async def test_malformed_acknowledgement(
    bank: FakeBank, session: aiohttp.ClientSession, body: Any, detail: str
):
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if v is not None}  # None: left out
    bank.answers["/bc-authorize"] = (200, body)
    error = await refused(adapter_for(bank, session))
    assert (error.error, error.detail) == ("server_error", detail)
    assert error.description == "the bank's answer could not be used"


@pytest.mark.parametrize(
    "link",
    [
        "https://app.bankid.example/authorize?autostart=abc",
        "http://127.0.0.1:8080/authorize",
        "http://localhost/authorize",
        "http://[::1]:9000/x",
    ],
)
async def test_deep_link_is_returned(bank: FakeBank, session: aiohttp.ClientSession, link: str):
    bank.answers["/bc-authorize"] = (200, {**ACK, "authorize_uri": link})
    started = await adapter_for(bank, session).start_decoupled(REQUEST)
    assert started.deep_link == link
    assert started.auth_req_id == "arid-1"


@pytest.mark.parametrize(
    "link",
    [
        "http://app.bankid.example/authorize",
        "javascript:alert(1)",
        "bankid:///?autostarttoken=abc",
        "https://",
        "https:///path-only",
        "https://bank.example@evil.example/x",
        "https://app.bankid.example/a b",
        "https://app.bankid.example/\nx",
        "https://app.bankid.example:99999/",
        "",
        42,
        {"uri": "https://app.bankid.example/"},
    ],
)
async def test_unsafe_deep_link_is_ignored(
    bank: FakeBank, session: aiohttp.ClientSession, link: Any
):
    bank.answers["/bc-authorize"] = (200, {**ACK, "authorize_uri": link})
    started = await adapter_for(bank, session).start_decoupled(REQUEST)
    assert started == DecoupledStart("arid-1", 120, 2, None)  # plain decoupled


async def test_deep_link_field_is_configurable(bank: FakeBank, session: aiohttp.ClientSession):
    link = "https://app.bankid.example/launch"
    bank.answers["/bc-authorize"] = (200, {**ACK, "launch_url": link, "authorize_uri": "x"})
    adapter = adapter_for(bank, session, deep_link_field="launch_url")
    assert (await adapter.start_decoupled(REQUEST)).deep_link == link
    assert usable_deep_link("https://app.bankid.example/launch") == link


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (403, "access_denied"),
        (400, "access_denied"),
        (400, "unknown_user_id"),
        (400, "expired_login_hint_token"),
        (400, "invalid_binding_message"),
        (400, "missing_user_code"),
        (400, "invalid_user_code"),
    ],
)
async def test_backchannel_refusals_are_access_denied(
    bank: FakeBank, session: aiohttp.ClientSession, status: int, code: str
):
    bank.answers["/bc-authorize"] = (
        status,
        {"error": code, "error_description": "no user alice at this bank"},
    )
    error = await refused(adapter_for(bank, session))
    assert error.error == "access_denied"
    assert error.description == f"the bank refused the login: {code}"
    assert error.detail == f"backchannel: HTTP {status}, error {code}"
    assert "alice" not in error.description + error.detail  # the hint never leaks


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": "invalid_client"}),
        (400, {"error": "unauthorized_client"}),
        (400, {"error": "invalid_scope"}),
        (400, {"error": "invalid_request"}),
        (400, {"error": "something_new"}),
        (400, "<html>"),
        (404, {"error": "not_found"}),
        (201, ACK),
    ],
)
async def test_backchannel_misconfiguration_is_server_error(
    bank: FakeBank, session: aiohttp.ClientSession, status: int, body: Any
):
    bank.answers["/bc-authorize"] = (status, body)
    error = await refused(adapter_for(bank, session))
    assert error.error == "server_error"
    assert error.detail.startswith(f"backchannel: HTTP {status}, error ")


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_backchannel_5xx_is_temporarily_unavailable(
    bank: FakeBank, session: aiohttp.ClientSession, status: int
):
    bank.answers["/bc-authorize"] = (status, {"error": "access_denied"})
    error = await refused(adapter_for(bank, session))
    assert error.error == "temporarily_unavailable"


async def test_backchannel_timeout(bank: FakeBank, session: aiohttp.ClientSession):
    bank.delays["/bc-authorize"] = 2.0
    started = time.monotonic()
    error = await refused(adapter_for(bank, session, timeout=0.3))
    assert error.error == "temporarily_unavailable"
    assert error.description == "the bank did not answer in time"
    assert time.monotonic() - started < 0.9


async def test_backchannel_when_metadata_unreachable(session: aiohttp.ClientSession):
    adapter = CibaAdapter(settings_for("http://127.0.0.1:9", kind="ciba"), session)
    assert (await refused(adapter)).error == "temporarily_unavailable"
    assert (await poll_refused(adapter)).error == "temporarily_unavailable"


# -- polling --------------------------------------------------------------------


async def test_pending_and_slow_down(bank: FakeBank, session: aiohttp.ClientSession):
    adapter = adapter_for(bank, session)
    bank.answers["/token"] = (400, {"error": "authorization_pending"})
    assert await adapter.poll("arid-1", 2) == Pending(2)
    sent = bank.last("/token")
    assert sent.form == {"grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": "arid-1"}
    assert sent.headers["Authorization"].startswith("Basic ")
    bank.answers["/token"] = (400, {"error": "slow_down"})
    assert await adapter.poll("arid-1", 2) == Pending(7)
    assert await adapter.poll("arid-1", 7) == Pending(12)  # "this and all subsequent requests"


async def test_poll_until_approved(bank: FakeBank, session: aiohttp.ClientSession):
    adapter = adapter_for(bank, session, scopes=("openid", "profile"))
    id_token = bank.id_token(nonce=None, acr="urn:bankid:loa:high", amr=["bankid"], auth_time=1)
    bank.queued["/token"] = [
        (400, {"error": "authorization_pending"}),
        (400, {"error": "slow_down"}),
        (400, {"error": "authorization_pending"}),
        (200, token_answer(bank, id_token=id_token)),
    ]
    started = await adapter.start_decoupled(REQUEST)
    interval, outcome = started.interval, None
    while True:
        outcome = await adapter.poll(started.auth_req_id, interval)
        if not isinstance(outcome, Pending):
            break
        interval = outcome.interval
    assert interval == 7
    assert isinstance(outcome, BankResult)
    assert outcome.identity.sub == "user-1"
    assert outcome.identity.acr == "urn:bankid:loa:high"
    assert outcome.identity.amr == ("bankid",)
    assert outcome.identity.auth_time == 1
    tokens = outcome.tokens
    assert (tokens.access_token, tokens.refresh_token, tokens.scope) == ("at-1", "rt-1", "openid")
    assert tokens.expires_at is not None and abs(tokens.expires_at - (time.time() + 60)) < 5
    assert bank.hits["/token"] == 4


async def test_id_token_only(bank: FakeBank, session: aiohttp.ClientSession):
    bank.answers["/token"] = (
        200,
        {"id_token": bank.id_token(nonce=None), "token_type": "Bearer", "expires_in": 60},
    )
    result = await adapter_for(bank, session).poll("arid-1", 5)
    assert isinstance(result, BankResult)
    assert result.identity.sub == "user-1"
    assert result.tokens.access_token is None
    assert result.tokens.refresh_token is None
    assert BankTokens.from_dict(result.tokens.to_dict()) == result.tokens


async def test_an_unexpected_nonce_is_not_checked(bank: FakeBank, session: aiohttp.ClientSession):
    bank.answers["/token"] = (200, token_answer(bank, id_token=bank.id_token(nonce="whatever")))
    result = await adapter_for(bank, session).poll("arid-1", 5)
    assert isinstance(result, BankResult)


async def test_auth_req_id_claim_must_match_when_present(
    bank: FakeBank, session: aiohttp.ClientSession
):
    claim = "urn:openid:params:jwt:claim:auth_req_id"
    adapter = adapter_for(bank, session)
    bank.answers["/token"] = (
        200,
        token_answer(bank, id_token=bank.id_token(nonce=None, **{claim: "arid-1"})),
    )
    assert isinstance(await adapter.poll("arid-1", 5), BankResult)
    bank.answers["/token"] = (
        200,
        token_answer(bank, id_token=bank.id_token(nonce=None, **{claim: "arid-2"})),
    )
    error = await poll_refused(adapter)
    assert (error.error, error.description, error.detail) == (
        "server_error",
        DESCRIPTION,
        "id_token: auth_req_id claim does not match",
    )


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        ({"id_token": None, "access_token": "at"}, "token response: no id_token"),
        ({"id_token": 5, "access_token": "at"}, "token response: no id_token"),
        ({"access_token": ""}, "token response: no access_token"),
        ({"access_token": 7}, "token response: no access_token"),
    ],
)
async def test_unusable_token_responses(
    bank: FakeBank, session: aiohttp.ClientSession, answer: dict[str, Any], detail: str
):
    body = {"id_token": bank.id_token(nonce=None), **answer}
    bank.answers["/token"] = (200, {k: v for k, v in body.items() if v is not None})
    error = await poll_refused(adapter_for(bank, session))
    assert (error.error, error.detail) == ("server_error", detail)


async def test_token_response_not_json(bank: FakeBank, session: aiohttp.ClientSession):
    bank.answers["/token"] = (200, "<html>")
    error = await poll_refused(adapter_for(bank, session))
    assert (error.error, error.detail) == ("server_error", "token endpoint: HTTP 200, error -")


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"aud": "someone-else"}, "id_token: aud does not contain our client_id"),
        ({"iss": "https://evil.example"}, "id_token: iss does not match the bank's issuer"),
        ({"exp": int(time.time()) - 120}, "id_token: exp is in the past"),
        ({"sub": None}, "id_token: sub is missing"),
    ],
)
async def test_id_token_claim_failures(
    bank: FakeBank, session: aiohttp.ClientSession, claims: dict[str, Any], detail: str
):
    bank.answers["/token"] = (200, token_answer(bank, id_token=bank.id_token(nonce=None, **claims)))
    error = await poll_refused(adapter_for(bank, session))
    assert (error.error, error.description, error.detail) == ("server_error", DESCRIPTION, detail)


async def test_id_token_bad_signature(bank: FakeBank, session: aiohttp.ClientSession):
    rogue = new_key(kid="k1")  # claims the bank key's kid
    bank.answers["/token"] = (200, token_answer(bank, id_token=bank.id_token(rogue, nonce=None)))
    error = await poll_refused(adapter_for(bank, session))
    assert (error.error, error.detail) == ("server_error", "id_token: signature does not verify")


async def test_user_declined(bank: FakeBank, session: aiohttp.ClientSession):
    bank.answers["/token"] = (400, {"error": "access_denied", "error_description": "alice said no"})
    error = await poll_refused(adapter_for(bank, session))
    assert (error.error, error.description) == ("access_denied", "the user declined at the bank")
    assert "alice" not in error.detail


async def test_expired(bank: FakeBank, session: aiohttp.ClientSession):
    bank.answers["/token"] = (400, {"error": "expired_token"})
    error = await poll_refused(adapter_for(bank, session))
    assert (error.error, error.description, error.detail) == (
        "access_denied",
        "the login at the bank expired before it was approved",
        "expired_token",
    )


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": "invalid_grant"}),
        (400, {"error": "invalid_request"}),
        (401, {"error": "invalid_client"}),
        (400, {"error": "unauthorized_client"}),
        (400, {"error": "transaction_failed"}),
        (400, "<html>"),
    ],
)
async def test_poll_failures_are_server_error(
    bank: FakeBank, session: aiohttp.ClientSession, status: int, body: Any
):
    bank.answers["/token"] = (status, body)
    error = await poll_refused(adapter_for(bank, session))
    assert error.error == "server_error"
    assert error.detail.startswith(f"token endpoint: HTTP {status}, error ")


@pytest.mark.parametrize("status", [500, 503])
async def test_poll_5xx_is_temporarily_unavailable(
    bank: FakeBank, session: aiohttp.ClientSession, status: int
):
    bank.answers["/token"] = (status, {"error": "authorization_pending"})
    assert (await poll_refused(adapter_for(bank, session))).error == "temporarily_unavailable"


async def test_poll_timeout(bank: FakeBank, session: aiohttp.ClientSession):
    bank.delays["/token"] = 2.0
    started = time.monotonic()
    error = await poll_refused(adapter_for(bank, session, timeout=0.3))
    assert (error.error, error.description) == (
        "temporarily_unavailable",
        "the bank did not answer in time",
    )
    assert time.monotonic() - started < 0.9


async def test_userinfo(bank: FakeBank, session: aiohttp.ClientSession):
    adapter = adapter_for(bank, session, userinfo=True)
    bank.answers["/token"] = (200, token_answer(bank))
    bank.answers["/userinfo"] = (200, {"sub": "user-1", "name": "Ann"})
    result = await adapter.poll("arid-1", 5)
    assert isinstance(result, BankResult)
    assert result.identity.claims["name"] == "Ann"
    assert bank.last("/userinfo").headers["Authorization"] == "Bearer at-1"
    bank.answers["/token"] = (200, {"id_token": bank.id_token(nonce=None)})
    error = await poll_refused(adapter)
    assert (error.error, error.detail) == (
        "server_error",
        "userinfo: no access_token to call it with",
    )


# -- refresh --------------------------------------------------------------------


async def test_refresh(bank: FakeBank, session: aiohttp.ClientSession):
    adapter = adapter_for(bank, session)
    with pytest.raises(BankError) as info:
        await adapter.refresh(BankTokens(access_token=None))
    assert info.value.error == "invalid_grant"
    bank.answers["/token"] = (200, {"access_token": "at-2", "token_type": "Bearer"})
    fresh = await adapter.refresh(BankTokens(access_token=None, refresh_token="rt-1"))
    assert (fresh.access_token, fresh.refresh_token) == ("at-2", "rt-1")
    assert bank.last("/token").form == {"grant_type": "refresh_token", "refresh_token": "rt-1"}
    bank.answers["/token"] = (200, {"id_token": "x"})  # a refresh answer needs an access token
    with pytest.raises(BankError) as info:
        await adapter.refresh(BankTokens(access_token=None, refresh_token="rt-1"))
    assert info.value.error == "invalid_grant"


# -- pure helpers ---------------------------------------------------------------


def test_tokens_from_response_access_token_rules():
    assert tokens_from_response({"id_token": "x"}) is None
    lone = tokens_from_response({"id_token": "x"}, access_token_required=False)
    assert lone == BankTokens(access_token=None)
    assert tokens_from_response({"access_token": ""}, access_token_required=False) is None
    assert tokens_from_response({"access_token": 1}, access_token_required=False) is None
    with_at = tokens_from_response({"access_token": "at"}, access_token_required=False)
    assert with_at is not None and with_at.access_token == "at"
