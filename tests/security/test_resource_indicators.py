"""Resource indicators (RFC 8707): audience-restricted tokens and invalid_target."""

from __future__ import annotations

import aiohttp
import pytest

from tests.flows.harness import (
    APP_REDIRECT,
    CAL_AUDIENCE,
    PAY_AUDIENCE,
    PAY_CLIENT,
    PUBLIC,
    RS_CAL,
    RS_PAY,
    RS_PLAIN,
    DPoPKey,
    Proxy,
    World,
    new_request,
    query_of,
)


async def test_a_token_is_active_only_for_its_audience(world: World) -> None:
    proxy = world.proxy
    tokens = await proxy.tokens(resource=CAL_AUDIENCE)
    at = tokens["access_token"]
    body = await proxy.introspect(at, rs=RS_CAL)
    assert body["active"] is True and body["aud"] == CAL_AUDIENCE
    assert await proxy.introspect(at, rs=RS_PAY) == {"active": False}
    assert await proxy.introspect(at, rs=RS_PLAIN) == {"active": False}
    # the refreshed access token keeps the audience
    pair = await (await proxy.refresh(tokens["refresh_token"])).json()
    assert (await proxy.introspect(pair["access_token"], rs=RS_CAL))["aud"] == CAL_AUDIENCE
    assert await proxy.introspect(pair["access_token"], rs=RS_PAY) == {"active": False}


async def test_without_a_resource_only_servers_without_audience_see_the_token(
    world: World,
) -> None:
    at = (await world.proxy.tokens())["access_token"]
    body = await world.proxy.introspect(at, rs=RS_PLAIN)
    assert body["active"] is True and "aud" not in body
    assert await world.proxy.introspect(at, rs=RS_CAL) == {"active": False}


async def test_default_resource(world: World) -> None:
    proxy = world.proxy
    login = await proxy.login(client_id=PAY_CLIENT)
    resp = await proxy.exchange(login, client_id=PAY_CLIENT)
    at = (await resp.json())["access_token"]
    assert (await proxy.introspect(at, rs=RS_PAY))["aud"] == PAY_AUDIENCE
    assert await proxy.introspect(at, rs=RS_PLAIN) == {"active": False}
    # a resource in the request wins over the default
    login = await proxy.login(client_id=PAY_CLIENT, resource=CAL_AUDIENCE)
    at = (await (await proxy.exchange(login, client_id=PAY_CLIENT)).json())["access_token"]
    assert (await proxy.introspect(at, rs=RS_CAL))["aud"] == CAL_AUDIENCE


BAD_RESOURCES = {
    "unknown": "https://unknown.merchant.example/",
    "fragment": CAL_AUDIENCE + "#part",
    "relative": "/calendar",
    "not a URI": "calendar api",
}


@pytest.mark.parametrize("resource", list(BAD_RESOURCES.values()), ids=list(BAD_RESOURCES))
async def test_invalid_target_is_redirected(world: World, resource: str) -> None:
    resp, login = await world.proxy.authorize(resource=resource)
    assert resp.status == 302
    location = resp.headers["Location"]
    assert location.startswith(APP_REDIRECT + "?")
    params = query_of(location)
    assert params["error"] == "invalid_target"
    assert (params["state"], params["iss"]) == (login.state, world.proxy.issuer)


async def test_invalid_target_at_par(world: World) -> None:
    _, form = new_request(resource=BAD_RESOURCES["unknown"])
    resp = await world.proxy.post("/par", form)
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_target"
    _, form = new_request(resource=CAL_AUDIENCE)
    pushed = await world.proxy.post("/par", form)
    assert pushed.status == 201, await pushed.text()


async def test_token_request_resource_must_match_the_grant(world: World) -> None:
    proxy = world.proxy
    login = await proxy.login(resource=CAL_AUDIENCE)
    wrong = await proxy.exchange(login, resource=PAY_AUDIENCE)
    assert wrong.status == 400 and (await wrong.json())["error"] == "invalid_target"
    login = await proxy.login(resource=CAL_AUDIENCE)
    ok = await proxy.exchange(login, resource=CAL_AUDIENCE)
    assert ok.status == 200, await ok.text()
    tokens = await ok.json()
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
               "client_id": PUBLIC}
    mismatch = await proxy.post("/token", {**refresh, "resource": PAY_AUDIENCE})
    assert (await mismatch.json())["error"] == "invalid_target"
    # the refused refresh did not use the refresh token up
    again = await proxy.post("/token", {**refresh, "resource": CAL_AUDIENCE})
    assert again.status == 200, await again.text()
    # no resource at all: a request naming one for a grant without one is refused too
    plain = await proxy.login()
    refused = await proxy.exchange(plain, resource=CAL_AUDIENCE)
    assert (await refused.json())["error"] == "invalid_target"


async def userinfo(proxy: Proxy, token: str, scheme: str = "Bearer",
                   proof: str | None = None) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    resp = await proxy.http.get(f"{proxy.issuer}/userinfo", headers=headers)
    await resp.read()
    return resp


async def test_a_token_for_an_api_is_refused_at_userinfo(world: World) -> None:
    """RFC 8707 §2: the token is "audience-restricted ... to the resource(s) indicated";
    the userinfo endpoint is not that resource: RFC 6750 §3.1 invalid_token, "invalid for
    other reasons", with the challenge."""
    proxy = world.proxy
    for tokens in (await proxy.tokens(resource=CAL_AUDIENCE),
                   await (await proxy.exchange(await proxy.login(client_id=PAY_CLIENT),
                                               client_id=PAY_CLIENT)).json()):
        resp = await userinfo(proxy, tokens["access_token"])
        assert resp.status == 401, await resp.text()
        assert (await resp.json())["error"] == "invalid_token"
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
        assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
    # a token issued without a resource is the userinfo endpoint's to serve
    plain = await proxy.tokens()
    assert (await userinfo(proxy, plain["access_token"])).status == 200


async def test_a_dpop_bound_token_for_an_api_is_refused_at_userinfo(world: World) -> None:
    proxy, key = world.proxy, DPoPKey.generate()
    at = (await proxy.dpop_tokens(key, resource=CAL_AUDIENCE))["access_token"]
    proof = key.proof("GET", f"{proxy.issuer}/userinfo", access_token=at)
    resp = await userinfo(proxy, at, "DPoP", proof)
    assert resp.status == 401, await resp.text()
    assert (await resp.json())["error"] == "invalid_token"
    assert resp.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')
