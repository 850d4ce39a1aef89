"""Shared pieces of the security cases: a proxy with extra clients beside the world's."""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid
from typing import Any

import jwt
from jwcrypto import jwk

from proxy.config.settings import ClientSettings, Config, ResourceServer
from tests.flows.harness import APP_REDIRECT, Proxy, World, run_proxy
from tests.ports import free_port

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
HASHED = ("merchant-hashed", "hashed-secret-" + "h" * 24)
FAPI = "merchant-fapi"
RS_JWT = "ledger-api"
RSA_KEY = jwk.JWK.generate(kty="RSA", size=2048, kid="fapi-rsa")
EC_KEY = jwk.JWK.generate(kty="EC", crv="P-256", kid="fapi-ec")
RS_KEY = jwk.JWK.generate(kty="EC", crv="P-256", kid="ledger-1")


def public_jwks(*keys: jwk.JWK) -> dict[str, object]:
    return {"keys": [k.export(private_key=False, as_dict=True) for k in keys]}


def extra_clients(config: Config) -> Config:
    """The world's config plus: a client configured with its secret's SHA-256 only, a
    fapi2 client (private_key_jwt with an EC and an RSA key), and a resource server that
    authenticates with private_key_jwt."""
    clients = (
        ClientSettings(
            client_id=HASHED[0], type="confidential", redirect_uris=(APP_REDIRECT,),
            scopes=("openid", "profile"),
            client_secret_sha256=hashlib.sha256(HASHED[1].encode()).digest(),
        ),
        ClientSettings(
            client_id=FAPI, type="confidential", redirect_uris=(APP_REDIRECT,),
            scopes=("openid", "profile"), profile="fapi2",
            jwks=public_jwks(EC_KEY, RSA_KEY),
        ),
    )
    servers = (ResourceServer(client_id=RS_JWT, jwks=public_jwks(RS_KEY)),)
    return dataclasses.replace(
        config,
        clients=config.clients + clients,
        resource_servers=config.resource_servers + servers,
    )


async def proxy_with(world: World, config: Config) -> Proxy:
    """Another instance on the world's Redis, with ``config``."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = dataclasses.replace(config, issuer=issuer)
    for bank_id, bank in (("bank-a", world.bank_a), ("bank-b", world.bank_b)):
        for client in bank.clients.values():  # the sandbox banks know its callbacks too
            client.redirect_uris.append(f"{issuer}/callback/{bank_id}")
    await world.stack.enter_async_context(run_proxy(config, port))
    return Proxy(issuer, config, world.proxy.http)


def assertion(
    iss: str, aud: str | list[str], key: jwk.JWK, alg: str = "ES256", **overrides: Any
) -> str:
    now = int(time.time())
    claims = {"iss": iss, "sub": iss, "aud": aud, "iat": now, "exp": now + 60,
              "jti": uuid.uuid4().hex, **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    pem = key.export_to_pem(private_key=True, password=None)
    return jwt.encode(claims, pem, algorithm=alg, headers={"kid": key["kid"]})
