"""Whole logins: the proxy on a real port, sandbox banks over HTTP, real Redis.

``world`` starts two sandbox banks and one proxy; ``world.login()`` plays the
merchant app and the user's browser up to the code on the merchant redirect URI.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
import pytest
from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from jwcrypto import jwk

from federation.sandbox import SandboxBank, SandboxClient, serve_sandbox
from federation.settings import BankSettings
from proxy.app import create_app
from proxy.config.settings import (
    AndroidApp,
    Apps,
    ClientSettings,
    Config,
    IosApp,
    Keys,
    Lifetimes,
    ResourceServer,
    SigningKey,
    StoreSettings,
    Subject,
)
from proxy.observability.tracing import Tracing
from proxy.ops.keys import generate_signing_key
from proxy.ops.reload import apply_config
from proxy.web.server import ProxyRunner
from tests.ports import free_port

APP_REDIRECT = "https://app.merchant.example/auth/callback"
ACR_A = "urn:merchant:acr:bank-a"
ACR_B = "urn:merchant:acr:bank-b"
ACR_C = "urn:merchant:acr:bank-c"
PUBLIC = "merchant-ios"
# a public app that names no bank: it gets the picker (or the browser-less prompt)
APP = "merchant-app2app"
NATIVE_CALLBACK = "https://app.merchant.example/app2app"
CONFIDENTIAL = "merchant-web"
CONFIDENTIAL_SECRET = "web-secret-" + "x" * 20
RS_PLAIN = ("orders-api", "orders-secret-" + "y" * 20)
RS_BANK = ("payments-api", "payments-secret-" + "z" * 20)

_SIGNING_KEY = generate_signing_key("ES256")
JWT_CLIENT = "merchant-backend"
JWT_CLIENT_KEY = jwk.JWK.generate(kty="EC", crv="P-256", kid="backend-1")
# RFC 9449: a public client that must use DPoP, and a FAPI 2.0 one (private_key_jwt)
DPOP_CLIENT = "merchant-dpop"
FAPI_CLIENT = "merchant-fapi-dpop"
FAPI_CLIENT_KEY = jwk.JWK.generate(kty="EC", crv="P-256", kid="fapi-dpop-1")
# RFC 8707: two APIs with audiences, and a client whose tokens default to one of them
CAL_AUDIENCE = "https://calendar.merchant.example/"
PAY_AUDIENCE = "https://pay.merchant.example/v1"
RS_CAL = ("calendar-api", "calendar-secret-" + "c" * 20)
RS_PAY = ("pay-api", "pay-secret-" + "p" * 20)
PAY_CLIENT = "merchant-pay"
# a merchant backend (confidential): it pushes the request to /par, its app opens
# /authorize with the request_uri; the one kind of request that may name the user to a
# decoupled bank (login_hint, login_hint_token, binding_message: docs/app2app.md)
SERVER = "merchant-server"
SERVER_SECRET = "server-secret-" + "w" * 20


def bank_client_key() -> jwk.JWK:
    return jwk.JWK.generate(kty="EC", crv="P-256", kid="merchant-at-bank-1")


def make_config(
    issuer: str,
    store: StoreSettings,
    banks: list[BankSettings],
    lifetimes: Lifetimes | None = None,
) -> Config:
    return Config(
        issuer=issuer,
        keys=Keys(signing=(SigningKey(_SIGNING_KEY),),
                  token_encryption=secrets.token_bytes(32)),
        store=store,
        lifetimes=lifetimes or Lifetimes(),
        subject=Subject(type="pairwise", salt="test-salt"),
        banks=tuple(banks),
        clients=(
            ClientSettings(
                client_id=PUBLIC, type="public", redirect_uris=(APP_REDIRECT,),
                default_acr=ACR_A, scopes=("openid", "profile", "offline_access"),
            ),
            ClientSettings(
                client_id=CONFIDENTIAL, type="confidential", redirect_uris=(APP_REDIRECT,),
                acr_values=(ACR_A,), scopes=("openid", "profile", "offline_access"),
                client_secret=CONFIDENTIAL_SECRET,
            ),
            ClientSettings(
                client_id=APP, type="public", redirect_uris=(APP_REDIRECT,),
                scopes=("openid", "profile", "offline_access"),
                native_callback_uris=(NATIVE_CALLBACK,),
            ),
            ClientSettings(
                client_id=JWT_CLIENT, type="confidential", redirect_uris=(APP_REDIRECT,),
                scopes=("openid", "profile"),
                jwks={"keys": [JWT_CLIENT_KEY.export(private_key=False, as_dict=True)]},
            ),
            ClientSettings(
                client_id=DPOP_CLIENT, type="public", redirect_uris=(APP_REDIRECT,),
                default_acr=ACR_A, scopes=("openid", "profile", "offline_access"),
                require_dpop=True,
            ),
            ClientSettings(
                client_id=FAPI_CLIENT, type="confidential", redirect_uris=(APP_REDIRECT,),
                default_acr=ACR_A, scopes=("openid", "profile", "offline_access"),
                jwks={"keys": [FAPI_CLIENT_KEY.export(private_key=False, as_dict=True)]},
                profile="fapi2",
            ),
            ClientSettings(
                client_id=PAY_CLIENT, type="public", redirect_uris=(APP_REDIRECT,),
                default_acr=ACR_A, scopes=("openid", "profile", "offline_access"),
                default_resource=PAY_AUDIENCE,
            ),
            ClientSettings(
                client_id=SERVER, type="confidential", redirect_uris=(APP_REDIRECT,),
                scopes=("openid", "profile", "offline_access"), client_secret=SERVER_SECRET,
                native_callback_uris=(NATIVE_CALLBACK,),
            ),
        ),
        apps=Apps(
            ios=(IosApp("TEAMID.com.merchant.app", ("/callback/*", "/resume/*")),),
            android=(AndroidApp("com.merchant.app", (":".join(["AB"] * 32),)),),
        ),
        resource_servers=(
            ResourceServer(*RS_PLAIN, receive_bank_token=False),
            ResourceServer(*RS_BANK, receive_bank_token=True),
            ResourceServer(*RS_CAL, audience=CAL_AUDIENCE),
            ResourceServer(*RS_PAY, audience=PAY_AUDIENCE),
        ),
    )


@dataclass
class Login:
    """What the merchant app holds after the redirect back to it."""

    params: dict[str, str]
    verifier: str
    nonce: str
    state: str

    @property
    def code(self) -> str:
        return self.params["code"]


@dataclass
class Proxy:
    issuer: str
    config: Config
    http: aiohttp.ClientSession

    async def authorize(self, **overrides: str | None) -> tuple[aiohttp.ClientResponse, Login]:
        login, query = new_request(**overrides)
        resp = await self.http.get(f"{self.issuer}/authorize", params=query,
                                   allow_redirects=False)
        await resp.read()
        return await self.see_other(resp), login

    async def see_other(self, resp: aiohttp.ClientResponse) -> aiohttp.ClientResponse:
        """A 303 See Other to a page of the proxy (the picker, an interstitial) followed,
        as a browser does; any other answer as it is."""
        location = resp.headers.get("Location", "")
        if resp.status == 303 and location.startswith(self.config.issuer + "/"):
            # (on another instance of the same config: asked of this one)
            url = self.issuer + location[len(self.config.issuer):]
            resp = await self.http.get(url, allow_redirects=False)
            await resp.read()
        return resp

    async def native(self, **overrides: str | None) -> tuple[aiohttp.ClientResponse, Login]:
        """The browser-less App2App request: POST /native/authorize as the APP client."""
        overrides = {"client_id": APP, "native_callback_uri": NATIVE_CALLBACK, **overrides}
        login, form = new_request(**overrides)
        resp = await self.http.post(f"{self.issuer}/native/authorize", data=form,
                                    allow_redirects=False)
        await resp.read()
        return resp, login

    async def push(self, **overrides: str | None) -> tuple[str, Login]:
        """The merchant backend (SERVER) pushes a request to /par; its request_uri."""
        login, form = new_request(client_id=SERVER, **overrides)
        resp = await self.post("/par", form, auth=(SERVER, SERVER_SECRET))
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["request_uri"]), login

    async def authorize_pushed(self, **overrides: str | None
                               ) -> tuple[aiohttp.ClientResponse, Login]:
        """SERVER pushes the request; its app opens /authorize with the request_uri."""
        request_uri, login = await self.push(**overrides)
        resp = await self.http.get(f"{self.issuer}/authorize", allow_redirects=False,
                                   params={"client_id": SERVER, "request_uri": request_uri})
        await resp.read()
        return await self.see_other(resp), login

    async def native_pushed(self, **overrides: str | None
                            ) -> tuple[aiohttp.ClientResponse, Login]:
        """SERVER pushes the request; its app posts the request_uri to /native/authorize."""
        request_uri, login = await self.push(**overrides)
        resp = await self.http.post(f"{self.issuer}/native/authorize", allow_redirects=False,
                                    data={"client_id": SERVER, "request_uri": request_uri,
                                          "native_callback_uri": NATIVE_CALLBACK})
        await resp.read()
        return resp, login

    async def call(self, url: str) -> aiohttp.ClientResponse:
        """What a browser-less app does with a ``call`` action, or a URL its deep link
        received: a GET asking for JSON."""
        resp = await self.http.get(url, headers={"Accept": "application/json"},
                                   allow_redirects=False)
        await resp.read()
        return resp

    async def follow(self, resp: aiohttp.ClientResponse) -> aiohttp.ClientResponse:
        """Follow redirects (bank authorize, proxy callback) until the merchant app."""
        while resp.status in (302, 303) and not resp.headers["Location"].startswith(
            APP_REDIRECT
        ):
            resp = await self.http.get(resp.headers["Location"], allow_redirects=False)
            await resp.read()
        return resp

    async def login(self, **overrides: str | None) -> Login:
        resp, login = await self.authorize(**overrides)
        assert resp.status == 302, await resp.text()
        final = await self.follow(resp)
        assert final.status == 302, await final.text()
        login.params = app_redirect_params(final)
        return login

    async def post(self, path: str, data: Mapping[str, str],
                   auth: tuple[str, str] | None = None,
                   headers: Mapping[str, str] | None = None) -> aiohttp.ClientResponse:
        all_headers = dict(headers or {})
        if auth:
            all_headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        resp = await self.http.post(f"{self.issuer}{path}", data=dict(data),
                                    headers=all_headers, allow_redirects=False)
        await resp.read()
        return resp

    async def exchange(self, login: Login, client_id: str = PUBLIC,
                       **extra: str) -> aiohttp.ClientResponse:
        form = {"grant_type": "authorization_code", "code": login.code,
                "redirect_uri": APP_REDIRECT, "client_id": client_id,
                "code_verifier": login.verifier, **extra}
        return await self.post("/token", form)

    async def tokens(self, **overrides: str | None) -> dict[str, Any]:
        login = await self.login(**overrides)
        resp = await self.exchange(login)
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def refresh(self, refresh_token: str, client_id: str = PUBLIC) -> aiohttp.ClientResponse:
        return await self.post("/token", {"grant_type": "refresh_token",
                                          "refresh_token": refresh_token,
                                          "client_id": client_id})

    async def dpop_post(self, path: str, data: Mapping[str, str], key: DPoPKey,
                        auth: tuple[str, str] | None = None, **claims: Any,
                        ) -> aiohttp.ClientResponse:
        """POST with a DPoP proof for ``{issuer}{path}``. A use_dpop_nonce answer is
        retried once with the nonce it supplied, as RFC 9449 §8 has clients do."""
        for _ in range(2):
            proof = key.proof("POST", f"{self.issuer}{path}", **claims)
            resp = await self.post(path, data, auth=auth, headers={"DPoP": proof})
            key.remember(resp)
            if resp.status != 400 or (await resp.json())["error"] != "use_dpop_nonce":
                break
        return resp

    async def dpop_tokens(self, key: DPoPKey, client_id: str = PUBLIC,
                          **overrides: str | None) -> dict[str, Any]:
        """Log in and exchange the code with DPoP proofs of ``key``."""
        login = await self.login(client_id=client_id, **overrides)
        form = {"grant_type": "authorization_code", "code": login.code,
                "redirect_uri": APP_REDIRECT, "client_id": client_id,
                "code_verifier": login.verifier}
        resp = await self.dpop_post("/token", form, key)
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def introspect(self, token: str, rs: tuple[str, str] = RS_PLAIN) -> dict[str, Any]:
        resp = await self.post("/introspect", {"token": token}, auth=rs)
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


@dataclass
class DPoPKey:
    """A client's DPoP key (RFC 9449): signs proofs, remembers the server's last nonce."""

    key: jwk.JWK
    alg: str
    nonce: str | None = None

    @classmethod
    def generate(cls, alg: str = "ES256") -> DPoPKey:
        if alg == "ES256":
            key = jwk.JWK.generate(kty="EC", crv="P-256")
        elif alg == "EdDSA":
            key = jwk.JWK.generate(kty="OKP", crv="Ed25519")
        else:
            key = jwk.JWK.generate(kty="RSA", size=2048)
        return cls(key, alg)

    @property
    def public_jwk(self) -> dict[str, Any]:
        params: dict[str, Any] = self.key.export(private_key=False, as_dict=True)
        return params

    @property
    def jkt(self) -> str:
        return str(self.key.thumbprint())

    def proof(self, method: str, url: str, *, access_token: str | None = None,
              header: Mapping[str, Any] | None = None, **claims: Any) -> str:
        """A proof for ``method url``; ``claims`` override (None removes) jti, iat, nonce,
        ath...; ``header`` overrides the JOSE header (typ, alg, jwk)."""
        body: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url,
                                "iat": int(time.time())}
        if self.nonce is not None:
            body["nonce"] = self.nonce
        if access_token is not None:
            body["ath"] = b64(hashlib.sha256(access_token.encode()).digest())
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        headers: dict[str, Any] = {"typ": "dpop+jwt", "jwk": self.public_jwk, **(header or {})}
        private = jwt.PyJWK(self.key.export(private_key=True, as_dict=True), algorithm=self.alg)
        return jwt.encode(body, private.key, algorithm=self.alg, headers=headers)

    def remember(self, resp: aiohttp.ClientResponse) -> None:
        if "DPoP-Nonce" in resp.headers:
            self.nonce = resp.headers["DPoP-Nonce"]


def new_request(**overrides: str | None) -> tuple[Login, dict[str, str]]:
    """A fresh authorization request of the PUBLIC client (PKCE, state, nonce), with
    ``overrides`` (None removes a parameter)."""
    verifier = secrets.token_urlsafe(48)
    login = Login({}, verifier, secrets.token_urlsafe(16), secrets.token_urlsafe(16))
    params: dict[str, str | None] = {
        "response_type": "code", "client_id": PUBLIC, "redirect_uri": APP_REDIRECT,
        "scope": "openid profile offline_access", "state": login.state,
        "nonce": login.nonce, "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return login, {k: v for k, v in params.items() if v is not None}


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def app_redirect_params(resp: aiohttp.ClientResponse) -> dict[str, str]:
    location = resp.headers["Location"]
    assert location.startswith(APP_REDIRECT + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@asynccontextmanager
async def run_proxy(config: Config, port: int, tracing: Tracing | None = None
                    ) -> AsyncIterator[web.Application]:  # fmt: skip
    app = create_app(config, tracing=tracing)
    runner = ProxyRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield app
    finally:
        await runner.cleanup()


def bank_settings(bank: SandboxBank, bank_id: str, acr: str, **overrides: Any) -> BankSettings:
    client = bank.clients[next(iter(bank.clients))]
    settings = BankSettings(
        id=bank_id, kind="oidc", issuer=bank.issuer, client_id=client.client_id,
        client_auth=client.auth_method,  # type: ignore[arg-type]
        acr_values=(acr,), upstream_acr_values=("urn:sandbox:loa:high",), timeout=2.0,
        client_secret=client.secret, scopes=("openid", "profile"),
        authentication_level="sca",
        claims={"name": "name", "given_name": "given_name", "family_name": "family_name"},
        jwks_cooldown=0.0,
    )
    return dataclasses.replace(settings, **overrides)


@dataclass
class World:
    """Two sandbox banks and a proxy on one Redis prefix."""

    bank_a: SandboxBank
    bank_b: SandboxBank
    proxy: Proxy
    store: StoreSettings
    stack: AsyncExitStack
    extra: dict[str, Any] = field(default_factory=dict)
    bank_c: SandboxBank | None = None  # the decoupled (CIBA) bank, when asked for
    app: web.Application | None = None  # the proxy's app, for reload()

    def reload(self, config: Config) -> None:
        """What a SIGHUP does once the new file is read (proxy.ops.reload.apply_config):
        ``config`` becomes the proxy's, for every request that arrives from now on."""
        assert self.app is not None and apply_config(self.app, config), "reload refused"
        self.proxy.config = config

    @property
    def ciba(self) -> SandboxBank:
        assert self.bank_c is not None, "build the world with ciba=True"
        return self.bank_c

    async def another_proxy(self) -> Proxy:
        """A second instance with the same config (same Redis, same keys)."""
        port = free_port()
        config = dataclasses.replace(self.proxy.config, issuer=self.proxy.issuer)
        await self.stack.enter_async_context(run_proxy(config, port))
        return Proxy(f"http://127.0.0.1:{port}", config, self.proxy.http)


WorldFactory = Callable[..., Any]


@pytest.fixture
async def world_factory(redis_url: str, store_prefix: str) -> AsyncIterator[WorldFactory]:
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())

        async def build(
            auth_a: str = "client_secret_basic",
            store: StoreSettings | None = None,
            lifetimes: Lifetimes | None = None,
            bank_a_overrides: Mapping[str, Any] | None = None,
            ciba: bool = False,
            bank_c_overrides: Mapping[str, Any] | None = None,
            tracing: Tracing | None = None,
        ) -> World:
            port = free_port()
            issuer = f"http://127.0.0.1:{port}"
            key = bank_client_key()
            public_jwks = {"keys": [key.export(private_key=False, as_dict=True)]}
            bank_a = SandboxBank(clients=[SandboxClient(
                "merchant-at-a", [f"{issuer}/callback/bank-a"], auth_a,
                secret="bank-a-secret-" + "s" * 20 if auth_a != "private_key_jwt" else None,
                jwks=public_jwks if auth_a == "private_key_jwt" else None,
            )])
            bank_b = SandboxBank(clients=[SandboxClient(
                "merchant-at-b", [f"{issuer}/callback/bank-b"], "client_secret_post",
                secret="bank-b-secret-" + "t" * 20,
            )], user=None)
            await stack.enter_async_context(serve_sandbox(bank_a))
            await stack.enter_async_context(serve_sandbox(bank_b))
            a_extra: dict[str, Any] = dict(bank_a_overrides or {})
            if auth_a == "private_key_jwt":
                a_extra["private_key"] = key.export(private_key=True)
            banks = [bank_settings(bank_a, "bank-a", ACR_A, **a_extra),
                     bank_settings(bank_b, "bank-b", ACR_B)]
            bank_c = None
            if ciba:
                # a decoupled bank: no redirect URIs; the user approves in its app
                bank_c = SandboxBank(clients=[SandboxClient(
                    "merchant-at-c", [], "client_secret_basic", secret="bank-c-" + "u" * 20,
                )])
                await stack.enter_async_context(serve_sandbox(bank_c))
                banks.append(bank_settings(
                    bank_c, "bank-c", ACR_C, kind="ciba", upstream_acr_values=(),
                    name="Bank C", **dict(bank_c_overrides or {}),
                ))
            store_settings = store or StoreSettings(url=redis_url, prefix=store_prefix)
            config = make_config(issuer, store_settings, banks, lifetimes)
            app = await stack.enter_async_context(run_proxy(config, port, tracing))
            return World(bank_a, bank_b, Proxy(issuer, config, http), store_settings, stack,
                         bank_c=bank_c, app=app)

        yield build


@pytest.fixture
async def world(world_factory: WorldFactory) -> World:
    built: World = await world_factory()
    return built


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
