"""The merchant's own apps in a test world: a wallet (App A, which approves and starts Native
SSO) and a shop (App B), both of the harness's sector, added by a reload; a device key
that signs device-key JWTs; the steps of an approval and of a Native SSO exchange."""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from jwcrypto import jwk

from proxy.config.settings import ClientSettings
from proxy.oauth.device_key import TYP
from proxy.oauth.own_apps import (
    APP2APP_GRANT,
    DEVICE_SECRET_TYPE,
    ID_TOKEN_TYPE,
    TOKEN_EXCHANGE,
)
from tests.flows.harness import ACR_A, APP_REDIRECT, Proxy, World

WALLET = "merchant-wallet"
SHOP = "merchant-shop"
SHOP_REDIRECT = "https://app.merchant.example/shop/callback"
SSO_SCOPE = "openid profile offline_access device_sso"


def own_apps(world: World, **wallet: Any) -> None:
    """Reload the world's proxy with the wallet and the shop (``wallet`` overrides the
    wallet's settings)."""
    config = world.proxy.config
    clients = [c for c in config.clients if c.client_id not in (WALLET, SHOP)]
    scopes = ("openid", "profile", "offline_access", "device_sso")
    world.reload(dataclasses.replace(config, clients=(
        *clients,
        ClientSettings(**{"client_id": WALLET, "type": "public", "redirect_uris": (APP_REDIRECT,),
                          "scopes": scopes, "approve_for": (SHOP,), "native_sso": True,
                          "default_acr": ACR_A, **wallet}),
        ClientSettings(client_id=SHOP, type="public", redirect_uris=(SHOP_REDIRECT,),
                       scopes=scopes, native_sso=True, default_acr=ACR_A),
    )))


@dataclass
class DeviceKey:
    """The wallet's device key (kept in the device's keystore)."""

    key: jwk.JWK
    alg: str

    @classmethod
    def generate(cls, alg: str = "ES256") -> DeviceKey:
        if alg == "ES256":
            return cls(jwk.JWK.generate(kty="EC", crv="P-256"), alg)
        return cls(jwk.JWK.generate(kty="RSA", size=2048), alg)

    def sign(self, challenge: str, action: str, *, header: dict[str, Any] | None = None,
             **claims: Any) -> str:  # fmt: skip
        body: dict[str, Any] = {"challenge": challenge, "iat": int(time.time()),
                                "action": action, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        headers = {"typ": TYP, "jwk": self.key.export(private_key=False, as_dict=True),
                   **(header or {})}
        private = jwt.PyJWK(self.key.export(private_key=True, as_dict=True), algorithm=self.alg)
        return jwt.encode(body, private.key, algorithm=self.alg, headers=headers)


async def challenge(proxy: Proxy, client_id: str = WALLET) -> str:
    resp = await proxy.post("/challenge", {"client_id": client_id})
    assert resp.status == 200, await resp.text()
    value: str = (await resp.json())["challenge"]
    return value


async def wallet_login(proxy: Proxy, key: DeviceKey | None, scope: str = SSO_SCOPE
                       ) -> dict[str, Any]:  # fmt: skip
    """The wallet logs in at the bank; its code exchange binds ``key`` (if given)."""
    login = await proxy.login(client_id=WALLET, scope=scope)
    extra = {}
    if key is not None:
        extra["x_app2app_device_key_jwt"] = key.sign(await challenge(proxy), "setup")
    resp = await proxy.exchange(login, client_id=WALLET, **extra)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


@dataclass
class ShopRequest:
    """What the shop sends the wallet in its universal link: PKCE challenge (it keeps the
    verifier) and its redirect URI."""

    verifier: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(48))
    redirect_uri: str = SHOP_REDIRECT

    @property
    def code_challenge(self) -> str:
        return create_s256_code_challenge(self.verifier)


def approval_form(wallet_refresh_token: str, device_jwt: str, request: ShopRequest,
                  **overrides: str | None) -> dict[str, str]:  # fmt: skip
    form: dict[str, str | None] = {
        "grant_type": APP2APP_GRANT, "client_id": WALLET,
        "refresh_token": wallet_refresh_token,
        "jwt": device_jwt, "app2app_client_id": SHOP,
        "app2app_redirect_uri": request.redirect_uri,
        "code_challenge": request.code_challenge, "code_challenge_method": "S256",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


async def approve(proxy: Proxy, tokens: dict[str, Any], key: DeviceKey,
                  request: ShopRequest, **overrides: str | None) -> Any:  # fmt: skip
    """The wallet approves the shop's request: the /token answer."""
    device_jwt = key.sign(await challenge(proxy), "approve")
    return await proxy.post("/token", approval_form(tokens["refresh_token"], device_jwt,
                                                    request, **overrides))


async def shop_redeems(proxy: Proxy, code: str, request: ShopRequest) -> Any:
    return await proxy.post("/token", {
        "grant_type": "authorization_code", "code": code, "client_id": SHOP,
        "redirect_uri": request.redirect_uri, "code_verifier": request.verifier})


def exchange_form(id_token: str, device_secret: str, client_id: str = SHOP,
                  **overrides: str | None) -> dict[str, str]:  # fmt: skip
    form: dict[str, str | None] = {
        "grant_type": TOKEN_EXCHANGE, "client_id": client_id,
        "subject_token": id_token, "subject_token_type": ID_TOKEN_TYPE,
        "actor_token": device_secret, "actor_token_type": DEVICE_SECRET_TYPE,
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}
