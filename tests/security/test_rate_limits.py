"""Rate limits (``rate_limits:``): per source address and per claimed client, counted in
Redis and shared by every instance; a refusal is a 429 with Retry-After on the one error
path (JSON on API paths, an HTML page on /authorize)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
from aiohttp.test_utils import make_mocked_request
from jwcrypto import jwk

from proxy.config.settings import RateLimits, StoreSettings
from proxy.web.ratelimit import limit_of, source_address
from tests.conftest import RedisServer
from tests.flows.harness import (
    APP,
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    JWT_CLIENT,
    PUBLIC,
    RS_BANK,
    RS_PLAIN,
    Proxy,
    World,
    WorldFactory,
    run_proxy,
)
from tests.ports import free_port

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
BAD_GRANT = {"grant_type": "authorization_code", "code": "nope", "client_id": PUBLIC,
             "redirect_uri": "https://app.merchant.example/auth/callback",
             "code_verifier": "v" * 43}


async def limited(world: World, **limits: Any) -> Proxy:
    """Another instance of the world's proxy (same Redis, same issuer), with rate limits."""
    port = free_port()
    config = dataclasses.replace(world.proxy.config, rate_limits=RateLimits(**limits))
    await world.stack.enter_async_context(run_proxy(config, port))
    return Proxy(f"http://127.0.0.1:{port}", config, world.proxy.http)


async def assert_refused(resp: aiohttp.ClientResponse, window: int = 60) -> None:
    """RFC 6585 §4: 429 "MAY include a Retry-After header"; the OAuth error code is
    RFC 6749's temporarily_unavailable (there is no "rate limited" code)."""
    assert resp.status == 429, await resp.text()
    assert 1 <= int(resp.headers["Retry-After"]) <= window
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"].startswith("too many requests")


async def test_per_address_limit_on_token(world: World) -> None:
    proxy = await limited(world, per_address={"token": 3})
    for _ in range(3):
        resp = await proxy.post("/token", BAD_GRANT)
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"
    # every client from this address shares the count
    await assert_refused(await proxy.post("/token", {**BAD_GRANT, "client_id": CONFIDENTIAL}))
    # so do /par and /revoke, where clients authenticate too (their limit: token's)
    await assert_refused(await proxy.post("/revoke", {"token": "x", "client_id": PUBLIC}))
    await assert_refused(await proxy.post("/par", {"client_id": PUBLIC}))
    # endpoints of other groups are untouched
    for _ in range(5):
        resp, _ = await proxy.authorize()
        assert resp.status == 302
        assert (await proxy.introspect("a2a_at_unknown"))["active"] is False
    # framework errors pass through (405 on a limited path, 404)
    for path, status in (("/token", 405), ("/nope", 404)):
        resp = await proxy.http.get(f"{proxy.issuer}{path}")
        assert resp.status == status and (await resp.json())["error"] == "invalid_request"
    # the first instance has no limits, but it shares the Redis: it counts nothing
    assert (await world.proxy.post("/token", BAD_GRANT)).status == 400


async def test_per_client_limit_keys_on_the_claimed_client(world: World) -> None:
    proxy = await limited(world, per_client={"token": 2}, per_address={"token": 100})
    wrong = (CONFIDENTIAL, "not-the-secret")
    basic = {k: v for k, v in BAD_GRANT.items() if k != "client_id"}
    for _ in range(2):
        assert (await proxy.post("/token", basic, auth=wrong)).status == 401
    await assert_refused(await proxy.post("/token", basic, auth=wrong))
    # the same client by client_id in the form: the same counter
    form = {**BAD_GRANT, "client_id": CONFIDENTIAL, "client_secret": "guess"}
    await assert_refused(await proxy.post("/token", form))
    # another client from the same address has its own count
    for _ in range(2):
        assert (await proxy.post("/token", BAD_GRANT)).status == 400
    # unregistered ids get no counter at all
    for _ in range(4):
        assert (await proxy.post("/token", {**BAD_GRANT, "client_id": "nobody"})).status == 401


async def test_guesses_spread_over_token_par_and_revoke_share_one_count(world: World) -> None:
    """RFC 6749 §10.10: "The authorization server MUST prevent attackers from guessing
    ... client credentials." A client secret is checked at /token, /par and /revoke: an
    attacker who moves to another of them when one answers 429 gets no new allowance.
    (Before /revoke was limited, it answered 401 and 200 to wrong and right secrets
    forever while /token answered 429.)"""
    proxy = await limited(world, per_client={"token": 3}, per_address={"token": 100})
    wrong = (CONFIDENTIAL, "guess-" + "g" * 30)
    basic = {k: v for k, v in BAD_GRANT.items() if k != "client_id"}
    assert (await proxy.post("/token", basic, auth=wrong)).status == 401
    assert (await proxy.post("/par", {"response_type": "code"}, auth=wrong)).status == 401
    assert (await proxy.post("/revoke", {"token": "x"}, auth=wrong)).status == 401
    for path, form in (("/revoke", {"token": "x"}), ("/par", {"response_type": "code"}),
                       ("/token", basic)):  # fmt: skip
        await assert_refused(await proxy.post(path, form, auth=wrong))
        # the right secret is refused alike: a 429 confirms no guess
        await assert_refused(await proxy.post(path, form, auth=(CONFIDENTIAL,
                                                                CONFIDENTIAL_SECRET)))
    # the same client by client_id and client_secret in the form: the same count
    form = {"token": "x", "client_id": CONFIDENTIAL, "client_secret": CONFIDENTIAL_SECRET}
    await assert_refused(await proxy.post("/revoke", form))
    # another client keeps its own count
    assert (await proxy.post("/revoke", {"token": "x", "client_id": PUBLIC})).status == 200


async def test_challenges_count_with_token_par_and_revoke(world: World) -> None:
    """POST /challenge authenticates its client like /token: its requests join the one
    shared count, so challenges neither escape the limit nor give guesses a fresh one."""
    proxy = await limited(world, per_client={"token": 2})
    assert (await proxy.post("/challenge", {"client_id": PUBLIC})).status == 400  # counted
    assert (await proxy.post("/revoke", {"token": "x", "client_id": PUBLIC})).status == 200
    # /challenge is left out: it takes token's limit, on the count the others made
    await assert_refused(await proxy.post("/challenge", {"client_id": PUBLIC}))
    await assert_refused(await proxy.post("/token", BAD_GRANT))


async def test_each_endpoint_keeps_its_own_limit_on_the_shared_count(world: World) -> None:
    """Named limits stay each endpoint's own; the count they apply to is shared."""
    proxy = await limited(world, per_client={"token": 2, "revoke": 4})
    form = {"token": "x", "client_id": PUBLIC}
    for _ in range(2):
        assert (await proxy.post("/revoke", form)).status == 200
    await assert_refused(await proxy.post("/token", BAD_GRANT))  # 3 > 2
    assert (await proxy.post("/revoke", form)).status == 200  # 4 <= 4
    await assert_refused(await proxy.post("/revoke", form))  # 5 > 4
    # /par is left out: it takes the smallest limit given to the others (2)
    await assert_refused(await proxy.post("/par", {"client_id": PUBLIC}))


def test_limit_of() -> None:
    assert limit_of({}, "revoke") is None
    assert limit_of({"token": 30, "par": 10}, "revoke") == 10
    assert limit_of({"token": 30, "par": 10}, "token") == 30
    assert limit_of({"revoke": 5}, "token") == 5
    # other groups lend nothing
    assert limit_of({"introspect": 600, "authorize": 60}, "revoke") is None
    assert limit_of({"token": 30}, "introspect") is None
    assert limit_of({"token": 30}, "authorize") is None


async def test_per_client_limit_reads_the_assertion_issuer_unverified(world: World) -> None:
    proxy = await limited(world, per_client={"token": 1})
    forged = jwk.JWK.generate(kty="EC", crv="P-256").export_to_pem(private_key=True,
                                                                    password=None)
    now = int(time.time())

    def assertion() -> str:
        claims = {"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": world.proxy.issuer,
                  "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, forged, algorithm="ES256")

    form = {**BAD_GRANT, "client_assertion_type": ASSERTION_TYPE}
    del form["client_id"]
    assert (await proxy.post("/token", {**form, "client_assertion": assertion()})).status == 401
    await assert_refused(await proxy.post("/token", {**form, "client_assertion": assertion()}))


async def test_the_handler_still_reads_the_form(world: World) -> None:
    """The middleware reads the form for the client id; aiohttp caches request.post(),
    so the handler sees the same parameters."""
    proxy = await limited(world, per_client={"token": 5, "par": 5})
    login = await world.proxy.login()
    resp = await proxy.exchange(login)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["access_token"].startswith("a2a_at_")
    resp = await proxy.post("/par", {"client_id": PUBLIC, "response_type": "code"})
    assert resp.status == 400 and "client_id" not in (await resp.json())["error_description"]


async def test_authorize_over_the_limit_is_an_html_page(world: World) -> None:
    proxy = await limited(world, per_address={"authorize": 2})
    for _ in range(2):
        resp, _ = await proxy.authorize()
        assert resp.status == 302
    resp, _ = await proxy.authorize()
    assert resp.status == 429 and resp.content_type == "text/html"
    assert "Location" not in resp.headers  # never a redirect before the client is checked
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert "temporarily_unavailable" in await resp.text()
    # browser-less App2App counts as authorize, and answers JSON
    resp, _ = await proxy.native()
    await assert_refused(resp)


async def test_picks_count_under_the_authorize_limits(world: World) -> None:
    """A pick starts a bank login as /authorize does: the picker's links and the
    browser-less prompt's answers count on the same per-address counter."""
    proxy = await limited(world, per_address={"authorize": 4})
    first, _ = await proxy.authorize(client_id=APP)  # 1
    second, _ = await proxy.authorize(client_id=APP)  # 2
    # (the links name the issuer, the first instance: sent to this one instead)
    links = [re.findall(r'href="([^"]+/bank-a)"', await r.text())[0].replace(
        proxy.config.issuer, proxy.issuer) for r in (first, second)]
    assert (await proxy.http.get(links[0], allow_redirects=False)).status == 302  # 3
    prompt, _ = await proxy.native()  # 4
    prompt_id = (await prompt.json())["id"]
    refused = await proxy.http.get(links[1], allow_redirects=False)
    assert refused.status == 429 and refused.content_type == "text/html"
    assert "Location" not in refused.headers
    await assert_refused(await proxy.post("/native/authorize/pick",
                                          {"id": prompt_id, "bank": "bank-a"}))


async def test_introspect_limited_per_resource_server(world: World) -> None:
    proxy = await limited(world, per_client={"introspect": 2})
    for _ in range(2):
        assert (await proxy.introspect("a2a_at_unknown"))["active"] is False
    await assert_refused(await proxy.post("/introspect", {"token": "x"}, auth=RS_PLAIN))
    assert (await proxy.introspect("a2a_at_unknown", rs=RS_BANK))["active"] is False


async def test_gateway_checks_count_with_the_resource_servers_introspections(world: World
                                                                             ) -> None:  # fmt: skip
    """A gateway authenticates as a resource server (Gateway-Authorization): its checks
    and that server's introspections are one count (docs/gateways.md)."""
    proxy = await limited(world, per_client={"introspect": 2})

    async def check(rs: tuple[str, str]) -> aiohttp.ClientResponse:
        resp = await proxy.http.get(f"{proxy.issuer}/gateway/check", headers={
            "Gateway-Authorization": aiohttp.encode_basic_auth(*rs),
            "Authorization": "Bearer a2a_at_unknown.x"})
        await resp.read()
        return resp

    assert (await check(RS_PLAIN)).status == 401
    assert (await proxy.introspect("a2a_at_unknown"))["active"] is False
    await assert_refused(await check(RS_PLAIN))
    await assert_refused(await proxy.post("/introspect", {"token": "x"}, auth=RS_PLAIN))
    assert (await check(RS_BANK)).status == 401


async def test_counts_are_shared_across_instances(world: World) -> None:
    first = await limited(world, per_address={"token": 2})
    second = await limited(world, per_address={"token": 2})
    assert (await first.post("/token", BAD_GRANT)).status == 400
    assert (await second.post("/token", BAD_GRANT)).status == 400
    await assert_refused(await first.post("/token", BAD_GRANT))
    await assert_refused(await second.post("/token", BAD_GRANT))


async def test_window_resets(world: World) -> None:
    proxy = await limited(world, window=1, per_address={"token": 1})
    assert (await proxy.post("/token", BAD_GRANT)).status == 400
    refused = await proxy.post("/token", BAD_GRANT)
    await assert_refused(refused, window=1)
    # hammering while refused does not push the reset further away
    await assert_refused(await proxy.post("/token", BAD_GRANT), window=1)
    await asyncio.sleep(int(refused.headers["Retry-After"]) + 0.1)
    assert (await proxy.post("/token", BAD_GRANT)).status == 400


async def test_forwarded_for_is_ignored_unless_trusted(world: World) -> None:
    untrusted = await limited(world, per_address={"token": 1})
    xff = {"X-Forwarded-For": "198.51.100.1"}
    assert (await untrusted.post("/token", BAD_GRANT, headers=xff)).status == 400
    other = {"X-Forwarded-For": "198.51.100.2"}
    await assert_refused(await untrusted.post("/token", BAD_GRANT, headers=other))

    trusted = await limited(world, per_address={"par": 1}, trust_forwarded_for=True)
    form = {"client_id": PUBLIC}
    assert (await trusted.post("/par", form, headers=xff)).status == 400
    assert (await trusted.post("/par", form, headers=other)).status == 400
    # only the last hop counts: what our reverse proxy appended; earlier hops are forged
    forged = {"X-Forwarded-For": "203.0.113.9, 198.51.100.2"}
    await assert_refused(await trusted.post("/par", form, headers=forged))


def test_source_address() -> None:
    def address(remote: str, xff: str | None = None, trusted: bool = True) -> str:
        headers = {"X-Forwarded-For": xff} if xff is not None else {}
        request = make_mocked_request("POST", "/token", headers=headers)
        return source_address(request.clone(remote=remote), trusted)

    assert address("192.0.2.1") == "192.0.2.1"
    assert address("192.0.2.1", "198.51.100.7", trusted=False) == "192.0.2.1"
    assert address("192.0.2.1", "10.0.0.1,  198.51.100.7 ") == "198.51.100.7"
    assert address("192.0.2.1", " , ") == "192.0.2.1"
    # one IPv6 host holds a /64: count it as one
    assert address("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert address("::ffff:192.0.2.1") == "192.0.2.1"


async def test_store_down_is_a_503(
    world_factory: WorldFactory, redis_server_factory: Callable[[], RedisServer]
) -> None:
    server = redis_server_factory()
    world: World = await world_factory(store=StoreSettings(url=server.url, prefix="t:"))
    proxy = await limited(world, per_address={"token": 5})
    assert (await proxy.post("/token", BAD_GRANT)).status == 400
    server.stop()
    resp = await proxy.post("/token", BAD_GRANT)
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"] == "temporarily_unavailable"
