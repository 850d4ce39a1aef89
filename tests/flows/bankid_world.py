"""Whole logins at BankID with biometrics (``kind: ciba`` with ``permissions:``) and with
RFC 9396 authorization_details: the proxy on a real port, sandbox banks over HTTP, real
Redis.

``bankid_world()`` builds the proxy with bank A (a redirect bank that takes
``payment_initiation`` details as they are, and PAR), bank B (a redirect bank that takes
none) and ``bankid`` (the seed's App2App shape on its own sandbox bank), and the
``payment_initiation`` type declared with the schema the demo ships
(``docs/schemas/payment_initiation.json``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema.validators import validator_for

from federation.sandbox import SandboxBank, SandboxClient, serve_sandbox
from federation.settings import BankSettings, Permissions
from proxy.config.settings import AuthorizationDetailsType, ClientSettings, StoreSettings
from tests.flows.harness import (
    ACR_A,
    ACR_B,
    APP,
    PUBLIC,
    SERVER,
    SERVER_SECRET,
    Login,
    Proxy,
    app_redirect_params,
    bank_settings,
    make_config,
    run_proxy,
)
from tests.ports import free_port

ACR_BANKID = "urn:merchant:acr:bankid"
BANKID_CLIENT = "merchant-bankid"
BANKID_SECRET = "bankid-secret-" + "b" * 20
API_SCOPES = ("permissions/app2app", "permissions/client")
NNIN = "12345678910"  # the sandbox user's
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "payment_initiation.json"
# the clients that may ask for payment_initiation; merchant-web (CONFIDENTIAL) may not
RAR_CLIENTS = (PUBLIC, APP, SERVER)


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


DEVICE_INFO = b64({"p": "ios", "ma": "Apple", "mo": "iPhone11,2"})
PAYMENT = {"type": "payment_initiation", "creditorName": "Scrooge McDuck",
           "instructedAmount": {"currency": "NOK", "amount": "123.45"},
           "endToEndIdentification": "order-4711"}


def details(*objects: dict[str, Any]) -> str:
    return json.dumps(list(objects))


def payment_type(id_token: bool = False) -> AuthorizationDetailsType:
    schema = json.loads(SCHEMA_FILE.read_text())
    return AuthorizationDetailsType("payment_initiation", schema, validator_for(schema)(schema),
                                    id_token)


@dataclass
class BankIdWorld:
    bankid: SandboxBank
    bank_a: SandboxBank
    bank_b: SandboxBank
    proxy: Proxy
    stack: AsyncExitStack

    def requests(self, path: str) -> list[Any]:
        return [r for r in self.bankid.requests if r.path == path]

    async def start(self, **overrides: str | None) -> tuple[aiohttp.ClientResponse, Login]:
        """The merchant backend pushes a BankID login (NNIN, device_info), the app opens
        /authorize with the request_uri: the proxy's answer."""
        params: dict[str, str | None] = {"acr_values": ACR_BANKID, "login_hint": NNIN,
                                         "device_info": DEVICE_INFO}
        params.update(overrides)
        return await self.proxy.authorize_pushed(**params)

    async def bankid_app(self, link: str, decision: str = "approve") -> str:
        """The user answers in the BankID app at ``link``; where it returns them (the
        proxy's /resume, the permission's app_callback_uri)."""
        resp = await self.proxy.http.post(link + "/decide", data={"decision": decision},
                                          allow_redirects=False)
        assert resp.status == 302, await resp.text()
        location: str = resp.headers["Location"]
        assert location.startswith(f"{self.proxy.issuer}/resume/"), location
        return location

    async def login(self, decision: str = "approve", **overrides: str | None) -> Login:
        resp, login = await self.start(**overrides)
        assert resp.status == 302, await resp.text()
        resume = await self.bankid_app(resp.headers["Location"], decision)
        back = await self.proxy.http.get(resume, allow_redirects=False)
        assert back.status == 302, await back.text()
        login.params = app_redirect_params(back)
        return login

    async def tokens(self, login: Login, **extra: str) -> dict[str, Any]:
        resp = await self.proxy.exchange(login, client_id=SERVER, client_secret=SERVER_SECRET,
                                         **extra)
        body: dict[str, Any] = await resp.json()
        assert resp.status == 200, body
        return body


def bankid_settings(bank: SandboxBank, **overrides: Any) -> BankSettings:
    """The DESIGN.md example, pointed at ``bank``."""
    settings = BankSettings(
        id="bankid", kind="ciba", issuer=bank.issuer, client_id=BANKID_CLIENT,
        client_auth="client_secret_basic", client_secret=BANKID_SECRET,
        acr_values=(ACR_BANKID,), name="BankID", scopes=("openid", "profile"), timeout=2.0,
        authentication_level="substantial", jwks_cooldown=0.0,
        claims={"name": "name", "given_name": "given_name", "family_name": "family_name"},
        start_endpoint="app_authentication_endpoint", assertion="access_token",
        permissions=Permissions(endpoint=f"{bank.issuer}/permissions/v1/", scopes=API_SCOPES,
                                types={"payment_initiation": "payment.v1"}),
        pass_through=("device_info",),
    )
    return dataclasses.replace(settings, **overrides)


BankIdWorldFactory = Callable[..., Any]


@pytest.fixture
async def bankid_world(redis_url: str, store_prefix: str) -> AsyncIterator[BankIdWorldFactory]:
    """``await bankid_world(id_token=False, **bankid_overrides)``."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())

        async def build(id_token: bool = False, **overrides: Any) -> BankIdWorld:
            port = free_port()
            issuer = f"http://127.0.0.1:{port}"
            bankid = SandboxBank(clients=[SandboxClient(BANKID_CLIENT, [], "client_secret_basic",
                                                        secret=BANKID_SECRET)])  # fmt: skip
            bankid.ciba_interval = 1
            bankid.ciba_id_token_only = True  # as BankID's app-authorize answers
            bank_a = SandboxBank(clients=[SandboxClient(
                "merchant-at-a", [f"{issuer}/callback/bank-a"], "client_secret_basic",
                secret="bank-a-secret-" + "s" * 20)])  # fmt: skip
            bank_a.rar_types, bank_a.par_endpoint = ("payment_initiation",), True
            bank_b = SandboxBank(clients=[SandboxClient(
                "merchant-at-b", [f"{issuer}/callback/bank-b"], "client_secret_post",
                secret="bank-b-secret-" + "t" * 20)])  # fmt: skip
            for bank in (bankid, bank_a, bank_b):
                await stack.enter_async_context(serve_sandbox(bank))
            banks = [bank_settings(bank_a, "bank-a", ACR_A, name="Bank A"),
                     bank_settings(bank_b, "bank-b", ACR_B, name="Bank B"),
                     bankid_settings(bankid, **overrides)]
            config = make_config(issuer, StoreSettings(url=redis_url, prefix=store_prefix), banks)
            config = dataclasses.replace(
                config, authorization_details_types=(payment_type(id_token),),
                clients=tuple(_with_types(c) for c in config.clients))
            await stack.enter_async_context(run_proxy(config, port))
            return BankIdWorld(bankid, bank_a, bank_b, Proxy(issuer, config, http), stack)

        yield build


def _with_types(client: ClientSettings) -> ClientSettings:
    if client.client_id not in RAR_CLIENTS:
        return client
    return dataclasses.replace(client, authorization_details_types=("payment_initiation",))
