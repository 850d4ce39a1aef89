"""Hostile requests at /introspect (RFC 7662).

Covered elsewhere: a resource server sees ``active: false`` for a token meant for
another audience (RFC 8707) — tests/security/test_resource_indicators.py; the bank
token only for servers allowed it —
tests/flows/test_tokens.py::test_introspection_visibility_of_the_bank_token.
"""

from __future__ import annotations

import dataclasses

import aiohttp

from tests.flows.harness import RS_PLAIN, World
from tests.security.cases import (
    ASSERTION_TYPE,
    RS_JWT,
    RS_KEY,
    assertion,
    extra_clients,
    proxy_with,
)


async def test_no_authentication_is_401(world: World) -> None:
    tokens = await world.proxy.tokens()
    for headers in ({}, {"Authorization": "Bearer " + tokens["access_token"]},
                    {"Authorization": "Basic bm9wZQ=="}):
        resp = await world.proxy.post("/introspect", {"token": tokens["access_token"]},
                                      headers=headers)
        assert resp.status == 401, headers
        assert (await resp.json())["error"] == "invalid_client"
    bare = await world.proxy.http.post(f"{world.proxy.issuer}/introspect")
    assert bare.status == 401


async def test_refresh_tokens_and_codes_are_not_access_tokens(world: World) -> None:
    tokens = await world.proxy.tokens()
    assert (await world.proxy.introspect(tokens["refresh_token"])) == {"active": False}
    login = await world.proxy.login()
    assert (await world.proxy.introspect(login.code)) == {"active": False}
    assert (await world.proxy.introspect(tokens["access_token"]))["active"] is True


async def test_malformed_and_huge_bodies(world: World) -> None:
    url = f"{world.proxy.issuer}/introspect"
    auth = {"Authorization": aiohttp.encode_basic_auth(*RS_PLAIN)}
    as_json = await world.proxy.http.post(url, json={"token": "x"}, headers=auth)
    assert as_json.status == 400
    assert (await as_json.json())["error"] == "invalid_request"
    # its own connection, closed after the answer: the server stops reading at 64 KiB
    async with aiohttp.ClientSession() as http, http.post(
        url, data={"token": "x" * 10_000_000}, headers={**auth, "Connection": "close"}
    ) as huge:
        assert huge.status == 413
        assert (await huge.json())["error"] == "invalid_request"
    broken = await world.proxy.http.post(
        url, data=b"token=%zz%%&&==",
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"})
    assert broken.status in (200, 400)
    assert broken.content_type == "application/json"


async def test_resource_server_with_private_key_jwt(world: World) -> None:
    proxy = await proxy_with(world, extra_clients(world.proxy.config))
    tokens = await proxy.tokens()
    signed = assertion(RS_JWT, proxy.issuer, RS_KEY)
    form = {"token": tokens["access_token"], "client_assertion_type": ASSERTION_TYPE}
    ok = await proxy.post("/introspect", {**form, "client_assertion": signed})
    assert ok.status == 200 and (await ok.json())["active"] is True
    replayed = await proxy.post("/introspect", {**form, "client_assertion": signed})
    assert (replayed.status, (await replayed.json())["error"]) == (401, "invalid_client")
    foreign = assertion(RS_JWT, "https://elsewhere.example", RS_KEY)
    wrong_aud = await proxy.post("/introspect", {**form, "client_assertion": foreign})
    assert wrong_aud.status == 401


async def test_a_resource_server_known_by_its_header_still_needs_the_right_one(
    world: World,
) -> None:
    """The registry remembers the Basic headers it verified: what it remembers lets in only
    that exact header, never a wrong secret, never two methods, never past a reload."""
    token = (await world.proxy.tokens())["access_token"]
    assert (await world.proxy.introspect(token))["active"] is True  # the header is known now
    wrong = await world.proxy.post("/introspect", {"token": token},
                                   auth=(RS_PLAIN[0], RS_PLAIN[1] + "x"))
    assert (wrong.status, (await wrong.json())["error"]) == (401, "invalid_client")
    two = await world.proxy.post(
        "/introspect", {"token": token, "client_assertion_type": ASSERTION_TYPE,
                        "client_assertion": assertion(RS_JWT, world.proxy.issuer, RS_KEY)},
        auth=RS_PLAIN)
    assert (two.status, (await two.json())["error"]) == (400, "invalid_request")

    changed = tuple(dataclasses.replace(rs, client_secret=RS_PLAIN[1] + "-rotated")
                    if rs.client_id == RS_PLAIN[0] else rs
                    for rs in world.proxy.config.resource_servers)
    world.reload(dataclasses.replace(world.proxy.config, resource_servers=changed))
    old = await world.proxy.post("/introspect", {"token": token}, auth=RS_PLAIN)
    assert (old.status, (await old.json())["error"]) == (401, "invalid_client")
    new = await world.proxy.introspect(token, (RS_PLAIN[0], RS_PLAIN[1] + "-rotated"))
    assert new["active"] is True
