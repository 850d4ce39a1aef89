"""``app2app-proxy demo``: the proxy, the sandbox bank (with the sandbox session broker
beside it, for itsme) and a tiny merchant app on localhost, with the embedded store.
Nothing else to install.

The merchant app plays the part of a mobile app and its backend: the backend pushes
the authorization request (PKCE, and the user's login_hint and a binding_message for
the decoupled bank) to /par as a confidential client, the browser opens /authorize
with the request_uri; it receives the code on its redirect URI, redeems it and shows
what it got. Its code exchange binds a device key (the app's own, made at start), so its
login then approves the login of the merchant's second app (demo-shop) without the bank:
``/shop`` plays both apps of an App2App approval (docs/app2app.md).
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import aiohttp
import jwt
from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from jwcrypto import jwk

from federation.sandbox import SandboxBank, SandboxBroker, SandboxClient, serve_sandbox
from proxy.app import create_app
from proxy.config import load_config
from proxy.config.settings import Config
from proxy.model.tokens import new_value
from proxy.oauth.device_key import TYP
from proxy.oauth.own_apps import APP2APP_GRANT
from proxy.observability.logs import configure_logging
from proxy.ops.keys import generate_signing_key
from proxy.web.server import ProxyRunner

DEMO_ENV = ("TOKEN_ENCRYPTION_KEY", "SUBJECT_SALT", "SANDBOX_BANK_SECRET", "DEMO_API_SECRET",
            "DEMO_APP_SECRET")


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
    pending: dict[str, str] = {}  # state -> code_verifier

    auth = {"Authorization": aiohttp.encode_basic_auth(client.client_id,
                                                       client.client_secret or "")}
    # the app's device key (a phone keeps it in its keystore) and its last refresh token
    device_key = jwk.JWK.generate(kty="EC", crv="P-256")
    held: dict[str, str] = {}

    async def device_jwt(http: aiohttp.ClientSession, action: str) -> str:
        """A fresh challenge, signed with the device key (proxy.oauth.device_key)."""
        async with http.post(f"{config.issuer}/challenge", data={}, headers=auth) as resp:
            challenge = (await resp.json())["challenge"]
        private = jwt.PyJWK(device_key.export(private_key=True, as_dict=True), algorithm="ES256")
        return jwt.encode(
            {"challenge": challenge, "iat": int(time.time()), "action": action}, private.key,
            algorithm="ES256",
            headers={"typ": TYP, "jwk": device_key.export(private_key=False, as_dict=True)})

    async def start(request: web.Request) -> web.StreamResponse:
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        pending[state] = verifier
        form = {
            "response_type": "code", "client_id": client.client_id,
            "redirect_uri": redirect_uri, "scope": " ".join(client.scopes), "state": state,
            "nonce": secrets.token_urlsafe(16),
            # a decoupled bank needs to know who is logging in: named in a pushed request
            "login_hint": "alice@sandbox.example", "binding_message": "DEMO-1",
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        async with aiohttp.ClientSession() as http, http.post(
            f"{config.issuer}/par", data=form, headers=auth
        ) as resp:
            pushed = await resp.json()
        if resp.status != 201:
            body = html.escape(json.dumps(pushed, indent=2))
            return web.Response(text=f"<h1>Push failed</h1><pre>{body}</pre>",
                                content_type="text/html", status=502)
        query = urlencode({"client_id": client.client_id, "request_uri": pushed["request_uri"]})
        raise web.HTTPFound(f"{config.issuer}/authorize?{query}")

    async def finish(request: web.Request) -> web.StreamResponse:
        query = request.query
        verifier = pending.pop(query.get("state", ""), None)
        if "error" in query or verifier is None or "code" not in query:
            body = html.escape(json.dumps(dict(query), indent=2))
            return web.Response(text=f"<h1>Login failed</h1><pre>{body}</pre>",
                                content_type="text/html", status=400)
        async with aiohttp.ClientSession() as http:
            form = {"grant_type": "authorization_code", "code": query["code"],
                    "redirect_uri": redirect_uri, "client_id": client.client_id,
                    "code_verifier": verifier}
            if client.approve_for:
                form["x_app2app_device_key_jwt"] = await device_jwt(http, "setup")
            async with http.post(f"{config.issuer}/token", data=form, headers=auth) as resp:
                tokens = await resp.json()
            if "refresh_token" in tokens:
                held["refresh_token"] = tokens["refresh_token"]
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
            + "".join(f"<p><a href='/shop'>Log in to {html.escape(shop.client_id)} through "
                      "this app, without the bank</a></p>" for shop in shops[:1])
        )
        return web.Response(text=page, content_type="text/html")

    shops = [c for c in config.clients if c.client_id in client.approve_for]
    shop_pending: dict[str, str] = {}  # the shop's code_verifier, by its state

    async def shop_start(request: web.Request) -> web.StreamResponse:
        """The shop (App B) asks this app (App A) to approve its login: PKCE challenge and
        redirect URI, as its universal link would carry them; this app approves with its
        refresh token and a device-key JWT, and opens the shop's redirect URI."""
        shop = shops[0]
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        shop_pending[state] = verifier
        async with aiohttp.ClientSession() as http:
            form = {"grant_type": APP2APP_GRANT, "refresh_token": held.get("refresh_token", ""),
                    "jwt": await device_jwt(http, "approve"),
                    "app2app_client_id": shop.client_id,
                    "app2app_redirect_uri": shop.redirect_uris[0],
                    "code_challenge": create_s256_code_challenge(verifier)}
            async with http.post(f"{config.issuer}/token", data=form, headers=auth) as resp:
                answer = await resp.json()
        if resp.status != 200:
            body = html.escape(json.dumps(answer, indent=2))
            return web.Response(text=f"<h1>Approval refused</h1><pre>{body}</pre>",
                                content_type="text/html", status=400)
        raise web.HTTPFound(f"{answer['redirect_to']}&{urlencode({'state': state})}")

    async def shop_finish(request: web.Request) -> web.StreamResponse:
        """The shop receives its code and redeems it with its own verifier."""
        shop, query = shops[0], request.query
        verifier = shop_pending.pop(query.get("state", ""), None)
        if verifier is None or "code" not in query:
            return web.Response(text="<h1>Login failed</h1>", content_type="text/html",
                                status=400)
        async with aiohttp.ClientSession() as http:
            form = {"grant_type": "authorization_code", "code": query["code"],
                    "redirect_uri": shop.redirect_uris[0], "client_id": shop.client_id,
                    "code_verifier": verifier}
            async with http.post(f"{config.issuer}/token", data=form) as resp:
                tokens = await resp.json()
            headers = {"Authorization": f"Bearer {tokens.get('access_token', '')}"}
            async with http.get(f"{config.issuer}/userinfo", headers=headers) as resp:
                claims = await resp.json()
        id_token = jwt.decode(tokens.get("id_token", ""), options={"verify_signature": False})
        shown = {k: id_token.get(k) for k in ("sub", "aud", "acr", "amr", "auth_time")}
        names = html.escape(shop.client_id), html.escape(client.client_id)
        page = (f"<h1>{names[0]}: logged in through {names[1]}</h1><p>No bank was asked: "
                "the login of the first app approved this one.</p>"
                "<h2>Userinfo</h2><pre>" + html.escape(json.dumps(claims, indent=2))
                + "</pre><h2>ID token</h2><pre>" + html.escape(json.dumps(shown, indent=2))
                + "</pre><p><a href='/'>Log in again</a></p>")
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", start)
    app.router.add_get(urlsplit(redirect_uri).path, finish)
    if shops:
        app.router.add_get("/shop", shop_start)
        app.router.add_get(urlsplit(shops[0].redirect_uris[0]).path, shop_finish)
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
