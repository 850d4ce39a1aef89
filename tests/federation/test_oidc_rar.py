"""RFC 9396 authorization_details toward redirect (``kind: oidc``) and plain CIBA banks,
against the sandbox bank over HTTP: as they are to a bank whose metadata lists their
types (pushed where the bank takes PAR), as a BankID permission item in PAR to a bank that
names a permission type for them, to no other bank; and what the bank answers."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from federation.ciba import CibaAdapter
from federation.oidc import OidcRedirectAdapter
from federation.permissions import DIGEST_DESCRIPTION
from federation.protocol import BankError, BankResult, DecoupledRequest, StartRequest
from federation.sandbox import SandboxBank, SandboxClient, serve_sandbox
from federation.settings import BankSettings, Permissions

CLIENT = "merchant-at-a"
SECRET = "bank-a-secret-" + "s" * 20
CALLBACK = "https://proxy.example/callback/bank-a"
PAYMENT = {"type": "payment_initiation", "creditorName": "Merchant A",
           "instructedAmount": {"currency": "EUR", "amount": "123.50"}}


@pytest.fixture
async def bank() -> AsyncIterator[SandboxBank]:
    sandbox = SandboxBank(clients=[SandboxClient(CLIENT, [CALLBACK], "client_secret_basic",
                                                 secret=SECRET)])
    async with serve_sandbox(sandbox) as served:
        yield served


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def settings(bank: SandboxBank, **overrides: Any) -> BankSettings:
    values: dict[str, Any] = {
        "id": "bank-a", "kind": "oidc", "issuer": bank.issuer, "client_id": CLIENT,
        "client_auth": "client_secret_basic", "client_secret": SECRET, "timeout": 2.0,
        "acr_values": ("urn:merchant:acr:bank-a",), "scopes": ("openid", "profile"),
        "name": "Bank A",
    }
    values.update(overrides)
    return BankSettings(**values)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def login(adapter: OidcRedirectAdapter, http: aiohttp.ClientSession,
                *details: dict[str, Any]) -> tuple[str, BankResult]:  # fmt: skip
    """Start with ``details``, approve at the sandbox (auto_approve), finish: the URL the
    user was sent to and the result."""
    start = await adapter.start(StartRequest(secrets.token_urlsafe(16), CALLBACK,
                                             authorization_details=tuple(details)))
    async with http.get(start.url, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        back = query(resp.headers["Location"])
    return start.url, await adapter.finish(start.conn_data, back, CALLBACK)


async def refused(adapter: OidcRedirectAdapter, *details: dict[str, Any]) -> BankError:
    with pytest.raises(BankError) as info:
        await adapter.start(StartRequest("state", CALLBACK,
                                         authorization_details=tuple(details)))
    return info.value


async def test_a_bank_that_lists_the_type_gets_them_as_they_are(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    bank.rar_types = ("payment_initiation",)
    url, result = await login(OidcRedirectAdapter(settings(bank), http), http, PAYMENT)
    # RFC 9396 §3: the form-encoded serialized JSON, in the authorization request
    assert json.loads(query(url)["authorization_details"]) == [PAYMENT]
    # §7: the bank's answer is what the grant records
    assert result.authorization_details == (PAYMENT,)
    assert bank.last("/token").form["grant_type"] == "authorization_code"


async def test_with_use_par_they_are_pushed(bank: SandboxBank,
                                            http: aiohttp.ClientSession) -> None:
    bank.rar_types, bank.par_endpoint = ("payment_initiation",), True
    url, result = await login(OidcRedirectAdapter(settings(bank, use_par=True), http), http,
                              PAYMENT)
    assert set(query(url)) == {"client_id", "request_uri"}
    assert json.loads(bank.last("/par").form["authorization_details"]) == [PAYMENT]
    assert result.authorization_details == (PAYMENT,)


async def test_an_answer_in_other_types_is_refused(bank: SandboxBank,
                                                   http: aiohttp.ClientSession) -> None:
    bank.rar_types = ("payment_initiation",)
    bank.rar_answer = [{"type": "account_information", "actions": ["read_balances"]}]
    with pytest.raises(BankError) as info:
        await login(OidcRedirectAdapter(settings(bank), http), http, PAYMENT)
    assert info.value.error == "server_error"
    assert info.value.detail == (
        "token response: authorization_details not of the requested types")


async def test_the_bank_may_answer_what_the_user_approved(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    """RFC 9396 §7.1: the details "MAY differ from what the client requests"."""
    bank.rar_types = ("payment_initiation",)
    enriched = {**PAYMENT, "debtorAccount": {"iban": "DE40100100103307118608"}}
    bank.rar_answer = [enriched]
    _, result = await login(OidcRedirectAdapter(settings(bank), http), http, PAYMENT)
    assert result.authorization_details == (enriched,)


def bankid_oidc(bank: SandboxBank, **overrides: Any) -> BankSettings:
    """BankID's own OIDC provider: payment_initiation goes as a payment.v1 permission."""
    return settings(bank, permissions=Permissions(types={"payment_initiation": "payment.v1"}),
                    **overrides)


async def test_a_permission_item_goes_in_par(bank: SandboxBank,
                                             http: aiohttp.ClientSession) -> None:
    bank.rar_types, bank.par_endpoint = ("payment.v1",), True
    url, result = await login(OidcRedirectAdapter(bankid_oidc(bank), http), http, PAYMENT)
    assert set(query(url)) == {"client_id", "request_uri"}  # pushed, though use_par is off
    (item,) = json.loads(bank.last("/par").form["authorization_details"])
    assert set(item) == {"type", "permission"} and item["type"] == "payment.v1"
    permission = item["permission"]
    statement = json.loads(base64.urlsafe_b64decode(permission + "=" * (-len(permission) % 4)))
    assert statement["payments"] == [{"amount": "123.50", "currency": "EUR",
                                      "creditorName": "Merchant A"}]
    assert isinstance(statement["nonce"], str)
    # the ID token named it (permission_digest); the grant keeps what was asked
    assert result.authorization_details is None
    digest = hashlib.sha256(permission.encode()).digest()
    assert result.identity.claims["permission_digest"] == base64.b64encode(digest).decode()


async def test_a_permission_digest_of_another_statement(bank: SandboxBank,
                                                        http: aiohttp.ClientSession) -> None:
    bank.rar_types, bank.par_endpoint = ("payment.v1",), True
    bank.permission_digest = "wrong"
    with pytest.raises(BankError) as info:
        await login(OidcRedirectAdapter(bankid_oidc(bank), http), http, PAYMENT)
    assert (info.value.error, info.value.description) == ("server_error", DIGEST_DESCRIPTION)


async def test_a_permission_needs_par(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.rar_types = ("payment.v1",)  # no PAR endpoint in its metadata
    failure = await refused(OidcRedirectAdapter(bankid_oidc(bank), http), PAYMENT)
    assert (failure.error, failure.description) == (
        "invalid_authorization_details", "Bank A cannot take these authorization_details")


async def test_a_bank_that_takes_neither(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.rar_types = ("account_information",)
    failure = await refused(OidcRedirectAdapter(settings(bank), http), PAYMENT)
    assert failure.error == "invalid_authorization_details"
    assert not [r for r in bank.requests if r.path in ("/par", "/authorize")]


async def test_a_plain_ciba_bank_takes_listed_types(bank: SandboxBank,
                                                    http: aiohttp.ClientSession) -> None:
    """RFC 9396 §3: "backchannel authentication requests as defined in [OID-CIBA]"."""
    adapter = CibaAdapter(settings(bank, kind="ciba"), http)
    request = DecoupledRequest(return_uri="https://proxy.example/resume/h", requested_expiry=60,
                               login_hint="alice", authorization_details=(PAYMENT,))
    with pytest.raises(BankError) as info:
        await adapter.start_decoupled(request)
    assert info.value.error == "invalid_authorization_details"
    bank.rar_types = ("payment_initiation",)
    adapter = CibaAdapter(settings(bank, kind="ciba"), http)  # metadata is cached: anew
    started = await adapter.start_decoupled(request)
    assert json.loads(bank.last("/bc-authorize").form["authorization_details"]) == [PAYMENT]
    bank.ciba_approve(started.auth_req_id)
    bank.rar_answer = [PAYMENT]
    result = await adapter.poll(started.auth_req_id, 1, started.context)
    assert isinstance(result, BankResult)
    assert result.authorization_details == (PAYMENT,)
