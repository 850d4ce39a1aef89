"""The playground's routes: the landing page, a login through the proxy and what it
showed, the buttons that refresh, revoke and introspect again, and the docs.

The login is the one a merchant's app and backend make: the backend pushes the request
to /par as a confidential client (PKCE, and for a decoupled bank the user's
``login_hint`` and a ``binding_message``), the app opens /authorize with the
``request_uri``; the code comes back to the redirect URI, the backend redeems it.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from federation.sandbox import SandboxBank
from proxy.config.settings import ClientSettings, Config, ResourceServer
from proxy.ops.playground import native, own_apps, views
from proxy.ops.playground.backend import APP, JWT_INTROSPECTION, Backend, Decoded
from proxy.ops.playground.html import see_other
from proxy.ops.playground.trace import Hop, ProxyRecorder, bank_hops, in_order

DOCS = Path(__file__).resolve().parents[3] / "docs"
LOGIN_HINT = "alice@sandbox.example"
# the pay button: the sandbox user's NNIN and phone (federation.sandbox SandboxUser), and
# the payment to approve
PAY_CLIENT = "demo-pay"
PAY_ACR = "urn:merchant:acr:bankid"
PAY_NNIN = "12345678910"
PAY_DEVICE = base64.urlsafe_b64encode(json.dumps(
    {"p": "ios", "ma": "Apple", "mo": "iPhone11,2"}).encode()).rstrip(b"=").decode()
PAYMENT = {"type": "payment_initiation", "creditorName": "Scrooge McDuck",
           "instructedAmount": {"currency": "NOK", "amount": "123.45"}}
BACKEND_KEY = web.AppKey("backend", Backend)


@dataclass
class Login:
    """One login the playground made, and everything done with its tokens since."""

    id: str
    state: str
    verifier: str
    nonce: str
    binding_message: str
    client: ClientSettings  # Demo Shop, or its payments client (the pay button)
    started: float = field(default_factory=time.time)
    hops: list[Hop] = field(default_factory=list)  # the playground's own calls
    finished: float | None = None
    callback: dict[str, str] = field(default_factory=dict)  # what came to the redirect URI
    tokens: dict[str, Any] | None = None
    id_token: Decoded | None = None
    userinfo: Any = None
    introspection: list[tuple[ResourceServer, Any, Decoded | None]] = field(
        default_factory=list)
    events: list[Hop] = field(default_factory=list)  # refresh, revoke, introspect again
    trail: list[Hop] = field(default_factory=list)  # every hop of the login, in order


class Playground:
    """The demo's merchant app. ``bank``: the sandbox bank (its recorded requests are hops
    too); ``recorder``: the browser's requests to the proxy (see :func:`merchant_app`)."""

    def __init__(self, config: Config, bank: SandboxBank | None = None) -> None:
        self.config = config
        self.client = config.clients[0]
        self.redirect_uri = self.client.redirect_uris[0]
        self.bank = bank
        self.recorder = ProxyRecorder(config.issuer)
        self.logins: dict[str, Login] = {}
        self.by_state: dict[str, str] = {}
        self.runs: dict[str, native.Run] = {}
        # the same backend's payments: a BankID login with a payment (the pay button)
        self.payments = next((c for c in config.clients if c.client_id == PAY_CLIENT), None)
        self.device_key = own_apps.DeviceKey()  # the app's key, bound at its code exchange
        self.second_app = own_apps.second_app(config, self.client)

    def backend(self, request: web.Request) -> Backend:
        return request.app[BACKEND_KEY]

    # -- pages --------------------------------------------------------------------

    async def landing(self, request: web.Request) -> web.StreamResponse:
        return views.landing(self.config, self.bank_issuer())

    def bank_issuer(self) -> str:
        return self.bank.issuer if self.bank is not None else self.config.banks[0].issuer

    async def start(self, request: web.Request) -> web.StreamResponse:
        """The app's "Log in" (GET /login[?acr=...]): the backend pushes the request, the
        app opens /authorize with its request_uri."""
        acr = request.query.get("acr")
        return await self.push(request, self.client, {"acr_values": acr} if acr else {})

    async def pay(self, request: web.Request) -> web.StreamResponse:
        """"Pay 123.45 NOK with BankID" (GET /pay): the payments client pushes a BankID
        login with the user's NNIN, their phone (device_info) and the payment
        (authorization_details, RFC 9396) that the user approves in the BankID app."""
        if self.payments is None:
            return views.not_found()
        payment = {**PAYMENT, "endToEndIdentification": f"demo-{secrets.token_hex(4)}"}
        return await self.push(request, self.payments, {
            "acr_values": PAY_ACR, "login_hint": PAY_NNIN, "device_info": PAY_DEVICE,
            "authorization_details": json.dumps([payment])})

    async def push(self, request: web.Request, client: ClientSettings,
                   extra: dict[str, str]) -> web.StreamResponse:  # fmt: skip
        login = Login(secrets.token_urlsafe(16), secrets.token_urlsafe(16),
                      secrets.token_urlsafe(48), secrets.token_urlsafe(16),
                      f"DEMO-{secrets.randbelow(10_000):04d}", client)
        form = {
            "response_type": "code", "client_id": client.client_id,
            "redirect_uri": self.redirect_uri, "scope": " ".join(client.scopes),
            "state": login.state, "nonce": login.nonce,
            # a decoupled bank needs to know who logs in: named in a pushed request only
            "login_hint": LOGIN_HINT, "binding_message": login.binding_message,
            "code_challenge": create_s256_code_challenge(login.verifier),
            "code_challenge_method": "S256", **extra,
        }
        if "device_info" in extra:  # BankID: a login hint (the NNIN), no binding message
            del form["binding_message"]
        backend = self.backend(request)
        status, pushed = await backend.call(login.hops, "POST", "/par", form,
                                            auth=self.auth(client),
                                            note="RFC 9126: the backend pushes the request")
        self.logins[login.id] = login
        if status != 201 or not isinstance(pushed, dict):
            login.finished = time.time()
            login.callback = {"error": "push_failed", "error_description": str(pushed)}
            return see_other(f"/logins/{login.id}")
        self.by_state[login.state] = login.id
        query = urlencode({"client_id": client.client_id,
                           "request_uri": pushed["request_uri"]})
        raise web.HTTPFound(f"{self.config.issuer}/authorize?{query}")

    @staticmethod
    def auth(client: ClientSettings) -> tuple[str, str]:
        return (client.client_id, client.client_secret or "")

    async def finish(self, request: web.Request) -> web.StreamResponse:
        """The redirect URI: redeem the code, read userinfo, introspect as each API; then
        a 303 to the login's page (the code leaves the address bar and the history)."""
        query = dict(request.query)
        login_id = self.by_state.pop(query.get("state", ""), None)
        login = self.logins.get(login_id or "")
        if login is None:
            return views.unknown_login()
        login.finished = time.time()
        login.callback = query
        backend = self.backend(request)
        if "code" in query:
            form = {"grant_type": "authorization_code", "code": query["code"],
                    "redirect_uri": self.redirect_uri, "code_verifier": login.verifier}
            if self.second_app is not None and login.client == self.client:
                # it will approve the second app's logins
                await own_apps.bind(self.device_key, backend, login.hops, form)
            status, tokens = await backend.call(login.hops, "POST", "/token", form,
                                                auth=self.auth(login.client))
            if status == 200 and isinstance(tokens, dict):
                login.tokens = tokens
                login.id_token = await backend.decode(tokens["id_token"],
                                                      login.client.client_id)
                _, login.userinfo = await backend.call(
                    login.hops, "GET", "/userinfo", who=APP, bearer=tokens["access_token"])
                await self.introspect_all(backend, login, login.hops)
        login.trail = in_order(
            login.hops, self.recorder.hops,
            bank_hops(self.bank_issuer(), self.bank.requests if self.bank else [],
                      login.started),
            since=login.started, until=time.time(),
        )
        return see_other(f"/logins/{login.id}")

    async def introspect_all(self, backend: Backend, login: Login, hops: list[Hop]) -> None:
        """What each demo API sees: RFC 7662 JSON as each, and the RFC 9701 JWT form as the
        first."""
        login.introspection = []
        token = (login.tokens or {}).get("access_token", "")
        for index, rs in enumerate(self.config.resource_servers):
            if rs.client_secret is None:
                continue
            auth = (rs.client_id, rs.client_secret)
            who = f"{rs.client_id} → proxy"
            _, body = await backend.call(hops, "POST", "/introspect", {"token": token},
                                         auth=auth, who=who)
            as_jwt = None
            if index == 0:
                status, jws = await backend.call(hops, "POST", "/introspect", {"token": token},
                                                 auth=auth, who=who, accept=JWT_INTROSPECTION,
                                                 note="RFC 9701: the answer as a signed JWT")
                if status == 200 and isinstance(jws, str):
                    as_jwt = await backend.decode(jws, rs.client_id)
            login.introspection.append((rs, body, as_jwt))

    async def show(self, request: web.Request) -> web.StreamResponse:
        login = self.logins.get(request.match_info["login_id"])
        if login is None:
            return views.unknown_login()
        return views.result(self.config, login)

    async def act(self, request: web.Request) -> web.StreamResponse:
        """POST /logins/{id}/{refresh|revoke|introspect}: then 303 to the login's page."""
        login = self.logins.get(request.match_info["login_id"])
        if login is None or login.tokens is None:
            return views.unknown_login()
        backend = self.backend(request)
        action = request.match_info["action"]
        if action == "refresh" and "refresh_token" in login.tokens:
            status, tokens = await backend.call(
                login.events, "POST", "/token", auth=self.auth(login.client),
                form={"grant_type": "refresh_token",
                      "refresh_token": login.tokens["refresh_token"]})
            if status == 200 and isinstance(tokens, dict):
                login.tokens = tokens
                if "id_token" in tokens:
                    login.id_token = await backend.decode(tokens["id_token"],
                                                          login.client.client_id)
        elif action == "revoke":
            # RFC 7009: revoking the refresh token ends the grant, and its access tokens
            token = login.tokens.get("refresh_token") or login.tokens["access_token"]
            await backend.call(login.events, "POST", "/revoke", {"token": token},
                               auth=self.auth(login.client))
        await self.introspect_all(backend, login, login.events)
        return see_other(f"/logins/{login.id}#after")

    async def doc(self, request: web.Request) -> web.StreamResponse:
        """The repository's docs, as text (the landing page links them)."""
        name = request.match_info["name"]
        path = DOCS / name
        if path.parent != DOCS or path.suffix not in (".md", ".yaml") or not path.is_file():
            return views.not_found()
        return web.Response(text=path.read_text(encoding="utf-8"), content_type="text/plain",
                            charset="utf-8", headers={"X-Content-Type-Options": "nosniff"})

    async def screenshot(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = DOCS / "screenshots" / name
        if path.parent != DOCS / "screenshots" or path.suffix != ".png" or not path.is_file():
            return views.not_found()
        return web.FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})


async def favicon(request: web.Request) -> web.StreamResponse:
    """No icon, and no 404 in the browser's console for it."""
    return web.Response(status=204, headers={"Cache-Control": "public, max-age=86400"})


@web.middleware
async def not_found(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPNotFound:
        return views.not_found()
    except web.HTTPMethodNotAllowed:
        return views.not_found(405)
    return response


def merchant_app(config: Config, playground: Playground | None = None) -> web.Application:
    """The playground as an aiohttp application (``playground``: one built by the caller,
    whose recorder the proxy's app was given)."""
    play = playground or Playground(config)
    app = web.Application(middlewares=[not_found])

    async def session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            app[BACKEND_KEY] = Backend(config, play.client, http)
            yield

    app.cleanup_ctx.append(session)
    app.router.add_get("/", play.landing)
    app.router.add_get("/login", play.start)
    app.router.add_get("/pay", play.pay)
    app.router.add_get(urlsplit(play.redirect_uri).path, play.finish)
    app.router.add_get("/logins/{login_id}", play.show)
    app.router.add_post("/logins/{login_id}/{action:refresh|revoke|introspect}", play.act)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/docs/{name}", play.doc)
    app.router.add_get("/docs/screenshots/{name}", play.screenshot)
    native.add_routes(app, play)
    own_apps.routes(app, play)
    return app
