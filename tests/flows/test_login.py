"""The happy path, end to end, with each bank client authentication method."""

from __future__ import annotations

import jwt
import pytest

from tests.flows.harness import (
    ACR_A,
    ACR_B,
    PUBLIC,
    RS_BANK,
    World,
    WorldFactory,
)


async def verify_id_token(world: World, token: str, nonce: str | None) -> dict[str, object]:
    """Verify as a merchant app would: with the key the proxy publishes at /jwks."""
    jwks = await (await world.proxy.http.get(f"{world.proxy.issuer}/jwks")).json()
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, object] = jwt.decode(token, key.key, algorithms=["ES256"],
                                           audience=PUBLIC, issuer=world.proxy.issuer)
    assert claims.get("nonce") == nonce
    return claims


@pytest.mark.parametrize(
    "auth", ["client_secret_basic", "client_secret_post", "private_key_jwt"]
)
async def test_happy_path_with_each_bank_client_auth(world_factory: WorldFactory,
                                                     auth: str) -> None:
    world: World = await world_factory(auth_a=auth)
    login = await world.proxy.login(acr_values=ACR_A, login_hint="alice@example.com")
    assert login.params["state"] == login.state
    assert login.params["iss"] == world.proxy.issuer
    assert login.params["code"].startswith("a2a_ac_")

    bank_authz = world.bank_a.last("/authorize").query
    assert bank_authz["redirect_uri"] == f"{world.proxy.issuer}/callback/bank-a"
    assert bank_authz["code_challenge_method"] == "S256"
    assert bank_authz["acr_values"] == "urn:sandbox:loa:high"
    assert bank_authz["login_hint"] == "alice@example.com"
    assert bank_authz["state"] != login.state and bank_authz["nonce"] != login.nonce
    token_req = world.bank_a.last("/token")
    if auth == "client_secret_basic":
        assert token_req.headers["Authorization"].startswith("Basic ")
        assert "client_secret" not in token_req.form
    elif auth == "client_secret_post":
        assert token_req.form["client_secret"]
        assert "Authorization" not in token_req.headers
    else:
        assert token_req.form["client_assertion_type"] == (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")

    resp = await world.proxy.exchange(login)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("a2a_at_")
    assert body["refresh_token"].startswith("a2a_rt_")
    assert body["expires_in"] == 300
    claims = await verify_id_token(world, body["id_token"], login.nonce)
    assert claims["acr"] == ACR_A
    assert claims["name"] == "Alice Sandbox"
    assert claims["authentication_level"] == "sca"
    assert claims["amr"] and claims["auth_time"] and claims["at_hash"]
    sub = claims["sub"]
    assert sub != world.bank_a.user.sub  # pairwise

    info = await world.proxy.introspect(body["access_token"])
    assert info["active"] is True
    assert info["sub"] == sub and info["acr"] == ACR_A and info["bank_id"] == "bank-a"
    assert info["client_id"] == PUBLIC and info["iss"] == world.proxy.issuer
    assert info["authentication_level"] == "sca"
    assert "bank_access_token" not in info

    resp = await world.proxy.http.get(f"{world.proxy.issuer}/userinfo",
                                      headers={"Authorization": f"Bearer {body['access_token']}"})
    assert resp.status == 200
    assert (await resp.json())["sub"] == sub


async def test_two_banks_routed_by_acr_values(world: World) -> None:
    a = await world.proxy.tokens(acr_values=f"urn:unknown {ACR_A}")
    b = await world.proxy.tokens(acr_values=f"{ACR_B} {ACR_A}")
    ia = await world.proxy.introspect(a["access_token"], rs=RS_BANK)
    ib = await world.proxy.introspect(b["access_token"], rs=RS_BANK)
    assert (ia["bank_id"], ia["acr"]) == ("bank-a", ACR_A)
    assert (ib["bank_id"], ib["acr"]) == ("bank-b", ACR_B)
    assert world.bank_b.last("/authorize").query["client_id"] == "merchant-at-b"
    assert ia["bank_access_token"] != ib["bank_access_token"]


async def test_default_acr_when_none_requested(world: World) -> None:
    body = await world.proxy.tokens()
    assert (await world.proxy.introspect(body["access_token"]))["acr"] == ACR_A
    assert world.bank_a.last("/authorize").query["redirect_uri"].endswith("/callback/bank-a")
