"""BankID with biometrics, App2App, whole (issue 16): the merchant backend pushes the
login (the user's NNIN, the app's device_info, any payment) to /par, the app opens
/authorize or /native/authorize with the request_uri; the proxy, as BankID's merchant
backend, registers the permission, starts app-authorize, sends the app to BankID's
universal link, and polls when the user is back. Every refusal of the permissions API
and of app-authorize reaches the merchant as an OAuth error with its state and iss, or
as the fallback bank; never a 500."""

from __future__ import annotations

import io
import json
from typing import Any

import jwt
import pytest

from federation.sandbox.bankid import APP_AUTHORIZE_ERRORS, PERMISSION_ERRORS
from tests.flows.bankid_world import (
    ACR_BANKID,
    DEVICE_INFO,
    NNIN,
    PAYMENT,
    BankIdWorld,
    BankIdWorldFactory,
    b64,
    details,
)
from tests.flows.harness import (
    ACR_A,
    PUBLIC,
    RS_BANK,
    RS_PLAIN,
    SERVER,
    app_redirect_params,
    new_request,
    query_of,
)


def refused(resp: Any, state: str, error: str) -> dict[str, str]:
    """The merchant's redirect carries the error, its state and the proxy's iss."""
    assert resp.status == 302, resp.status
    params = app_redirect_params(resp)
    assert (params["error"], params["state"]) == (error, state), params
    assert "iss" in params
    return params


def logged(buffer: io.StringIO, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == event]


async def test_a_login_without_payment(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    resp, login = await world.start()
    assert resp.status == 302, await resp.text()
    link = resp.headers["Location"]
    assert link.startswith(f"{world.bankid.issuer}/app2app/")  # BankID's universal link
    # the permission: a plain login, the NNIN as loginHint, the app's return the proxy's
    (permission,) = world.bankid.permissions.values()
    assert (permission.type, permission.login_hint) == ("authentication.v1", NNIN)
    assert permission.app_callback_uri is not None
    assert permission.app_callback_uri.startswith(f"{world.proxy.issuer}/resume/")
    (start,) = world.requests("/oidc/v1/app-authorize")
    assert start.form["device_info"] == DEVICE_INFO
    assert start.form["login_hint_token"] == next(iter(world.bankid.permissions))
    assert start.form["client_assertion"] in world.bankid.api_tokens
    # the user approves in the BankID app, which returns to /resume: the code
    resume = await world.bankid_app(link)
    assert resume == permission.app_callback_uri
    back = await world.proxy.http.get(resume, allow_redirects=False)
    login.params = app_redirect_params(back)
    assert (login.params["state"], login.params["iss"]) == (login.state, world.proxy.issuer)
    tokens = await world.tokens(login)
    assert "authorization_details" not in tokens
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert (claims["acr"], claims["authentication_level"]) == (ACR_BANKID, "substantial")
    assert claims["name"] == world.bankid.user.claims["name"]
    info = await world.proxy.introspect(tokens["access_token"])
    assert info["active"] is True and "authorization_details" not in info


async def test_a_login_with_a_payment(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    resp, login = await world.start(authorization_details=details(PAYMENT))
    link = resp.headers["Location"]
    (permission,) = world.bankid.permissions.values()
    assert permission.type == "payment.v1"
    assert permission.statement["payments"] == [{
        "paymentId": "order-4711", "amount": "123.45", "currency": "NOK",
        "creditorName": "Scrooge McDuck"}]
    page = await world.proxy.http.get(link)
    assert "Pay 123.45 NOK to Scrooge McDuck" in await page.text()
    back = await world.proxy.http.get(await world.bankid_app(link), allow_redirects=False)
    login.params = app_redirect_params(back)
    tokens = await world.tokens(login)
    # what the user approved, in the merchant's own form (RFC 9396 §7)
    assert tokens["authorization_details"] == [PAYMENT]
    info = await world.proxy.introspect(tokens["access_token"])
    assert info["authorization_details"] == [PAYMENT]
    # a refresh keeps it
    refreshed = await world.proxy.post("/token", {
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": SERVER, "client_secret": _secret(world)})
    assert (await refreshed.json())["authorization_details"] == [PAYMENT]


async def test_browser_less(bankid_world: BankIdWorldFactory) -> None:
    """/native/authorize: the app gets BankID's link as deep_link; back at /resume it
    calls for JSON and gets the call to its redirect_uri with the code."""
    world: BankIdWorld = await bankid_world()
    resp, login = await world.proxy.native_pushed(
        acr_values=ACR_BANKID, login_hint=NNIN, device_info=DEVICE_INFO,
        authorization_details=details(PAYMENT))
    body = await resp.json()
    assert body["action"] == "deep_link", body
    resume = await world.bankid_app(body["url"])
    answer = await (await world.proxy.call(resume)).json()
    assert answer["action"] == "call", answer
    login.params = query_of(answer["url"])
    assert (await world.tokens(login))["authorization_details"] == [PAYMENT]


async def test_the_user_declines(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    resp, login = await world.start(authorization_details=details(PAYMENT))
    resume = await world.bankid_app(resp.headers["Location"], "deny")
    refused(await world.proxy.http.get(resume, allow_redirects=False), login.state,
            "access_denied")


async def test_a_permission_digest_of_another_statement_gives_no_code(
    bankid_world: BankIdWorldFactory,
) -> None:
    world: BankIdWorld = await bankid_world()
    world.bankid.permission_digest = "wrong"
    resp, login = await world.start(authorization_details=details(PAYMENT))
    resume = await world.bankid_app(resp.headers["Location"])
    params = refused(await world.proxy.http.get(resume, allow_redirects=False), login.state,
                     "server_error")
    assert "code" not in params


@pytest.mark.parametrize(("code", "error"), [
    ("invalid_request", "access_denied"), ("invalid_login_hint", "access_denied"),
    ("user_not_found", "access_denied"), ("invalid_token", "server_error"),
    ("insufficient_scope", "server_error"), ("server_error", "temporarily_unavailable"),
])  # fmt: skip
async def test_each_permissions_api_refusal(
    bankid_world: BankIdWorldFactory, log_buffer: io.StringIO, code: str, error: str
) -> None:
    assert code in PERMISSION_ERRORS
    world: BankIdWorld = await bankid_world()
    world.bankid.permission_refuse = code
    resp, login = await world.start()
    refused(resp, login.state, error)
    assert not world.requests("/oidc/v1/app-authorize")
    (line,) = logged(log_buffer, "login.failed")
    assert (line["bank_id"], line["reason"]) == ("bankid", error)
    (oauth_error,) = logged(log_buffer, "oauth_error")
    assert f"error {code}" in oauth_error["detail"]  # the bank's code in the log line


@pytest.mark.parametrize(("code", "error"), [
    ("invalid_request", "server_error"), ("invalid_client", "server_error"),
    ("unknown_user_id", "access_denied"), ("device_mismatch", "access_denied"),
    ("expired_login_hint_token", "access_denied"), ("access_denied", "access_denied"),
    ("server_error", "temporarily_unavailable"),
])  # fmt: skip
async def test_each_app_authorize_refusal(
    bankid_world: BankIdWorldFactory, log_buffer: io.StringIO, code: str, error: str
) -> None:
    assert code in APP_AUTHORIZE_ERRORS
    world: BankIdWorld = await bankid_world()
    world.bankid.app_authorize_refuse = code
    resp, login = await world.start()
    refused(resp, login.state, error)
    (oauth_error,) = logged(log_buffer, "oauth_error")
    assert oauth_error["detail"] == f"app-authorize: HTTP {APP_AUTHORIZE_ERRORS[code]}, " \
        f"error {code}"


async def test_a_refusal_continues_at_the_fallback_with_the_payment(
    bankid_world: BankIdWorldFactory, log_buffer: io.StringIO
) -> None:
    """The seed: "break device mismatch ... Need to fall back to alternate flow"; the
    payment goes along to the fallback bank, which takes it as it is."""
    world: BankIdWorld = await bankid_world(fallback_acr=ACR_A)
    other_phone = b64({"p": "ios", "ma": "Apple", "mo": "iPhone15,3"})
    resp, login = await world.start(device_info=other_phone,
                                     authorization_details=details(PAYMENT))
    assert resp.status == 302
    at_bank_a = query_of(resp.headers["Location"])
    assert resp.headers["Location"].startswith(world.bank_a.issuer)
    assert json.loads(at_bank_a["authorization_details"]) == [PAYMENT]
    (taken,) = logged(log_buffer, "fallback_taken")
    assert (taken["from_bank"], taken["to_bank"], taken["error"]) == (
        "bankid", "bank-a", "access_denied")
    assert taken["detail"] == "app-authorize: HTTP 400, error device_mismatch"
    final = await world.proxy.follow(resp)
    login.params = app_redirect_params(final)
    tokens = await world.tokens(login)
    assert tokens["authorization_details"] == [PAYMENT]
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["acr"] == ACR_A  # the tokens say which bank it was


async def test_a_link_that_is_not_a_universal_link(bankid_world: BankIdWorldFactory) -> None:
    """The seed, step 8: "If the link you receive is not a universal link you cannot
    perform an App2App authentication and have to fall back to a different method.\""""
    world: BankIdWorld = await bankid_world()
    world.bankid.app_link_scheme = "bankid"
    resp, login = await world.start()
    refused(resp, login.state, "server_error")
    world = await bankid_world(fallback_acr=ACR_A)
    world.bankid.app_link_scheme = "bankid"
    resp, login = await world.start()
    assert resp.headers["Location"].startswith(world.bank_a.issuer + "/authorize?")


BAD_DEVICE_INFO = [
    "not base64!",
    b64({"p": "ios", "ma": "Apple"}),
    b64({"p": "ios", "ma": "Apple", "mo": "iPhone11,2", "serial": "F2LX"}),
    b64(["ios", "Apple", "iPhone11,2"]),
    b64({"p": "ios", "ma": "Apple", "mo": "<script>"}) + "!",
]


@pytest.mark.parametrize("value", BAD_DEVICE_INFO)
async def test_device_info_that_is_not_the_seeds(bankid_world: BankIdWorldFactory,
                                                 value: str) -> None:  # fmt: skip
    world: BankIdWorld = await bankid_world()
    # at /par: 400 JSON, nothing pushed
    _, form = new_request(client_id=SERVER, acr_values=ACR_BANKID, login_hint=NNIN,
                          device_info=value)
    pushed = await world.proxy.post("/par", form, auth=(SERVER, _secret(world)))
    body = await pushed.json()
    assert (pushed.status, body["error"]) == (400, "invalid_request")
    assert body["error_description"].startswith("device_info ")
    assert value not in body["error_description"]
    # at /authorize (a bare request): the redirect, before any bank is called
    resp, login = await world.proxy.authorize(acr_values=ACR_A, device_info=value)
    refused(resp, login.state, "invalid_request")
    assert not world.bankid.requests and not world.bank_a.requests


async def test_no_device_info(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    resp, login = await world.start(device_info=None)
    params = refused(resp, login.state, "invalid_request")
    assert params["error_description"] == "this bank needs the app's device_info"
    assert not world.bankid.requests  # nothing was sent to BankID
    # BankID says to take the other flow: the fallback does
    world = await bankid_world(fallback_acr=ACR_A)
    resp, _ = await world.start(device_info=None)
    assert resp.headers["Location"].startswith(world.bank_a.issuer)


@pytest.mark.parametrize(("overrides", "description"), [
    ({"login_hint": "alice"}, "login_hint must be the user's national identity number "
     "(11 digits) at this bank"),
    ({"login_hint": "1234567891"}, "login_hint must be the user's national identity number "
     "(11 digits) at this bank"),
    ({"login_hint": None, "login_hint_token": "a-permission-token"},
     "this bank takes login_hint (and authorization_details), not login_hint_token or "
     "binding_message"),
    ({"binding_message": "A1B2"}, "this bank takes login_hint (and authorization_details), "
     "not login_hint_token or binding_message"),
    ({"login_hint": None}, "this bank needs the user's login_hint"),
])  # fmt: skip
async def test_login_hint_problems(bankid_world: BankIdWorldFactory,
                                   overrides: dict[str, str | None], description: str) -> None:
    world: BankIdWorld = await bankid_world()
    resp, login = await world.start(**overrides)
    params = refused(resp, login.state, "invalid_request")
    assert params["error_description"] == description
    assert not world.bankid.permissions


async def test_an_nnin_bankid_does_not_know(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    resp, login = await world.start(login_hint="10987654321")
    refused(resp, login.state, "access_denied")


async def test_only_the_merchant_backend_names_the_user(bankid_world: BankIdWorldFactory) -> None:
    """docs/security.md, "Who may name the user": a bare request, or a public client's
    push, naming the NNIN is refused before BankID hears of it."""
    world: BankIdWorld = await bankid_world()
    resp, login = await world.proxy.authorize(acr_values=ACR_BANKID, login_hint=NNIN,
                                              device_info=DEVICE_INFO)
    refused(resp, login.state, "invalid_request")
    login, form = new_request(client_id=PUBLIC, acr_values=ACR_BANKID, login_hint=NNIN,
                              device_info=DEVICE_INFO)
    pushed = await world.proxy.post("/par", form)
    request_uri = (await pushed.json())["request_uri"]
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/authorize", allow_redirects=False,
                                      params={"client_id": PUBLIC, "request_uri": request_uri})
    refused(resp, login.state, "invalid_request")
    assert not world.bankid.requests


async def test_status_and_the_api_token_cache(bankid_world: BankIdWorldFactory) -> None:
    """/authorize/status reads the login while the user is in the BankID app; one API
    token serves every login until it lapses."""
    world: BankIdWorld = await bankid_world()
    first, _ = await world.start()
    second, _ = await world.start()
    handle = (await world.bankid_app(second.headers["Location"])).rsplit("/", 1)[1]
    status = await world.proxy.http.get(f"{world.proxy.issuer}/authorize/status/{handle}")
    assert (await status.json())["status"] == "complete"
    token_calls = [r for r in world.requests("/token")
                   if r.form.get("grant_type") == "client_credentials"]
    assert len(token_calls) == 1
    assert first.status == 302


def _secret(world: BankIdWorld) -> str:
    return next(c.client_secret for c in world.proxy.config.clients
                if c.client_id == SERVER and c.client_secret)


async def test_introspection_of_a_payment_login_for_the_bank_token_server(
    bankid_world: BankIdWorldFactory,
) -> None:
    """BankID's app-authorize issues an ID token alone: no bank token to give."""
    world: BankIdWorld = await bankid_world()
    login = await world.login(authorization_details=details(PAYMENT))
    tokens = await world.tokens(login)
    info = await world.proxy.introspect(tokens["access_token"], rs=RS_BANK)
    assert "bank_access_token" not in info
    assert info["authorization_details"] == [PAYMENT]
    plain = await world.proxy.introspect(tokens["access_token"], rs=RS_PLAIN)
    assert plain["authorization_details"] == [PAYMENT]
