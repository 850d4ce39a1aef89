"""Hostile authorization requests.

Covered elsewhere (not repeated here):
- unregistered redirect URI, unknown or missing client: an error page, no redirect —
  tests/flows/test_errors.py::test_unverified_client_or_redirect_gets_a_page_not_a_redirect
- response_type=token, missing or plain PKCE, bad scope; every error redirect carries
  exactly error, error_description, state and iss —
  tests/flows/test_errors.py::test_bad_requests_redirect_with_error_state_and_iss
- duplicated parameters — tests/flows/test_errors.py::test_duplicate_parameter
- an unknown bank id at a callback —
  tests/flows/test_errors.py::test_unknown_state_at_callback_is_a_page;
  a tampered bank id in the picker's answer —
  tests/flows/test_picker.py::test_picker_answers_that_do_not_fit
- odd bytes in every parameter — tests/flows/test_odd_input.py
"""

from __future__ import annotations

import secrets

import jwt
import pytest

from tests.flows.harness import APP_REDIRECT, PUBLIC, World, app_redirect_params
from tests.security.cases import FAPI, extra_clients, proxy_with


@pytest.mark.parametrize(
    "redirect_uri",
    [APP_REDIRECT + "?next=https://evil.example", APP_REDIRECT + "#frag",
     APP_REDIRECT.upper(), APP_REDIRECT + "/", APP_REDIRECT.replace("https", "http")],
)
async def test_redirect_uri_must_match_exactly(world: World, redirect_uri: str) -> None:
    # RFC 9700 §4.1.3: exact string matching; no redirect to anything else
    resp, _ = await world.proxy.authorize(redirect_uri=redirect_uri)
    assert resp.status == 400
    assert "Location" not in resp.headers
    assert resp.content_type == "text/html"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


async def test_missing_response_type(world: World) -> None:
    resp, login = await world.proxy.authorize(response_type=None)
    params = app_redirect_params(resp)
    assert (params["error"], params["state"], params["iss"]) == (
        "invalid_request", login.state, world.proxy.issuer)


async def test_unknown_parameters_are_ignored(world: World) -> None:
    # RFC 6749 §3.1: "The authorization server MUST ignore unrecognized request parameters."
    login = await world.proxy.login(foo="bar", claims_locales="xx", ui_locales="de")
    assert login.params["code"]


async def test_long_state_and_nonce_come_back_exactly(world: World) -> None:
    state = secrets.token_urlsafe(1500)[:2000]
    nonce = "n" + secrets.token_urlsafe(1500)[:1999]
    login = await world.proxy.login(state=state, nonce=nonce)
    assert login.params["state"] == state
    tokens = await (await world.proxy.exchange(login)).json()
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["nonce"] == nonce


async def test_code_bearing_redirect_headers(world: World) -> None:
    resp, _ = await world.proxy.authorize()
    final = await world.proxy.follow(resp)
    assert final.headers["Cache-Control"] == "no-store"
    assert final.headers["Referrer-Policy"] == "no-referrer"


async def test_fapi2_client_must_use_par(world: World) -> None:
    proxy = await proxy_with(world, extra_clients(world.proxy.config))
    resp, login = await proxy.authorize(client_id=FAPI, scope="openid profile")
    params = app_redirect_params(resp)
    assert (params["error"], params["state"]) == ("invalid_request", login.state)
    assert "/par" in params["error_description"]
    # other clients may still send their request directly
    plain, _ = await proxy.authorize(client_id=PUBLIC)
    assert plain.status == 302 and "error" not in plain.headers["Location"]
