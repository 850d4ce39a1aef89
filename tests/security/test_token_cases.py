"""Hostile requests at /token, and client authentication.

Covered elsewhere (not repeated here):
- code reuse revokes what the first exchange issued —
  tests/flows/test_tokens.py::test_code_replay_is_refused_and_revokes_the_first_tokens
- unknown code, wrong verifier — tests/flows/test_tokens.py::test_unknown_code_and_wrong_verifier
- wrong secret, public client with a secret —
  tests/flows/test_tokens.py::test_confidential_client_authentication
- private_key_jwt with wrong aud, expired, wrong sub, too long, HS256, replayed jti —
  tests/flows/test_client_assertion.py
- GET instead of POST (405 JSON) — tests/flows/test_errors.py::test_framework_errors_are_json
- unsupported grant type, unknown client, JSON body —
  tests/flows/test_errors.py::test_token_endpoint_errors
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from proxy.config.settings import Lifetimes
from tests.flows.harness import (
    ACR_A,
    APP_REDIRECT,
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    JWT_CLIENT,
    JWT_CLIENT_KEY,
    PUBLIC,
    Proxy,
    World,
    WorldFactory,
    new_request,
)
from tests.security.cases import (
    ASSERTION_TYPE,
    EC_KEY,
    FAPI,
    HASHED,
    RSA_KEY,
    assertion,
    extra_clients,
    proxy_with,
)


async def error_of(resp: aiohttp.ClientResponse) -> tuple[int, str]:
    assert resp.content_type == "application/json"
    assert resp.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = await resp.json()
    assert "\r" not in body["error_description"] and "\n" not in body["error_description"]
    return resp.status, body["error"]


async def test_twenty_parallel_redemptions_issue_at_most_one_pair_and_revoke_it(
    world: World,
) -> None:
    """One consume wins; the other nineteen are replays, which revoke the grant (RFC 6749
    §4.1.2). Whether the winner still gets its pair depends on whether it read the grant
    before the first replay revoked it; either way no pair stays usable."""
    login = await world.proxy.login()
    results = await asyncio.gather(*(world.proxy.exchange(login) for _ in range(20)))
    issued = [await r.json() for r in results if r.status == 200]
    assert len(issued) <= 1
    for resp in results:
        if resp.status != 200:
            assert await error_of(resp) == (400, "invalid_grant")
    for pair in issued:
        assert await world.proxy.introspect(pair["access_token"]) == {"active": False}
        refreshed = await world.proxy.refresh(pair["refresh_token"])
        assert await error_of(refreshed) == (400, "invalid_grant")


async def test_expired_code(world_factory: WorldFactory) -> None:
    world: World = await world_factory(lifetimes=Lifetimes(authorization_code=1))
    login = await world.proxy.login()
    await asyncio.sleep(2.1)
    assert await error_of(await world.proxy.exchange(login)) == (400, "invalid_grant")


async def test_code_of_one_client_presented_by_another(world: World) -> None:
    login = await world.proxy.login()  # merchant-ios's code
    resp = await world.proxy.exchange(login, client_id=CONFIDENTIAL,
                                      client_secret=CONFIDENTIAL_SECRET)
    assert await error_of(resp) == (400, "invalid_grant")


async def test_redirect_uri_must_be_the_authorization_requests(world: World) -> None:
    login = await world.proxy.login()
    resp = await world.proxy.exchange(login, redirect_uri=APP_REDIRECT + "/other")
    assert await error_of(resp) == (400, "invalid_grant")


async def test_missing_verifier_and_grant_type(world: World) -> None:
    login = await world.proxy.login()
    form = {"grant_type": "authorization_code", "code": login.code,
            "redirect_uri": APP_REDIRECT, "client_id": PUBLIC}
    assert await error_of(await world.proxy.post("/token", form)) == (400, "invalid_request")
    del form["grant_type"]
    assert await error_of(await world.proxy.post("/token", form)) == (400, "invalid_request")


async def test_confidential_client_without_authentication(world: World) -> None:
    login = await world.proxy.login(client_id=CONFIDENTIAL)
    resp = await world.proxy.exchange(login, client_id=CONFIDENTIAL)
    assert await error_of(resp) == (401, "invalid_client")


async def test_two_authentication_methods_at_once(world: World) -> None:
    login = await world.proxy.login(client_id=CONFIDENTIAL)
    form = {"grant_type": "authorization_code", "code": login.code,
            "redirect_uri": APP_REDIRECT, "code_verifier": login.verifier,
            "client_id": CONFIDENTIAL, "client_secret": CONFIDENTIAL_SECRET}
    resp = await world.proxy.post("/token", form, auth=(CONFIDENTIAL, CONFIDENTIAL_SECRET))
    assert await error_of(resp) == (400, "invalid_request")


async def test_description_never_carries_line_breaks(world: World) -> None:
    resp = await world.proxy.post("/token", {"grant_type": "x\r\nSet-Cookie: a=b",
                                             "client_id": PUBLIC})
    assert await error_of(resp) == (400, "unsupported_grant_type")
    assert "Set-Cookie" not in resp.headers


async def jwt_exchange(proxy: Proxy, client_id: str, signed: str,
                       **request: str) -> aiohttp.ClientResponse:
    login = await proxy.login(client_id=client_id, scope="openid profile", acr_values=ACR_A,
                              **request)
    return await proxy.post("/token", {
        "grant_type": "authorization_code", "code": login.code, "redirect_uri": APP_REDIRECT,
        "code_verifier": login.verifier, "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    })


@pytest.mark.parametrize(("ahead", "status"), [(10, 200), (60, 401)])
async def test_assertion_iat_in_the_future(world: World, ahead: int, status: int) -> None:
    now = int(time.time())
    signed = assertion(JWT_CLIENT, world.proxy.issuer, JWT_CLIENT_KEY,
                       iat=now + ahead, exp=now + ahead + 60)
    resp = await jwt_exchange(world.proxy, JWT_CLIENT, signed)
    assert resp.status == status, await resp.text()


async def test_assertion_without_sub(world: World) -> None:
    signed = assertion(JWT_CLIENT, world.proxy.issuer, JWT_CLIENT_KEY, sub=None)
    assert await error_of(await jwt_exchange(world.proxy, JWT_CLIENT, signed)) == (
        401, "invalid_client")


async def test_secret_configured_as_its_hash(world: World) -> None:
    proxy = await proxy_with(world, extra_clients(world.proxy.config))
    login = await proxy.login(client_id=HASHED[0], scope="openid profile", acr_values=ACR_A)
    ok = await proxy.exchange(login, client_id=HASHED[0], client_secret=HASHED[1])
    assert ok.status == 200, await ok.text()
    login = await proxy.login(client_id=HASHED[0], scope="openid profile", acr_values=ACR_A)
    wrong = await proxy.exchange(login, client_id=HASHED[0], client_secret=HASHED[1] + "x")
    assert await error_of(wrong) == (401, "invalid_client")


async def fapi_push(proxy: Proxy, signed: str) -> aiohttp.ClientResponse:
    """A fapi2 client authenticates at /par (as it would at /token)."""
    _, form = new_request(client_id=FAPI, scope="openid profile", acr_values=ACR_A)
    return await proxy.post("/par", {**form, "client_assertion_type": ASSERTION_TYPE,
                                     "client_assertion": signed})


async def test_fapi2_client_authentication(world: World) -> None:
    proxy = await proxy_with(world, extra_clients(world.proxy.config))
    issuer = proxy.issuer
    assert (await fapi_push(proxy, assertion(FAPI, issuer, EC_KEY))).status == 201
    assert (await fapi_push(proxy, assertion(FAPI, issuer, RSA_KEY, "PS256"))).status == 201
    for refused in (
        # FAPI 2.0 Security Profile §5.4.1: PS256, ES256 or EdDSA; RS256 is not allowed
        assertion(FAPI, issuer, RSA_KEY, "RS256"),
        # §5.3.2.1: only the issuer, as a string, in aud
        assertion(FAPI, f"{issuer}/par", EC_KEY),
        assertion(FAPI, [issuer], EC_KEY),
    ):
        assert await error_of(await fapi_push(proxy, refused)) == (401, "invalid_client")
