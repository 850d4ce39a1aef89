"""GET /gateway/check: a gateway's check of its caller's token (docs/gateways.md).

The proxy is called here as a gateway calls it; tests/flows/test_gateway_nginx.py puts a
real nginx in front of an API and logs in through it.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any

import aiohttp
import jwt

from proxy.config.settings import Lifetimes
from tests.flows.harness import (
    DPOP_CLIENT,
    PAY_AUDIENCE,
    PAY_CLIENT,
    PUBLIC,
    RS_BANK,
    RS_PAY,
    RS_PLAIN,
    DPoPKey,
    Proxy,
    World,
    WorldFactory,
)

API = "https://api.merchant.example"
ORIGINAL = {"X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "api.merchant.example", "X-Forwarded-Uri": "/orders/7?x=1"}


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def check(proxy: Proxy, authorization: str | None, *, rs: tuple[str, str] = RS_PLAIN,
                headers: Mapping[str, str] | None = None, method: str = "GET",
                path: str = "/gateway/check") -> aiohttp.ClientResponse:  # fmt: skip
    sent = {"Gateway-Authorization": basic(*rs), **ORIGINAL, **(headers or {})}
    if authorization is not None:
        sent["Authorization"] = authorization
    resp = await proxy.http.request(method, f"{proxy.issuer}{path}", headers=sent,
                                    allow_redirects=False)
    await resp.read()
    return resp


async def verified(proxy: Proxy, resp: aiohttp.ClientResponse, audience: str) -> dict[str, Any]:
    """The Gateway-JWT of a 200, checked as a service behind the gateway checks it."""
    assert resp.status == 200, await resp.text()
    token = resp.headers["Gateway-JWT"]
    jwks = await (await proxy.http.get(f"{proxy.issuer}/jwks")).json()
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    (key,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    claims: dict[str, Any] = jwt.decode(token, jwt.PyJWK(key).key, algorithms=[key["alg"]],
                                        audience=audience, issuer=proxy.issuer)
    return claims


async def error(resp: aiohttp.ClientResponse) -> tuple[int, str]:
    return resp.status, (await resp.json())["error"]


async def test_a_valid_bearer_token_gets_a_jwt_of_the_introspection_claims(world: World
                                                                          ) -> None:  # fmt: skip
    proxy = world.proxy
    tokens = await proxy.tokens()
    at = tokens["access_token"]
    resp = await check(proxy, f"Bearer {at}")
    claims = await verified(proxy, resp, RS_PLAIN[0])
    introspected = await proxy.introspect(at)
    for name in ("sub", "client_id", "scope", "acr", "bank_id", "authentication_level"):
        assert claims[name] == introspected[name], name
    assert claims["client_id"] == PUBLIC
    assert claims["exp"] <= introspected["exp"] and claims["exp"] - claims["iat"] <= 60
    assert claims["jti"] and "bank_access_token" not in claims and "active" not in claims
    # a gateway may reuse the answer for this token, a few seconds (RFC 9111 §3.5)
    assert resp.headers["Cache-Control"] == "max-age=5, s-maxage=5"
    assert resp.headers["Vary"] == "Authorization, DPoP"
    # the services' copy has the bank token only when the resource server may have it
    bank = await verified(proxy, await check(proxy, f"Bearer {at}", rs=RS_BANK), RS_BANK[0])
    assert bank["bank_access_token"] == (await proxy.introspect(at, rs=RS_BANK))[
        "bank_access_token"]


async def test_tokens_that_are_not_active_are_refused_with_the_bearer_challenge(
    world: World,
) -> None:
    proxy = world.proxy
    tokens = await proxy.tokens()
    no_token = await check(proxy, None)
    # RFC 6750 §3.1: no error code when the request had no authentication information
    assert no_token.status == 401 and "error=" not in no_token.headers["WWW-Authenticate"]
    assert no_token.headers["WWW-Authenticate"].startswith('Bearer realm="app2app-proxy"')
    for token in ("a2a_at_unknown.x", tokens["refresh_token"], "x" * 40):
        resp = await check(proxy, f"Bearer {token}")
        assert await error(resp) == (401, "invalid_token")
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
        assert "Gateway-JWT" not in resp.headers
        assert resp.headers["Cache-Control"] == "no-store"
    revoked = await proxy.post("/revoke", {"token": tokens["refresh_token"],
                                           "client_id": PUBLIC})
    assert revoked.status == 200
    assert await error(await check(proxy, f"Bearer {tokens['access_token']}")) == (
        401, "invalid_token")
    # another scheme, or none at all: the challenge without an error code (RFC 6750 §3.1),
    # never a 400 (which a gateway turns into an error of its own)
    for malformed in ("Basic abc", "Bearer", "Bearer  ", "DPoP", "a2a_at_x"):
        resp = await check(proxy, malformed)
        assert await error(resp) == (401, "invalid_token"), malformed
        assert "error=" not in resp.headers["WWW-Authenticate"], malformed


async def test_a_token_for_another_audience_is_refused(world: World) -> None:
    proxy = world.proxy
    login = await proxy.login(client_id=PAY_CLIENT)
    at = (await (await proxy.exchange(login, client_id=PAY_CLIENT)).json())["access_token"]
    assert await error(await check(proxy, f"Bearer {at}")) == (401, "invalid_token")
    claims = await verified(proxy, await check(proxy, f"Bearer {at}", rs=RS_PAY), RS_PAY[0])
    assert claims["client_id"] == PAY_CLIENT
    assert (await proxy.introspect(at, rs=RS_PAY))["aud"] == PAY_AUDIENCE


async def test_the_jwt_and_the_cache_never_outlive_the_access_token(
    world_factory: WorldFactory,
) -> None:
    world: World = await world_factory(lifetimes=Lifetimes(access_token=3))
    proxy = world.proxy
    at = (await proxy.tokens())["access_token"]
    resp = await check(proxy, f"Bearer {at}")
    claims = await verified(proxy, resp, RS_PLAIN[0])
    assert claims["exp"] == (await proxy.introspect(at))["exp"]
    max_age = int(resp.headers["Cache-Control"].split("=")[1].split(",")[0])
    assert 0 < max_age <= 2  # a second short of the token's end
    await asyncio.sleep(3.1)
    assert await error(await check(proxy, f"Bearer {at}")) == (401, "invalid_token")


async def test_the_gateway_authenticates_as_a_resource_server(world: World) -> None:
    """Its own failures are 400, never the 401 a gateway hands its caller."""
    proxy = world.proxy
    at = (await proxy.tokens())["access_token"]
    for credentials in ((RS_PLAIN[0], "wrong-" + "x" * 30), ("nobody", "y" * 32)):
        resp = await check(proxy, f"Bearer {at}", rs=credentials)
        assert await error(resp) == (400, "invalid_client")
        assert "WWW-Authenticate" not in resp.headers
    missing = await proxy.http.get(f"{proxy.issuer}/gateway/check",
                                   headers={"Authorization": f"Bearer {at}"})
    assert await error(missing) == (400, "invalid_client")
    malformed = await check(proxy, f"Bearer {at}", headers={"Gateway-Authorization": "Basic !"})
    assert await error(malformed) == (400, "invalid_client")


async def test_dpop_bound_tokens_need_a_proof_for_the_original_request(world: World) -> None:
    proxy = world.proxy
    key = DPoPKey.generate()
    at = (await proxy.dpop_tokens(key, client_id=DPOP_CLIENT))["access_token"]
    url = f"{API}/orders/7"

    # RFC 9449 §7.2: a DPoP-bound token sent as a bearer token is refused
    assert await error(await check(proxy, f"Bearer {at}")) == (401, "invalid_token")
    no_proof = await check(proxy, f"DPoP {at}")
    assert await error(no_proof) == (401, "invalid_dpop_proof")
    assert no_proof.headers["WWW-Authenticate"].startswith("DPoP ")

    async def with_proof(proof: str, **headers: str) -> aiohttp.ClientResponse:
        resp = await check(proxy, f"DPoP {at}", headers={"DPoP": proof, **headers})
        key.remember(resp)
        return resp

    # the server's nonce first (§9), then a proof of the original method and URI, ath
    key.nonce = None
    first = await with_proof(key.proof("GET", url, access_token=at))
    assert await error(first) == (401, "use_dpop_nonce")
    proof = key.proof("GET", url, access_token=at)
    ok = await with_proof(proof)
    claims = await verified(proxy, ok, RS_PLAIN[0])
    assert claims["cnf"] == {"jkt": key.jkt}
    assert ok.headers["Cache-Control"] == "no-store" and ok.headers["DPoP-Nonce"]
    # a proof is good once (jti), for its method and URI, with the token's hash
    assert await error(await with_proof(proof)) == (401, "invalid_dpop_proof")
    for other in (key.proof("POST", url, access_token=at),
                  key.proof("GET", f"{API}/orders/8", access_token=at),
                  key.proof("GET", url), key.proof("GET", url, access_token="other")):
        assert await error(await with_proof(other)) == (401, "invalid_dpop_proof")
    thief = DPoPKey.generate()
    thief.nonce = key.nonce
    stolen = await with_proof(thief.proof("GET", url, access_token=at))
    assert await error(stolen) == (401, "invalid_token")
    # the method comes from X-Forwarded-Method (nginx's check is a GET)
    posted = await with_proof(key.proof("POST", url, access_token=at),
                              **{"X-Forwarded-Method": "POST"})
    assert posted.status == 200
    # the original request must be named when a proof is checked
    bad = await with_proof(key.proof("GET", url, access_token=at),
                           **{"X-Forwarded-Uri": "orders"})
    assert await error(bad) == (400, "invalid_request")


async def test_envoy_appends_the_original_path_and_keeps_the_method(world: World) -> None:
    """Envoy's ext_authz HTTP service: path_prefix + the original path, the original
    method; no X-Forwarded-Uri or -Method."""
    proxy = world.proxy
    key = DPoPKey.generate()
    at = (await proxy.dpop_tokens(key))["access_token"]
    plain = {k: v for k, v in ORIGINAL.items()
             if k not in ("X-Forwarded-Method", "X-Forwarded-Uri")}
    for _ in range(2):  # the nonce, then the check
        proof = key.proof("DELETE", f"{API}/orders/7", access_token=at)
        resp = await proxy.http.delete(
            f"{proxy.issuer}/gateway/check/orders/7?x=1",
            headers={"Gateway-Authorization": basic(*RS_PLAIN), **plain,
                     "Authorization": f"DPoP {at}", "DPoP": proof})
        key.remember(resp)
    assert resp.status == 200, await resp.text()
    head = await check(proxy, f"Bearer {(await proxy.tokens())['access_token']}",
                       method="HEAD", path="/gateway/check/orders")
    assert head.status == 200 and head.headers["Gateway-JWT"]
    unknown = await proxy.http.get(f"{proxy.issuer}/gateway/checking")
    assert unknown.status == 404
