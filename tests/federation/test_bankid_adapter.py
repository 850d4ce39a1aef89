"""BankIdAdapter (a ``kind: ciba`` bank with ``permissions:``: BankID with biometrics,
App2App) against the sandbox bank over HTTP: the seed's steps 3 to 11 as sent, and every
way the permissions API and app-authorize can refuse."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from federation.bankid import BankIdAdapter, device_info_problem
from federation.client_auth import ASSERTION_TYPE
from federation.permissions import DIGEST_DESCRIPTION
from federation.protocol import BankError, BankResult, DecoupledRequest, DecoupledStart
from federation.registry import build_adapters
from federation.sandbox import SandboxBank, SandboxClient, serve_sandbox
from federation.sandbox.bankid import APP_AUTHORIZE_ERRORS, PERMISSION_ERRORS
from federation.settings import BankSettings, Permissions

CLIENT = "merchant-bankid"
SECRET = "bankid-secret-" + "b" * 20
NNIN = "12345678910"
RETURN = "https://proxy.example/resume/h-1"
API_SCOPES = ("permissions/app2app", "permissions/client")


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


DEVICE = b64({"p": "ios", "ma": "Apple", "mo": "iPhone11,2"})
PAYMENT = {"type": "payment_initiation", "creditorName": "Scrooge McDuck",
           "instructedAmount": {"currency": "NOK", "amount": "123.45"},
           "endToEndIdentification": "order-4711"}


def request(**overrides: Any) -> DecoupledRequest:
    values: dict[str, Any] = {"return_uri": RETURN, "requested_expiry": 600,
                              "login_hint": NNIN, "extra": {"device_info": DEVICE}}
    values.update(overrides)
    return DecoupledRequest(**values)


@pytest.fixture
async def bank() -> AsyncIterator[SandboxBank]:
    sandbox = SandboxBank(clients=[SandboxClient(CLIENT, [], "client_secret_basic",
                                                 secret=SECRET)])
    sandbox.ciba_interval = 1
    sandbox.ciba_id_token_only = True  # as BankID's app-authorize answers
    async with serve_sandbox(sandbox) as served:
        yield served


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def settings(bank: SandboxBank, **overrides: Any) -> BankSettings:
    values: dict[str, Any] = {
        "id": "bankid", "kind": "ciba", "issuer": bank.issuer, "client_id": CLIENT,
        "client_auth": "client_secret_basic", "client_secret": SECRET,
        "acr_values": ("urn:merchant:acr:bankid",), "scopes": ("openid", "profile"),
        "timeout": 2.0, "start_endpoint": "app_authentication_endpoint",
        "assertion": "access_token", "pass_through": ("device_info",),
        "permissions": Permissions(endpoint=f"{bank.issuer}/permissions/v1/",
                                   scopes=API_SCOPES,
                                   types={"payment_initiation": "payment.v1"}),
    }
    values.update(overrides)
    return BankSettings(**values)


def adapter_for(bank: SandboxBank, http: aiohttp.ClientSession, **overrides: Any
                ) -> BankIdAdapter:
    adapter = build_adapters([settings(bank, **overrides)], http)["bankid"]
    assert isinstance(adapter, BankIdAdapter)
    return adapter


def calls(bank: SandboxBank, path: str) -> list[Any]:
    return [r for r in bank.requests if r.path == path]


async def refused(adapter: BankIdAdapter, req: DecoupledRequest | None = None) -> BankError:
    with pytest.raises(BankError) as info:
        await adapter.start_decoupled(req or request())
    return info.value


async def approved(adapter: BankIdAdapter, bank: SandboxBank,
                   started: DecoupledStart) -> BankResult:  # fmt: skip
    bank.ciba_approve(started.auth_req_id)
    result = await adapter.poll(started.auth_req_id, started.interval, started.context)
    assert isinstance(result, BankResult)
    return result


async def test_a_login_without_payment(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    adapter = adapter_for(bank, http)
    started = await adapter.start_decoupled(request())
    # step 3: the API token, client credentials with the permissions scopes, Basic auth
    (token_call,) = calls(bank, "/token")
    assert token_call.form == {"grant_type": "client_credentials",
                               "scope": "permissions/app2app permissions/client"}
    assert token_call.headers["Authorization"].startswith("Basic ")
    api_token = next(iter(bank.api_tokens))
    # step 5: the permission, a plain login (authentication.v1) with a fresh nonce
    (permission,) = bank.permissions.values()
    assert (permission.type, permission.login_hint) == ("authentication.v1", NNIN)
    assert permission.app_callback_uri == RETURN
    assert set(permission.statement) == {"nonce"}
    # step 7: app-authorize, the permission token as login_hint_token, the API token as
    # client_assertion, device_info as the app sent it; no other client authentication
    (start,) = calls(bank, "/oidc/v1/app-authorize")
    assert start.form["login_hint_token"] == next(iter(bank.permissions))
    assert (start.form["client_assertion"], start.form["client_assertion_type"]) == (
        api_token, ASSERTION_TYPE)
    assert (start.form["device_info"], start.form["scope"]) == (DEVICE, "openid profile")
    assert start.form["requested_expiry"] == "300"
    assert "Authorization" not in start.headers and "client_secret" not in start.form
    assert "login_hint" not in start.form and "app_callback_uri" not in start.form
    assert started.deep_link is not None
    assert started.deep_link.startswith(f"{bank.issuer}/app2app/")
    # step 10: the poll, authenticated the same way; step 11: the ID token
    result = await approved(adapter, bank, started)
    poll = calls(bank, "/token")[-1]
    assert poll.form["client_assertion"] == api_token
    assert "Authorization" not in poll.headers
    assert result.identity.sub == bank.user.sub
    assert result.tokens.access_token is None  # an ID token alone
    assert result.authorization_details is None  # the permission, bound by its token
    # the token was fetched once for all of it
    assert len([c for c in calls(bank, "/token")
                if c.form.get("grant_type") == "client_credentials"]) == 1


async def test_a_login_with_a_payment(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    adapter = adapter_for(bank, http)
    started = await adapter.start_decoupled(request(authorization_details=(PAYMENT,)))
    (permission,) = bank.permissions.values()
    assert permission.type == "payment.v1"
    assert permission.statement["payments"] == [{
        "paymentId": "order-4711", "amount": "123.45", "currency": "NOK",
        "creditorName": "Scrooge McDuck"}]
    assert permission.describe() == "Pay 123.45 NOK to Scrooge McDuck"
    # the bank app shows the payment
    assert started.deep_link is not None
    async with http.get(started.deep_link) as page:
        assert "Pay 123.45 NOK to Scrooge McDuck" in await page.text()
    result = await approved(adapter, bank, started)
    assert result.identity.sub == bank.user.sub


@pytest.mark.parametrize("form", ["statement", "json", "absent"])
async def test_a_permission_digest_of_the_statement_is_accepted(
    bank: SandboxBank, http: aiohttp.ClientSession, form: str
) -> None:
    bank.permission_digest = form
    adapter = adapter_for(bank, http)
    started = await adapter.start_decoupled(request(authorization_details=(PAYMENT,)))
    await approved(adapter, bank, started)


async def test_a_permission_digest_of_another_statement_is_refused(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    bank.permission_digest = "wrong"
    adapter = adapter_for(bank, http)
    started = await adapter.start_decoupled(request(authorization_details=(PAYMENT,)))
    bank.ciba_approve(started.auth_req_id)
    with pytest.raises(BankError) as info:
        await adapter.poll(started.auth_req_id, started.interval, started.context)
    assert (info.value.error, info.value.description) == ("server_error", DIGEST_DESCRIPTION)
    assert "permission_digest" in info.value.detail


async def test_nonces_are_unique(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    adapter = adapter_for(bank, http)
    for _ in range(3):
        await adapter.start_decoupled(request())
    assert len({p.statement["nonce"] for p in bank.permissions.values()}) == 3


async def test_a_lapsed_api_token_is_fetched_again_once(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    adapter = adapter_for(bank, http)
    started = await adapter.start_decoupled(request())
    bank.expire_api_tokens()  # the poll's client_assertion is turned away: 401
    await approved(adapter, bank, started)
    bank.expire_api_tokens()  # the permissions API's Bearer is turned away: 401
    await adapter.start_decoupled(request())
    fetched = [c for c in calls(bank, "/token")
               if c.form.get("grant_type") == "client_credentials"]
    assert len(fetched) == 3


@pytest.mark.parametrize(("code", "error"), [
    ("invalid_request", "access_denied"),
    ("invalid_login_hint", "access_denied"),
    ("user_not_found", "access_denied"),
    ("invalid_token", "server_error"),
    ("insufficient_scope", "server_error"),
    ("server_error", "temporarily_unavailable"),
])  # fmt: skip
async def test_each_permissions_api_refusal(
    bank: SandboxBank, http: aiohttp.ClientSession, code: str, error: str
) -> None:
    assert code in PERMISSION_ERRORS
    bank.permission_refuse = code
    failure = await refused(adapter_for(bank, http))
    assert failure.error == error
    assert f"error {code}" in failure.detail  # the bank's code in the log line
    assert code not in failure.description or error == "server_error"
    assert not calls(bank, "/oidc/v1/app-authorize")


async def test_an_nnin_the_bank_does_not_know(bank: SandboxBank,
                                              http: aiohttp.ClientSession) -> None:
    failure = await refused(adapter_for(bank, http), request(login_hint="10987654321"))
    assert (failure.error, failure.detail) == (
        "access_denied", "permissions: HTTP 404, error user_not_found")


@pytest.mark.parametrize(("code", "error", "description"), [
    ("invalid_request", "server_error", "the bank refused the login request"),
    ("invalid_client", "server_error", "the bank refused the login request"),
    ("unknown_user_id", "access_denied", "the bank refused the login: unknown_user_id"),
    ("device_mismatch", "access_denied", "the bank refused the login"),
    ("expired_login_hint_token", "access_denied",
     "the bank refused the login: expired_login_hint_token"),
    ("access_denied", "access_denied", "the bank refused the login: access_denied"),
    ("server_error", "temporarily_unavailable", "the bank is temporarily unavailable"),
])  # fmt: skip
async def test_each_app_authorize_refusal(
    bank: SandboxBank, http: aiohttp.ClientSession, code: str, error: str, description: str
) -> None:
    assert code in APP_AUTHORIZE_ERRORS
    bank.app_authorize_refuse = code
    failure = await refused(adapter_for(bank, http))
    assert (failure.error, failure.description) == (error, description)
    assert f"error {code}" in failure.detail


async def test_a_device_that_is_not_the_users(bank: SandboxBank,
                                              http: aiohttp.ClientSession) -> None:
    other = b64({"p": "ios", "ma": "Apple", "mo": "iPhone15,3"})
    failure = await refused(adapter_for(bank, http), request(extra={"device_info": other}))
    assert (failure.error, failure.detail) == (
        "access_denied", "app-authorize: HTTP 400, error device_mismatch")


async def test_a_link_that_is_not_a_universal_link(bank: SandboxBank,
                                                   http: aiohttp.ClientSession) -> None:
    bank.app_link_scheme = "bankid"  # authorize_uri bankid://app2app/...
    failure = await refused(adapter_for(bank, http))
    assert (failure.error, failure.description) == (
        "server_error", "the bank cannot start App2App on this device")
    assert failure.detail == "app-authorize: authorize_uri is not a universal link"


@pytest.mark.parametrize(("missing", "description"), [
    ({"login_hint": None}, "this bank needs the user's login_hint"),
    ({"extra": {}}, "this bank needs the app's device_info"),
])  # fmt: skip
async def test_the_nnin_and_the_device_are_needed(
    bank: SandboxBank, http: aiohttp.ClientSession, missing: dict[str, Any], description: str
) -> None:
    failure = await refused(adapter_for(bank, http), request(**missing))
    assert (failure.error, failure.description) == ("invalid_request", description)
    assert not bank.requests  # nothing was sent


@pytest.mark.parametrize("details", [
    ({"type": "account_information"},),  # no permission type for it
    (PAYMENT, {"type": "consent_text", "text": "I agree"}),  # two permission types
    ({**PAYMENT, "instructedAmount": {"currency": "NOK", "amount": "123,45"}},),  # comma
])  # fmt: skip
async def test_details_that_make_no_permission(
    bank: SandboxBank, http: aiohttp.ClientSession, details: tuple[dict[str, Any], ...]
) -> None:
    adapter = adapter_for(bank, http, permissions=Permissions(
        endpoint=f"{bank.issuer}/permissions/v1/", scopes=API_SCOPES,
        types={"payment_initiation": "payment.v1", "consent_text": "text.v1"}))
    failure = await refused(adapter, request(authorization_details=details))
    assert failure.error == "invalid_authorization_details"
    assert failure.description == "bankid cannot take these authorization_details"
    assert not calls(bank, "/permissions/v1/")


async def test_a_text_to_approve(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    adapter = adapter_for(bank, http, permissions=Permissions(
        endpoint=f"{bank.issuer}/permissions/v1/", scopes=API_SCOPES,
        types={"consent_text": "text.v1"}))
    await adapter.start_decoupled(request(
        authorization_details=({"type": "consent_text", "text": "I agree to the terms"},)))
    (permission,) = bank.permissions.values()
    assert (permission.type, permission.statement["text"]) == ("text.v1",
                                                               "I agree to the terms")


async def test_without_assertion_the_bank_client_auth_is_used(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    adapter = adapter_for(bank, http, assertion=None)
    failure = await refused(adapter)  # the sandbox's app-authorize wants the API token
    assert failure.detail == "app-authorize: HTTP 401, error invalid_client"
    (start,) = calls(bank, "/oidc/v1/app-authorize")
    assert start.headers["Authorization"].startswith("Basic ")
    assert "client_assertion" not in start.form


@pytest.mark.parametrize(("value", "problem"), [
    (DEVICE, None),
    (DEVICE + "==", None),
    ("not base64!", "device_info must be URL-safe base64"),
    (base64.urlsafe_b64encode(b"\xff\xfe").decode(), "device_info must encode a JSON object"),
    (b64("a string"), "device_info must be a JSON object with p, ma and mo"),
    (b64(["ios", "Apple"]), "device_info must be a JSON object with p, ma and mo"),
    (b64({"p": "ios", "ma": "Apple"}), "device_info must be a JSON object with p, ma and mo"),
    (b64({"p": "ios", "ma": "Apple", "mo": "x", "extra": 1}),
     "device_info must be a JSON object with p, ma and mo"),
    (b64({"p": "ios", "ma": "Apple", "mo": 11}),
     "device_info p, ma and mo must be short printable strings"),
    (b64({"p": "ios", "ma": "Apple", "mo": "iPhone\n11"}),
     "device_info p, ma and mo must be short printable strings"),
])  # fmt: skip
def test_device_info_is_what_the_seed_describes(value: str, problem: str | None) -> None:
    assert device_info_problem(value) == problem


@pytest.mark.parametrize("body", [
    "<html>maintenance</html>",  # not JSON
    json.dumps({"id": "1.BY.x"}),  # no permissionToken
    json.dumps({"permissionToken": "not a token\n"}),
])  # fmt: skip
async def test_a_permissions_answer_that_cannot_be_used(
    bank: SandboxBank, http: aiohttp.ClientSession, body: str
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json", status=201)

    app = web.Application()
    app.router.add_post("/permissions/v1/", answer)
    server = TestServer(app)
    await server.start_server()
    try:
        endpoint = f"http://{server.host}:{server.port}/permissions/v1/"
        failure = await refused(adapter_for(bank, http, permissions=Permissions(
            endpoint=endpoint, scopes=API_SCOPES)))
    finally:
        await server.close()
    assert (failure.error, failure.description, failure.detail) == (
        "server_error", "the bank's answer could not be used",
        "permissions: permissionToken missing or not a token")
    assert not calls(bank, "/oidc/v1/app-authorize")


async def test_a_permissions_api_that_does_not_answer(bank: SandboxBank,
                                                      http: aiohttp.ClientSession) -> None:
    # nothing listens on port 9 of the loopback (discard; connection refused)
    failure = await refused(adapter_for(bank, http, permissions=Permissions(
        endpoint="http://127.0.0.1:9/permissions/v1/", scopes=API_SCOPES)))
    assert (failure.error, failure.description) == ("temporarily_unavailable",
                                                    "the bank did not answer in time")
