"""The sandbox's BankID shape (the permissions API, app-authorize) and its RFC 9396
redirect flow (authorization_details at /authorize and /par), driven over HTTP: the fake
checks what it receives as the real service does, so the proxy's tests prove something."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from federation.sandbox import SandboxBank, SandboxClient, serve_sandbox

CLIENT = "merchant-bankid"
SECRET = "bankid-secret-" + "b" * 20
SCOPES = "permissions/app2app permissions/client"


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.fixture
async def bank() -> AsyncIterator[SandboxBank]:
    sandbox = SandboxBank(clients=[SandboxClient(CLIENT, ["https://proxy.example/cb"],
                                                 "client_secret_post", secret=SECRET)])
    async with serve_sandbox(sandbox) as served:
        yield served


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def api_token(bank: SandboxBank, http: aiohttp.ClientSession, scope: str = SCOPES) -> str:
    async with http.post(f"{bank.issuer}/token", data={
        "grant_type": "client_credentials", "scope": scope, "client_id": CLIENT,
        "client_secret": SECRET}) as resp:
        body = await resp.json()
    assert resp.status == 200, body
    assert (body["token_type"], body["scope"]) == ("Bearer", scope)
    return str(body["access_token"])


def permission(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "type": "payment.v1", "loa": "sub", "iat": now, "exp": now + 300,
        "permission": b64({"nonce": f"n-{time.monotonic_ns()}", "payments": [
            {"amount": "123.45", "currency": "NOK", "creditorName": "Scrooge McDuck"}]}),
        "intents": ["app2app"], "loginHint": [{"scheme": "nnin", "value": "12345678910"}],
        "app_callback_uri": "https://proxy.example/resume/h"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def register(bank: SandboxBank, http: aiohttp.ClientSession, body: dict[str, Any],
                   token: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    token = token or await api_token(bank, http)
    async with http.post(f"{bank.issuer}/permissions/v1/", json=body,
                         headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def test_a_permission_is_registered(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    status, body = await register(bank, http, permission())
    assert status == 201
    assert set(body) == {"id", "permissionToken"}
    assert bank.permissions[body["permissionToken"]].describe() == (
        "Pay 123.45 NOK to Scrooge McDuck")


@pytest.mark.parametrize(("overrides", "status", "error"), [
    ({"type": "payment.v2"}, 400, "invalid_request"),
    ({"iat": int(time.time()) - 600}, 400, "invalid_request"),
    ({"exp": int(time.time()) - 1}, 400, "invalid_request"),
    ({"intents": ["redirect"]}, 400, "invalid_request"),
    ({"permission": "not base64!"}, 400, "invalid_request"),
    ({"permission": b64({"payments": []})}, 400, "invalid_request"),  # no nonce
    ({"permission": b64({"nonce": "n", "payments": [{"amount": "1,00", "currency": "NOK",
                                                      "creditorName": "A"}]})},
     400, "invalid_request"),
    ({"loginHint": [{"scheme": "email", "value": "a@b"}]}, 400, "invalid_request"),
    ({"loginHint": [{"scheme": "nnin", "value": "123"}]}, 400, "invalid_login_hint"),
    ({"loginHint": [{"scheme": "nnin", "value": "10987654321"}]}, 404, "user_not_found"),
])  # fmt: skip
async def test_what_the_permissions_api_refuses(bank: SandboxBank, http: aiohttp.ClientSession,
                                                overrides: dict[str, Any], status: int,
                                                error: str) -> None:  # fmt: skip
    answer = await register(bank, http, permission(**overrides))
    assert (answer[0], answer[1]["error"]) == (status, error)
    assert not bank.permissions


async def test_a_nonce_is_used_once(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    body = permission()
    assert (await register(bank, http, body))[0] == 201
    status, answer = await register(bank, http, body)
    assert (status, answer["error"]) == (400, "invalid_request")


async def test_the_api_token_and_its_scopes(bank: SandboxBank,
                                            http: aiohttp.ClientSession) -> None:
    status, answer = await register(bank, http, permission(), token="not-a-token")
    assert (status, answer["error"]) == (401, "invalid_token")
    narrow = await api_token(bank, http, scope="permissions/client")
    status, answer = await register(bank, http, permission(), token=narrow)
    assert (status, answer["error"]) == (403, "insufficient_scope")


async def test_app_authorize_takes_the_api_token_and_the_device(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    token = await api_token(bank, http)
    _, registered = await register(bank, http, permission(), token)
    device = b64({"p": "ios", "ma": "Apple", "mo": "iPhone11,2"})
    form = {"login_hint_token": registered["permissionToken"], "scope": "openid",
            "device_info": device, "client_assertion": token,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    url = f"{bank.issuer}/oidc/v1/app-authorize"
    async with http.post(url, data={**form, "client_assertion": "other"}) as resp:
        assert (resp.status, (await resp.json())["error"]) == (401, "invalid_client")
    async with http.post(url, data={**form, "device_info": b64({"p": "ios"})}) as resp:
        assert (resp.status, (await resp.json())["error"]) == (400, "invalid_request")
    async with http.post(url, data=form) as resp:
        started = await resp.json()
    assert resp.status == 200, started
    assert started["authorize_uri"].startswith(f"{bank.issuer}/app2app/")
    request = bank.ciba_request(started["auth_req_id"])
    assert request.permission is not None and request.app_callback_uri == (
        "https://proxy.example/resume/h")
    # the token endpoint takes the API token as client_assertion too
    bank.ciba_approve(started["auth_req_id"])
    async with http.post(f"{bank.issuer}/token", data={
        "grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": started["auth_req_id"],
        "client_assertion": token,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }) as resp:
        assert resp.status == 200, await resp.text()


async def test_par_and_authorization_details(bank: SandboxBank,
                                             http: aiohttp.ClientSession) -> None:
    bank.rar_types, bank.par_endpoint = ("payment_initiation", "payment.v1"), True
    bank.auto_approve = False
    params = {"response_type": "code", "client_id": CLIENT, "redirect_uri":
              "https://proxy.example/cb", "scope": "openid", "state": "s", "nonce": "n",
              "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
              "code_challenge_method": "S256"}
    item = [{"type": "payment.v1", "permission": b64({"nonce": "x", "payments": [
        {"amount": "5.00", "currency": "NOK", "creditorName": "Kiosk"}]})}]
    # a permission item is taken only in PAR
    async with http.get(f"{bank.issuer}/authorize", allow_redirects=False,
                        params={**params, "authorization_details": json.dumps(item)}) as resp:
        assert "error=invalid_authorization_details" in resp.headers["Location"]
    async with http.post(f"{bank.issuer}/par", data={
        **params, "client_secret": SECRET, "authorization_details": json.dumps(item)}) as resp:
        pushed = await resp.json()
    assert resp.status == 201, pushed
    async with http.get(f"{bank.issuer}/authorize", params={
        "client_id": CLIENT, "request_uri": pushed["request_uri"]}) as resp:
        assert "Pay 5.00 NOK to Kiosk" in await resp.text()
    # a request_uri is taken once
    async with http.get(f"{bank.issuer}/authorize", allow_redirects=False, params={
        "client_id": CLIENT, "request_uri": pushed["request_uri"]}) as resp:
        assert resp.status == 400
    # a type the bank does not take
    other = [{"type": "account_information"}]
    async with http.get(f"{bank.issuer}/authorize", allow_redirects=False,
                        params={**params, "authorization_details": json.dumps(other)}) as resp:
        assert "error=invalid_authorization_details" in resp.headers["Location"]
