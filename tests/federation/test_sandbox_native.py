"""The sandbox bank's browser-less App2App native authorization endpoint
(draft-zehavi-oauth-app2app-browserless-07) and its bank app page, over real HTTP."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from test_sandbox import REDIRECT, auth_params, make_clients, post_token, unverified

from federation.sandbox import SandboxBank, serve_sandbox

CALLBACK = "https://merchant.example/app2app/native-callback"


@pytest.fixture
async def bank() -> AsyncIterator[SandboxBank]:
    sandbox = SandboxBank(clients=make_clients())
    sandbox.native_endpoint = True
    async with serve_sandbox(sandbox) as served:
        yield served


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- helpers ---------------------------------------------------------------


def native_params(verifier: str, **overrides: str) -> dict[str, str]:
    """The redirect flow's parameters plus native_callback_uri; "" leaves one out."""
    params = auth_params("basic-client", verifier, native_callback_uri=CALLBACK)
    params.update(overrides)
    return {k: v for k, v in params.items() if v != ""}


async def native_authorize(
    http: aiohttp.ClientSession, bank: SandboxBank, params: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with http.get(
        f"{bank.issuer}/native/authorize", params=params, allow_redirects=False
    ) as resp:
        # §3.3: JSON, never a 30x
        assert resp.content_type == "application/json"
        assert not 300 <= resp.status < 400
        return resp.status, await resp.json()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def decide(
    http: aiohttp.ClientSession, page_url: str, decision: str
) -> aiohttp.ClientResponse:
    async with http.post(
        f"{page_url}/decide", data={"decision": decision}, allow_redirects=False
    ) as resp:
        await resp.read()
        return resp


def returned_response(resp: aiohttp.ClientResponse) -> dict[str, str]:
    """The authorization response the bank app hands back through native_callback_uri."""
    assert resp.status == 302
    location = resp.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    got = query(location)
    assert set(got) == {"redirect_uri"}
    raw = location.split("redirect_uri=", 1)[1]
    assert not set(raw) & set(":/?&="), "redirect_uri must be url-encoded"
    assert got["redirect_uri"].startswith(REDIRECT + "?")
    return query(got["redirect_uri"])


# -- discovery and the knob ----------------------------------------------------------


async def test_discovery_follows_the_knob(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    url = f"{bank.issuer}/.well-known/openid-configuration"
    async with http.get(url) as resp:
        meta = await resp.json()
    assert meta["native_authorization_endpoint"] == f"{bank.issuer}/native/authorize"
    bank.native_endpoint = False
    async with http.get(url) as resp:
        assert "native_authorization_endpoint" not in await resp.json()


async def test_knob_off_is_404_json(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.native_endpoint = False
    status, body = await native_authorize(http, bank, native_params("v" * 43))
    assert (status, body["error"]) == (404, "native_app2app_unsupported")
    assert bank.native_requests == {}


# -- the happy path ------------------------------------------------------------------


async def test_deep_link_then_approve_then_code_exchange(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    verifier = secrets.token_urlsafe(48)
    params = native_params(verifier)
    status, body = await native_authorize(http, bank, params)
    assert status == 200
    assert body["action"] == "deep_link"
    [handle] = bank.native_requests
    assert body["url"] == f"{bank.issuer}/app2app/authorize/{handle}"
    assert bank.last("/native/authorize").query["native_callback_uri"] == CALLBACK

    async with http.get(body["url"]) as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
    assert ">Approve<" in page and ">Deny<" in page and "basic-client" in page
    assert f'action="{body["url"]}/decide"' in page
    assert params["state"] not in page and params["nonce"] not in page

    got = returned_response(await decide(http, body["url"], "approve"))
    assert got["state"] == params["state"] and got["iss"] == bank.issuer
    form = {
        "grant_type": "authorization_code",
        "code": got["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    status, tokens = await post_token(http, bank, "basic-client", form)
    assert status == 200, tokens
    assert unverified(tokens["id_token"])["nonce"] == params["nonce"]
    # the handle is single use
    assert (await decide(http, body["url"], "approve")).status == 404
    async with http.get(body["url"]) as resp:
        assert resp.status == 404 and resp.content_type == "text/html"


async def test_the_code_keeps_pkce_and_redirect_uri_checks(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    _, body = await native_authorize(http, bank, native_params("v" * 43))
    code = returned_response(await decide(http, body["url"], "approve"))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": "w" * 43,
    }
    status, tokens = await post_token(http, bank, "basic-client", form)
    assert (status, tokens["error"]) == (400, "invalid_grant")


async def test_deny_on_the_page(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    params = native_params("v" * 43)
    _, body = await native_authorize(http, bank, params)
    assert (await decide(http, body["url"], "maybe")).status == 400  # not consumed
    got = returned_response(await decide(http, body["url"], "deny"))
    assert got["error"] == "access_denied" and "code" not in got
    assert got["state"] == params["state"] and got["iss"] == bank.issuer


async def test_without_iss_parameter(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.iss_parameter = False
    _, body = await native_authorize(http, bank, native_params("v" * 43))
    got = returned_response(await decide(http, body["url"], "approve"))
    assert "code" in got and "iss" not in got


async def test_auto_approve_still_deep_links(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    assert bank.auto_approve
    status, body = await native_authorize(http, bank, native_params("v" * 43))
    assert (status, body["action"]) == (200, "deep_link")
    assert bank.codes == {}


async def test_deny_knob_calls_back_with_access_denied(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    bank.deny = True
    params = native_params("v" * 43)
    status, body = await native_authorize(http, bank, params)
    assert (status, body["action"]) == (200, "call")
    got = query(body["url"])
    assert got["error"] == "access_denied" and got["state"] == params["state"]


@pytest.mark.parametrize(
    "callback",
    ["http://127.0.0.1:8123/cb", "http://[::1]/cb", "http://localhost:9/cb", CALLBACK + "?a=b"],
)
async def test_loopback_and_query_callbacks(
    callback: str, bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    _, body = await native_authorize(
        http, bank, native_params("v" * 43, native_callback_uri=callback)
    )
    resp = await decide(http, body["url"], "approve")
    location = resp.headers["Location"]
    assert location.startswith(callback.split("?")[0])
    got = query(location)
    assert query(got["redirect_uri"])["code"]
    assert got.get("a") == ("b" if "?a=b" in callback else None)


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "nobody"},
        {"redirect_uri": "https://evil.example/cb"},
        {"native_callback_uri": ""},
        {"native_callback_uri": "http://merchant.example/cb"},
        {"native_callback_uri": "merchant-app://callback"},
        {"native_callback_uri": "/relative/cb"},
        {"native_callback_uri": "https://merchant.example/cb#frag"},
    ],
    ids=[
        "unknown-client",
        "unregistered-redirect",
        "no-callback",
        "http-callback",
        "custom-scheme-callback",
        "relative-callback",
        "fragment-callback",
    ],
)
async def test_unverified_request_is_400_json(
    overrides: dict[str, str], bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    status, body = await native_authorize(http, bank, native_params("v" * 43, **overrides))
    assert (status, body["error"]) == (400, "invalid_request")
    assert body["error_description"] and "action" not in body
    assert bank.native_requests == {}


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"nonce": ""}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
async def test_verified_client_errors_are_calls_to_redirect_uri(
    overrides: dict[str, str], error: str, bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    params = native_params("v" * 43, **overrides)
    status, body = await native_authorize(http, bank, params)
    assert (status, body["action"]) == (200, "call")
    assert re.match(re.escape(REDIRECT) + r"\?", body["url"])
    got = query(body["url"])
    assert got["error"] == error and got["error_description"]
    assert got["state"] == params["state"] and got["iss"] == bank.issuer
    assert bank.native_requests == {}
