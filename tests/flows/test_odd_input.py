"""Odd values in every parameter get an OAuth error, never a 500."""

from __future__ import annotations

import pytest

from tests.flows.harness import CONFIDENTIAL, RS_PLAIN, World


def header_safe(value: str) -> bool:
    """A NUL or an 8 KiB header is refused by aiohttp's parser before any middleware
    (a plain-text 400; issue 4 takes that on)."""
    return "\x00" not in value and len(value) < 1000


ODD = ["é" * 43, "\x00", "a" * 5000, "%zz", " ", "💥", "null", "{}"]


@pytest.mark.parametrize("value", ODD)
async def test_token_endpoint(world: World, value: str) -> None:
    login = await world.proxy.login()
    for field in ("code", "code_verifier", "redirect_uri", "client_id", "grant_type"):
        resp = await world.proxy.exchange(login, **{field: value})
        assert 400 <= resp.status < 500, (field, resp.status)
        assert (await resp.json())["error"]
    for field in ("refresh_token", "client_id", "scope"):
        form = {"grant_type": "refresh_token", "client_id": "merchant-ios",
                "refresh_token": "x", field: value}
        resp = await world.proxy.post("/token", form)
        assert 400 <= resp.status < 500, (field, resp.status)
    if header_safe(value):
        resp = await world.proxy.post("/token", {"grant_type": "authorization_code"},
                                      auth=(value, value))
        assert resp.status == 401


@pytest.mark.parametrize("value", ODD)
async def test_authorize_and_callback(world: World, value: str) -> None:
    for field in ("client_id", "redirect_uri", "scope", "state", "code_challenge",
                  "acr_values", "login_hint", "prompt", "nonce"):
        resp, _ = await world.proxy.authorize(**{field: value})
        assert resp.status in (302, 400), (field, resp.status)
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/callback/bank-a",
                                      params={"state": value, "code": value, "iss": value},
                                      allow_redirects=False)
    assert resp.status == 400


@pytest.mark.parametrize("value", ODD)
async def test_introspect_revoke_userinfo(world: World, value: str) -> None:
    resp = await world.proxy.post("/introspect", {"token": value}, auth=RS_PLAIN)
    assert resp.status == 200 and await resp.json() == {"active": False}
    resp = await world.proxy.post("/revoke", {"token": value, "token_type_hint": value,
                                              "client_id": "merchant-ios"})
    assert resp.status == 200
    if header_safe(value):
        resp = await world.proxy.post("/revoke", {"token": value},
                                      auth=(CONFIDENTIAL, value))
        assert resp.status == 401
    resp = await world.proxy.post("/userinfo", {"access_token": value})
    assert resp.status == 401
