"""Merchant clients authenticating with private_key_jwt (RFC 7523)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
import pytest

from tests.flows.harness import ACR_A, APP_REDIRECT, JWT_CLIENT, JWT_CLIENT_KEY, World

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def assertion(aud: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": aud, "iat": now, "exp": now + 60,
              "jti": uuid.uuid4().hex, **overrides}
    pem = JWT_CLIENT_KEY.export_to_pem(private_key=True, password=None)
    return jwt.encode(claims, pem, algorithm="ES256", headers={"kid": "backend-1"})


async def exchange(world: World, signed: str) -> tuple[int, dict[str, Any]]:
    login = await world.proxy.login(client_id=JWT_CLIENT, scope="openid profile",
                                    acr_values=ACR_A)
    resp = await world.proxy.post("/token", {
        "grant_type": "authorization_code", "code": login.code, "redirect_uri": APP_REDIRECT,
        "code_verifier": login.verifier, "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    })
    body: dict[str, Any] = await resp.json()
    return resp.status, body


async def test_private_key_jwt_client(world: World) -> None:
    signed = assertion(world.proxy.issuer)
    status, body = await exchange(world, signed)
    assert status == 200, body
    assert body["access_token"].startswith("a2a_at_") and "refresh_token" not in body
    # RFC 7523 §3: a jti is used once
    status, body = await exchange(world, signed)
    assert (status, body["error"]) == (401, "invalid_client")
    status, body = await exchange(world, assertion(f"{world.proxy.issuer}/token"))
    assert status == 200


async def test_bad_assertions_are_invalid_client(world: World) -> None:
    issuer = world.proxy.issuer
    for bad in (
        assertion("https://other.example"),
        assertion(issuer, exp=int(time.time()) - 120),
        assertion(issuer, sub="someone-else"),
        assertion(issuer, exp=int(time.time()) + 3600),
        jwt.encode({"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": issuer,
                    "exp": int(time.time()) + 60, "jti": "x"}, "k" * 32, algorithm="HS256"),
    ):
        status, body = await exchange(world, bad)
        assert (status, body["error"]) == (401, "invalid_client"), body
    meta = await (await world.proxy.http.get(
        f"{issuer}/.well-known/openid-configuration")).json()
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]


def raw_assertion(aud: str, claim: str, value: str) -> str:
    """An assertion whose ``claim`` is the JSON text ``value`` as it is (NaN, 1e400...)."""
    now = int(time.time())
    claims = {"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": aud, "iat": now, "exp": now + 60,
              "jti": uuid.uuid4().hex}
    body = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in claims.items() if k != claim)
    payload = "{" + body + f', "{claim}": {value}' + "}"
    pem = JWT_CLIENT_KEY.export_to_pem(private_key=True, password=None)
    return jwt.api_jws.encode(payload.encode(), pem, algorithm="ES256",
                              headers={"kid": "backend-1", "typ": "JWT"})


# RFC 7519 §2: exp, iat, nbf are NumericDates, "A JSON numeric value"; RFC 8259 §6:
# "Infinity and NaN ... are not permitted"
NOT_DATES = {"NaN": "NaN", "Infinity": "Infinity", "1e400": "1e400", "huge int": "9" * 400,
             "true": "true", "string": json.dumps(str(int(time.time()) + 60)), "null": "null"}


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", list(NOT_DATES.values()), ids=list(NOT_DATES))
async def test_a_date_claim_that_is_not_a_finite_number_is_invalid_client(
    world: World, claim: str, value: str
) -> None:
    status, body = await exchange(world, raw_assertion(world.proxy.issuer, claim, value))
    assert (status, body["error"]) == (401, "invalid_client"), body
    assert value not in body["error_description"]
