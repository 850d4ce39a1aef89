"""Pushed authorization requests (RFC 9126) on the merchant side."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import aiohttp

from proxy.config.settings import Lifetimes
from tests.flows.harness import (
    APP_REDIRECT,
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    PUBLIC,
    World,
    WorldFactory,
    app_redirect_params,
    new_request,
)

WEB = (CONFIDENTIAL, CONFIDENTIAL_SECRET)


async def push(world: World, auth: tuple[str, str] | None = WEB, **overrides: str | None
               ) -> tuple[int, dict[str, object], object]:
    client_id = auth[0] if auth else PUBLIC
    login, form = new_request(client_id=client_id, **overrides)
    resp = await world.proxy.post("/par", form, auth=auth)
    return resp.status, await resp.json(), login


async def test_pushed_request_logs_in_once(world: World) -> None:
    status, body, login = await push(world)
    assert status == 201, body
    request_uri = body["request_uri"]
    assert isinstance(request_uri, str)
    assert request_uri.startswith("urn:ietf:params:oauth:request_uri:")
    assert body["expires_in"] == 60

    proxy = world.proxy
    url = f"{proxy.issuer}/authorize"
    query = {"client_id": CONFIDENTIAL, "request_uri": request_uri}
    resp = await proxy.http.get(url, params=query, allow_redirects=False)
    final = await proxy.follow(resp)
    params = app_redirect_params(final)
    assert params["state"] == login.state  # type: ignore[attr-defined]
    assert params["code"].startswith("a2a_ac_")

    # single use: the same request_uri again is refused, as an HTML page (no redirect:
    # the proxy no longer knows the redirect_uri)
    again = await proxy.http.get(url, params=query, allow_redirects=False)
    assert again.status == 400
    assert "invalid_request_uri" in await again.text()


async def test_public_client_pushes_with_client_id_only(world: World) -> None:
    status, body, _ = await push(world, auth=None)
    assert status == 201, body


async def test_push_is_checked_like_an_authorization_request(world: World) -> None:
    cases = [
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        # RFC 9126 §2.1: request_uri "MUST NOT be provided"
        ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "invalid_request"),
    ]
    for overrides, error in cases:
        status, body, _ = await push(world, **overrides)  # type: ignore[arg-type]
        assert (status, body["error"]) == (400, error), overrides


async def test_push_needs_client_authentication(world: World) -> None:
    status, body, _ = await push(world, auth=(CONFIDENTIAL, "wrong-" + "x" * 20))
    assert (status, body["error"]) == (401, "invalid_client")
    # a confidential client cannot push as if it were public
    _, form = new_request(client_id=CONFIDENTIAL)
    resp = await world.proxy.post("/par", form)
    assert resp.status == 401


async def test_duplicate_parameters_are_refused(world: World) -> None:
    _, form = new_request(client_id=CONFIDENTIAL)
    body = urlencode([*form.items(), ("scope", "openid")])
    resp = await world.proxy.http.post(
        f"{world.proxy.issuer}/par", data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Authorization": aiohttp.encode_basic_auth(*WEB)},
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_request"


async def test_request_uri_is_bound_to_its_client(world: World) -> None:
    _, body, _ = await push(world)
    resp = await world.proxy.http.get(
        f"{world.proxy.issuer}/authorize",
        params={"client_id": PUBLIC, "request_uri": str(body["request_uri"])},
        allow_redirects=False,
    )
    assert resp.status == 400
    assert "invalid_request_uri" in await resp.text()


async def test_parameters_outside_the_pushed_request_are_ignored(world: World) -> None:
    _, body, login = await push(world)
    resp = await world.proxy.http.get(
        f"{world.proxy.issuer}/authorize",
        params={"client_id": CONFIDENTIAL, "request_uri": str(body["request_uri"]),
                "redirect_uri": "https://evil.example/cb", "state": "forged"},
        allow_redirects=False,
    )
    final = await world.proxy.follow(resp)
    assert final.headers["Location"].startswith(APP_REDIRECT + "?")
    assert app_redirect_params(final)["state"] == login.state  # type: ignore[attr-defined]


async def test_request_uri_expires(world_factory: WorldFactory) -> None:
    world: World = await world_factory(lifetimes=Lifetimes(request_uri=1))
    _, body, _ = await push(world)
    assert body["expires_in"] == 1
    await asyncio.sleep(2.1)
    resp = await world.proxy.http.get(
        f"{world.proxy.issuer}/authorize",
        params={"client_id": CONFIDENTIAL, "request_uri": str(body["request_uri"])},
        allow_redirects=False,
    )
    assert resp.status == 400
    assert "invalid_request_uri" in await resp.text()


async def test_unknown_request_uri_and_missing_client_id(world: World) -> None:
    url = f"{world.proxy.issuer}/authorize"
    for query, error in [
        ({"client_id": CONFIDENTIAL, "request_uri": "https://elsewhere.example/req"},
         "invalid_request_uri"),
        ({"client_id": CONFIDENTIAL,
          "request_uri": "urn:ietf:params:oauth:request_uri:never-issued"},
         "invalid_request_uri"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "invalid_request"),
    ]:
        resp = await world.proxy.http.get(url, params=query, allow_redirects=False)
        assert resp.status == 400, query
        assert f"<code>{error}</code>" in await resp.text(), query
