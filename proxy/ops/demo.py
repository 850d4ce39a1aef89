"""``app2app-proxy demo``: the proxy, the sandbox bank (with the sandbox session broker
beside it, for itsme) and a tiny merchant app on localhost, with the embedded store.
Nothing else to install.

The merchant app plays the part of a mobile app and its backend: the backend pushes
the authorization request (PKCE, and the user's login_hint and a binding_message for
the decoupled bank) to /par as a confidential client, the browser opens /authorize
with the request_uri; it receives the code on its redirect URI, redeems it and shows
what it got.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from federation.sandbox import SandboxBank, SandboxBroker, SandboxClient, serve_sandbox
from proxy.app import create_app
from proxy.config import load_config
from proxy.config.settings import ClientSettings, Config
from proxy.model.tokens import new_value
from proxy.observability.logs import configure_logging
from proxy.ops.keys import generate_signing_key
from proxy.web.server import ProxyRunner

DEMO_ENV = ("TOKEN_ENCRYPTION_KEY", "SUBJECT_SALT", "SANDBOX_BANK_SECRET", "DEMO_API_SECRET",
            "DEMO_APP_SECRET")
# the pay button: the sandbox user's NNIN and phone (SandboxUser), and the payment
PAY_CLIENT = "demo-pay"
PAY_ACR = "urn:merchant:acr:bankid"
PAY_NNIN = "12345678910"
PAY_DEVICE = base64.urlsafe_b64encode(json.dumps(
    {"p": "ios", "ma": "Apple", "mo": "iPhone11,2"}).encode()).rstrip(b"=").decode()
PAYMENT = {"type": "payment_initiation", "creditorName": "Scrooge McDuck",
           "instructedAmount": {"currency": "NOK", "amount": "123.45"}}


def _prepare(config_path: Path) -> None:
    """Generate what a fresh clone lacks: a signing key file and per-run secrets."""
    key_file = config_path.parent / "keys" / "signing.jwk"
    if not key_file.exists():
        key_file.parent.mkdir(exist_ok=True)
        key_file.write_text(generate_signing_key("ES256").export(private_key=True))
        key_file.chmod(0o600)
        print(f"demo: generated a signing key in {key_file}")
    for name in DEMO_ENV:
        os.environ.setdefault(name, new_value())  # 32 random bytes, base64url


def _sandbox_for(config: Config) -> SandboxBank:
    """The sandbox bank every bank of the first bank's issuer logs in at: one client per
    bank client_id, with the callback of each bank that uses it."""
    issuer = config.banks[0].issuer
    banks = [b for b in config.banks if b.issuer == issuer]
    clients: dict[str, SandboxClient] = {}
    for b in banks:
        client = clients.setdefault(b.client_id, SandboxClient(
            client_id=b.client_id, redirect_uris=[], auth_method=b.client_auth,
            secret=b.client_secret,
        ))  # fmt: skip
        client.redirect_uris.append(f"{config.issuer}/callback/{b.id}")
    sandbox = SandboxBank(issuer, clients.values(), auto_approve=False)
    # a decoupled bank shows its "app" page (the deep link) in the demo
    sandbox.ciba_deep_link = any(b.kind == "ciba" for b in banks)
    # a payment that falls back from BankID to the redirect login goes along
    sandbox.rar_types = tuple(t.name for t in config.authorization_details_types)
    return sandbox


def _broker_for(config: Config) -> SandboxBroker | None:
    """The sandbox session broker, beside the sandbox bank, for the session banks whose
    API is there: one client per client_id, every such bank's callback allowed. The
    itsme app shows Approve / Deny."""
    origin = config.banks[0].issuer.rstrip("/")
    banks = [b for b in config.banks
             if b.session is not None and b.session.api.startswith(origin + "/")]
    if not banks:
        return None
    clients = {b.client_id: SandboxClient(b.client_id, [], b.client_auth,
                                          secret=b.client_secret) for b in banks}
    broker = SandboxBroker(origin, clients.values(),
                           redirect_urls=[f"{config.issuer}/callback/{b.id}" for b in banks])
    broker.decision = None
    return broker


def merchant_app(config: Config) -> web.Application:
    client = config.clients[0]
    redirect_uri = client.redirect_uris[0]
    pay = next((c for c in config.clients if c.client_id == PAY_CLIENT), None)
    pending: dict[str, tuple[str, ClientSettings]] = {}  # state -> code_verifier, client

    def auth(who: ClientSettings) -> dict[str, str]:
        return {"Authorization": aiohttp.encode_basic_auth(who.client_id,
                                                           who.client_secret or "")}

    async def push(who: ClientSettings, extra: dict[str, str]) -> web.StreamResponse:
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        pending[state] = (verifier, who)
        form = {
            "response_type": "code", "client_id": who.client_id,
            "redirect_uri": redirect_uri, "scope": " ".join(who.scopes), "state": state,
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256", **extra,
        }
        async with aiohttp.ClientSession() as http, http.post(
            f"{config.issuer}/par", data=form, headers=auth(who)
        ) as resp:
            pushed = await resp.json()
        if resp.status != 201:
            body = html.escape(json.dumps(pushed, indent=2))
            return web.Response(text=f"<h1>Push failed</h1><pre>{body}</pre>",
                                content_type="text/html", status=502)
        query = urlencode({"client_id": who.client_id, "request_uri": pushed["request_uri"]})
        raise web.HTTPFound(f"{config.issuer}/authorize?{query}")

    async def home(request: web.Request) -> web.StreamResponse:
        buttons = "<p><a href='/login'>Log in with your bank</a></p>"
        if pay is not None:
            buttons += ("<p><a href='/pay'>Pay 123.45 NOK to Scrooge McDuck with BankID"
                        "</a></p>")
        return web.Response(text=f"<h1>Demo merchant</h1>{buttons}", content_type="text/html")

    async def start(request: web.Request) -> web.StreamResponse:
        # a decoupled bank needs to know who is logging in: named in a pushed request
        return await push(client, {"login_hint": "alice@sandbox.example",
                                   "binding_message": "DEMO-1"})

    async def start_payment(request: web.Request) -> web.StreamResponse:
        # BankID with biometrics: the user's NNIN and phone, and the payment to approve
        assert pay is not None
        payment = {**PAYMENT, "endToEndIdentification": f"demo-{secrets.token_hex(4)}"}
        return await push(pay, {"acr_values": PAY_ACR, "login_hint": PAY_NNIN,
                                "device_info": PAY_DEVICE,
                                "authorization_details": json.dumps([payment])})

    async def finish(request: web.Request) -> web.StreamResponse:
        query = request.query
        waiting = pending.pop(query.get("state", ""), None)
        if "error" in query or waiting is None or "code" not in query:
            body = html.escape(json.dumps(dict(query), indent=2))
            return web.Response(text=f"<h1>Login failed</h1><pre>{body}</pre>",
                                content_type="text/html", status=400)
        verifier, who = waiting
        async with aiohttp.ClientSession() as http:
            form = {"grant_type": "authorization_code", "code": query["code"],
                    "redirect_uri": redirect_uri, "client_id": who.client_id,
                    "code_verifier": verifier}
            async with http.post(f"{config.issuer}/token", data=form, headers=auth(who)) as resp:
                tokens = await resp.json()
            headers = {"Authorization": f"Bearer {tokens.get('access_token', '')}"}
            async with http.get(f"{config.issuer}/userinfo", headers=headers) as resp:
                claims = await resp.json()
        shown = {k: (v[:16] + "…" if k.endswith("token") else v) for k, v in tokens.items()}
        page = (
            "<h1>Logged in through the sandbox bank</h1><h2>Userinfo</h2><pre>"
            + html.escape(json.dumps(claims, indent=2))
            + "</pre><h2>Token response (shortened)</h2><pre>"
            + html.escape(json.dumps(shown, indent=2))
            + "</pre><p><a href='/'>Log in again</a></p>"
        )
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", home)
    app.router.add_get("/login", start)
    app.router.add_get("/pay", start_payment)
    app.router.add_get(urlsplit(redirect_uri).path, finish)
    return app


@asynccontextmanager
async def demo_servers(config: Config) -> AsyncIterator[str]:
    """Serve the sandbox bank, the proxy and the merchant app at the addresses the config
    names; yields the URL that starts a login."""
    bank_url = urlsplit(config.banks[0].issuer)
    app_url = urlsplit(config.clients[0].redirect_uris[0])
    async with serve_sandbox(_sandbox_for(config), bank_url.hostname or "127.0.0.1",
                             bank_url.port or 80, broker=_broker_for(config)):
        runners = []
        try:
            for app, host, port in (
                (create_app(config), config.listen.host, config.listen.port),
                (merchant_app(config), app_url.hostname or "127.0.0.1", app_url.port or 80),
            ):
                runner = ProxyRunner(app)  # the timeouts of serve's defaults
                runners.append(runner)
                await runner.setup()
                await web.TCPSite(runner, host, port).start()
            yield f"{app_url.scheme}://{app_url.netloc}/"
        finally:
            for runner in runners:
                await runner.cleanup()


async def _serve(config: Config) -> None:
    configure_logging("info")
    async with demo_servers(config) as start_url:
        print(f"\n  Open {start_url} to log in through the sandbox bank "
              f"(proxy at {config.issuer}). Ctrl-C stops.\n", flush=True)
        await asyncio.Event().wait()


def run_demo(config_file: str) -> int:
    path = Path(config_file).resolve()
    _prepare(path)
    config = load_config(path)
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        pass
    return 0
