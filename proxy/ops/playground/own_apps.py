"""The merchant's second app in the playground: it logs in through the first one, on the
same device, without the bank (App2App between the merchant's own apps, docs/app2app.md).

Demo Shop (``demo-app``, which may ``approve_for`` the second app) binds a device key to
its login at the code exchange: a challenge from ``POST /challenge``, signed by the
app's key (a phone keeps it in its keystore; here one per demo process). Then "Log in to
the second app" plays both apps: the second app's request (its PKCE challenge and
redirect URI, as its universal link would carry them), Demo Shop's approval at /token
(its refresh token and a fresh device-key JWT), and the second app redeeming the code it
is handed with its own ``code_verifier``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import jwt
from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from jwcrypto import jwk

from proxy.config.settings import ClientSettings, Config
from proxy.oauth.device_key import APPROVE, DEVICE_KEY_JWT, SETUP, TYP
from proxy.oauth.own_apps import APP2APP_GRANT
from proxy.ops.playground import views
from proxy.ops.playground.backend import Backend, Decoded
from proxy.ops.playground.trace import Hop

if TYPE_CHECKING:
    from proxy.ops.playground.app import Playground

SECOND_APP = "Demo Shop's second app"


@dataclass
class Approval:
    """One login of the second app through Demo Shop's: its hops and what it got."""

    id: str
    login_id: str  # Demo Shop's login that approved it
    state: str
    verifier: str
    hops: list[Hop] = field(default_factory=list)
    tokens: dict[str, Any] | None = None
    id_token: Decoded | None = None
    userinfo: Any = None
    error: Any = None


class DeviceKey:
    """Demo Shop's device key and the JWTs it signs (proxy.oauth.device_key)."""

    def __init__(self) -> None:
        self._key = jwk.JWK.generate(kty="EC", crv="P-256")
        self._signing = jwt.PyJWK(self._key.export(private_key=True, as_dict=True),
                                  algorithm="ES256")

    async def jwt(self, backend: Backend, hops: list[Hop], action: str) -> str | None:
        """A fresh challenge, signed for ``action``; None when /challenge refused."""
        status, answer = await backend.call(
            hops, "POST", "/challenge", {}, auth=backend.basic,
            note="a single-use challenge for the device-key JWT")
        if status != 200 or not isinstance(answer, dict):
            return None
        return jwt.encode(
            {"challenge": answer["challenge"], "iat": int(time.time()), "action": action},
            self._signing.key, algorithm="ES256",
            headers={"typ": TYP, "jwk": self._key.export(private_key=False, as_dict=True)})


def second_app(config: Config, client: ClientSettings) -> ClientSettings | None:
    """The first client Demo Shop may approve for, if any."""
    return next((c for c in config.clients if c.client_id in client.approve_for), None)


async def bind(key: DeviceKey, backend: Backend, hops: list[Hop], form: dict[str, str]) -> None:
    """Add the device-key JWT (action ``setup``) to Demo Shop's code exchange."""
    signed = await key.jwt(backend, hops, SETUP)
    if signed is not None:
        form[DEVICE_KEY_JWT] = signed


async def approve(key: DeviceKey, backend: Backend, second: ClientSettings, login_id: str,
                  refresh_token: str) -> tuple[Approval, str | None]:  # fmt: skip
    """The second app asks, Demo Shop approves: the approval and where the second app's
    code goes (its redirect URI), or None when the approval was refused."""
    approval = Approval(secrets.token_urlsafe(16), login_id, secrets.token_urlsafe(16),
                        secrets.token_urlsafe(48))
    signed = await key.jwt(backend, approval.hops, APPROVE)
    form = {"grant_type": APP2APP_GRANT, "refresh_token": refresh_token, "jwt": signed or "",
            "app2app_client_id": second.client_id,
            "app2app_redirect_uri": second.redirect_uris[0],
            "code_challenge": create_s256_code_challenge(approval.verifier),
            "code_challenge_method": "S256"}
    status, answer = await backend.call(
        approval.hops, "POST", "/token", form, auth=backend.basic,
        note="Demo Shop approves the second app's login with its device key")
    if status != 200 or not isinstance(answer, dict):
        approval.error = answer
        return approval, None
    return approval, f"{answer['redirect_to']}&{urlencode({'state': approval.state})}"


async def redeem(backend: Backend, second: ClientSettings, approval: Approval,
                 query: dict[str, str]) -> None:  # fmt: skip
    """The second app at its redirect URI: its code, redeemed with its own verifier."""
    if "code" not in query:
        approval.error = query
        return
    form = {"grant_type": "authorization_code", "code": query["code"],
            "redirect_uri": second.redirect_uris[0], "client_id": second.client_id,
            "code_verifier": approval.verifier}
    who = f"{SECOND_APP} → proxy"
    status, tokens = await backend.call(approval.hops, "POST", "/token", form, who=who)
    if status != 200 or not isinstance(tokens, dict):
        approval.error = tokens
        return
    approval.tokens = tokens
    approval.id_token = await backend.decode(tokens["id_token"], second.client_id)
    _, approval.userinfo = await backend.call(approval.hops, "GET", "/userinfo", who=who,
                                              bearer=tokens["access_token"])


def routes(app: web.Application, play: Playground) -> None:
    """GET /logins/{id}/second-app (start), the second app's redirect URI (finish) and
    GET /second-app/{id} (what it got)."""
    second = second_app(play.config, play.client)
    if second is None:
        return
    approvals: dict[str, Approval] = {}
    by_state: dict[str, str] = {}

    async def start(request: web.Request) -> web.StreamResponse:
        login = play.logins.get(request.match_info["login_id"])
        if login is None or login.tokens is None or "refresh_token" not in login.tokens:
            return views.unknown_login()
        approval, onward = await approve(play.device_key, play.backend(request), second,
                                         login.id, login.tokens["refresh_token"])
        approvals[approval.id] = approval
        if onward is None:
            return views.second_app_result(second, approval)
        by_state[approval.state] = approval.id
        raise web.HTTPFound(onward)

    async def finish(request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        approval = approvals.get(by_state.pop(query.get("state", ""), ""))
        if approval is None:
            return views.unknown_login()
        await redeem(play.backend(request), second, approval, query)
        raise web.HTTPSeeOther(f"/second-app/{approval.id}")

    async def show(request: web.Request) -> web.StreamResponse:
        approval = approvals.get(request.match_info["approval_id"])
        if approval is None:
            return views.unknown_login()
        return views.second_app_result(second, approval)

    app.router.add_get("/logins/{login_id}/second-app", start)
    app.router.add_get(urlsplit(second.redirect_uris[0]).path, finish)
    app.router.add_get("/second-app/{approval_id}", show)
