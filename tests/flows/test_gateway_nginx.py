"""A real nginx in front of an API, checking each call with /gateway/check, configured as
docs/gateways.md says: after real logins, calls through it with valid, expired, revoked,
wrong-audience and DPoP-bound tokens; the API sees the JWT only when the call is allowed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
from aiohttp import web

from proxy.config.settings import Lifetimes
from tests.flows.harness import (
    DPOP_CLIENT,
    PAY_CLIENT,
    PUBLIC,
    RS_BANK,
    RS_PLAIN,
    DPoPKey,
    World,
    WorldFactory,
)
from tests.flows.nginx import gateway_config, running_nginx
from tests.ports import free_port


@dataclass
class Api:
    """The API behind the gateway: answers 200 and keeps what each call carried."""

    port: int
    seen: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append({"path": request.path_qs, "method": request.method,
                          **{k.lower(): v for k, v in request.headers.items()}})
        return web.json_response({"ok": True})


@asynccontextmanager
async def api_server() -> AsyncIterator[Api]:
    api = Api(free_port())
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", api.port).start()
    try:
        yield api
    finally:
        await runner.cleanup()


@asynccontextmanager
async def gateway(world: World, api: Api, folder: Path, credentials: tuple[str, str]
                  ) -> AsyncIterator[str]:  # fmt: skip
    """nginx for the resource server ``credentials``, in front of ``api``: its base URL."""
    port = free_port()
    proxy_port = int(urlsplit(world.proxy.issuer).port or 0)
    config = gateway_config(folder, port=port, proxy_port=proxy_port, api_port=api.port,
                            credentials=credentials)
    async with running_nginx(config, port):
        yield f"http://127.0.0.1:{port}"


async def jwt_claims(world: World, token: str, audience: str) -> dict[str, Any]:
    proxy = world.proxy
    jwks = await (await proxy.http.get(f"{proxy.issuer}/jwks")).json()
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    (key,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    claims: dict[str, Any] = jwt.decode(token, jwt.PyJWK(key).key, algorithms=[key["alg"]],
                                        audience=audience, issuer=proxy.issuer)
    return claims


async def call(http: aiohttp.ClientSession, url: str, authorization: str,
               method: str = "GET", **headers: str) -> aiohttp.ClientResponse:  # fmt: skip
    resp = await http.request(method, url, headers={"Authorization": authorization, **headers})
    await resp.read()
    return resp


async def test_nginx_lets_through_only_what_the_proxy_allows(
    world_factory: WorldFactory, tmp_path: Path,
) -> None:
    world: World = await world_factory(lifetimes=Lifetimes(access_token=4))
    proxy = world.proxy
    http = proxy.http
    async with api_server() as api, gateway(world, api, tmp_path / "orders", RS_PLAIN) as orders:
        # a valid token: the API gets the JWT in its place, and nothing of DPoP
        tokens = await proxy.tokens()
        at = tokens["access_token"]
        resp = await call(http, f"{orders}/orders/7?page=2", f"Bearer {at}")
        assert resp.status == 200, await resp.text()
        (seen,) = api.seen
        assert seen["path"] == "/orders/7?page=2"
        scheme, _, token = seen["authorization"].partition(" ")
        assert scheme == "Bearer" and token != at
        claims = await jwt_claims(world, token, RS_PLAIN[0])
        assert claims["client_id"] == PUBLIC and "bank_access_token" not in claims
        assert claims["sub"] == (await proxy.introspect(at))["sub"]
        # the check is cached per token: the same JWT again, for another path and method
        again = await call(http, f"{orders}/orders/8", f"Bearer {at}", "POST")
        assert again.status == 200
        assert api.seen[-1]["authorization"] == seen["authorization"]

        # revoked, unknown, another API's token: 401 with the Bearer challenge, the API
        # never called
        revoked = (await proxy.tokens())["access_token"]
        assert (await proxy.post("/revoke", {"token": revoked, "client_id": PUBLIC,
                                             "token_type_hint": "access_token"})).status == 200
        login = await proxy.login(client_id=PAY_CLIENT)
        pay = (await (await proxy.exchange(login, client_id=PAY_CLIENT)).json())[
            "access_token"]
        before = len(api.seen)
        for refused in (revoked, "a2a_at_unknown.x", pay, tokens["refresh_token"]):
            resp = await call(http, f"{orders}/orders/7", f"Bearer {refused}")
            assert resp.status == 401
            assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
        no_token = await http.get(f"{orders}/orders/7")
        assert no_token.status == 401
        assert no_token.headers["WWW-Authenticate"].startswith("Bearer realm=")
        # another scheme is the caller's mistake: 401, never the 500 of a gateway error
        assert (await call(http, f"{orders}/orders/7", "Basic b3JkZXJzOng=")).status == 401
        assert len(api.seen) == before

        # a DPoP-bound token: refused as Bearer and without a proof; with a proof for the
        # request nginx forwards (and the nonce the refusal handed out) it passes, once
        key = DPoPKey.generate()
        bound = (await proxy.dpop_tokens(key, client_id=DPOP_CLIENT))["access_token"]
        key.nonce = None
        assert (await call(http, f"{orders}/orders/7", f"Bearer {bound}")).status == 401
        no_proof = await call(http, f"{orders}/orders/7", f"DPoP {bound}")
        assert no_proof.status == 401
        assert no_proof.headers["WWW-Authenticate"].startswith("DPoP ")
        url = f"{orders}/orders/7"
        first = await call(http, url, f"DPoP {bound}", "DELETE",
                           DPoP=key.proof("DELETE", url, access_token=bound))
        assert first.status == 401  # use_dpop_nonce: its nonce comes through nginx
        key.remember(first)
        assert key.nonce is not None
        proof = key.proof("DELETE", url, access_token=bound)
        ok = await call(http, f"{url}?x=1", f"DPoP {bound}", "DELETE", DPoP=proof)
        assert ok.status == 200, await ok.text()
        seen = api.seen[-1]
        assert seen["method"] == "DELETE" and "dpop" not in seen
        claims = await jwt_claims(world, seen["authorization"].split(" ", 1)[1], RS_PLAIN[0])
        assert claims["cnf"] == {"jkt": key.jkt}
        before = len(api.seen)
        # the same proof again is a replay (never served from the cache), and a proof for
        # another request does not pass either
        replay = await call(http, url, f"DPoP {bound}", "DELETE", DPoP=proof)
        assert replay.status == 401
        other = await call(http, url, f"DPoP {bound}", "GET",
                           DPoP=key.proof("DELETE", url, access_token=bound))
        assert other.status == 401
        assert len(api.seen) == before

        # expired: the cached check ends with the token (lifetimes.access_token 4 s, below
        # the 5 s of lifetimes.gateway_cache), to the second
        exp = (await proxy.introspect(at))["exp"]
        await asyncio.sleep(max(0.0, exp - time.time()) + 0.2)
        expired = await call(http, f"{orders}/orders/7", f"Bearer {at}")
        assert expired.status == 401
        assert len(api.seen) == before


async def test_only_a_resource_server_allowed_it_passes_the_bank_token_on(
    world: World, tmp_path: Path,
) -> None:
    proxy = world.proxy
    at = (await proxy.tokens())["access_token"]
    async with api_server() as api, gateway(world, api, tmp_path / "pay", RS_BANK) as payments:
        resp = await call(proxy.http, f"{payments}/payments", f"Bearer {at}")
        assert resp.status == 200, await resp.text()
        token = api.seen[-1]["authorization"].split(" ", 1)[1]
        claims = await jwt_claims(world, token, RS_BANK[0])
        assert claims["bank_access_token"] == (await proxy.introspect(at, rs=RS_BANK))[
            "bank_access_token"]
