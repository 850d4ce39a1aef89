"""Bad authorization requests: an HTML page when the client or redirect URI is not
verified (never a redirect), an error redirect after; JSON errors on API paths."""

from __future__ import annotations

import pytest

from tests.flows.harness import APP_REDIRECT, World, app_redirect_params


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "unknown-client"},
        {"client_id": None},
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": APP_REDIRECT + "/extra"},
        {"redirect_uri": None},
    ],
)
async def test_unverified_client_or_redirect_gets_a_page_not_a_redirect(
    world: World, overrides: dict[str, str | None]
) -> None:
    resp, _ = await world.proxy.authorize(**overrides)
    assert resp.status == 400
    assert "Location" not in resp.headers
    assert resp.content_type == "text/html"
    assert world.bank_a.requests == []


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"scope": "openid payments"}, "invalid_scope"),
        ({"acr_values": "urn:merchant:acr:nope", "client_id": "merchant-web"}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
        ({"request": "eyJ..."}, "request_not_supported"),
    ],
)
async def test_bad_requests_redirect_with_error_state_and_iss(
    world: World, overrides: dict[str, str | None], error: str
) -> None:
    resp, login = await world.proxy.authorize(**overrides)
    assert resp.status == 302
    params = app_redirect_params(resp)
    assert params == {"error": error, "error_description": params["error_description"],
                      "state": login.state, "iss": world.proxy.issuer}


async def test_duplicate_parameter(world: World) -> None:
    url = (f"{world.proxy.issuer}/authorize?client_id=merchant-ios&client_id=merchant-web"
           f"&redirect_uri={APP_REDIRECT}")
    resp = await world.proxy.http.get(url, allow_redirects=False)
    assert resp.status == 400 and "Location" not in resp.headers


async def test_post_authorize_works(world: World) -> None:
    resp, login = await world.proxy.authorize()
    params = {k: v for k, v in resp.url.query.items()}
    post = await world.proxy.http.post(f"{world.proxy.issuer}/authorize", data=params,
                                       allow_redirects=False)
    assert post.status == 302
    assert post.headers["Location"].startswith(world.bank_a.issuer + "/authorize?")
    assert login.state


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("GET", "/token", 405), ("DELETE", "/introspect", 405)],
)
async def test_framework_errors_are_json(world: World, method: str, path: str,
                                         status: int) -> None:
    resp = await world.proxy.http.request(method, f"{world.proxy.issuer}{path}")
    assert resp.status == status
    body = await resp.json()
    assert body["error"] == "invalid_request" and body["error_description"]


async def test_too_large_body_is_json_413(world: World) -> None:
    resp = await world.proxy.http.post(f"{world.proxy.issuer}/token",
                                       data={"x": "a" * 200_000})
    assert resp.status == 413
    assert (await resp.json())["error"] == "invalid_request"


async def test_token_endpoint_errors(world: World) -> None:
    unsupported = await world.proxy.post("/token", {"grant_type": "password",
                                                    "client_id": "merchant-ios"})
    assert (await unsupported.json())["error"] == "unsupported_grant_type"
    unknown = await world.proxy.post("/token", {"grant_type": "authorization_code",
                                                "client_id": "who"})
    assert (unknown.status, (await unknown.json())["error"]) == (401, "invalid_client")
    json_body = await world.proxy.http.post(f"{world.proxy.issuer}/token", json={"a": 1})
    assert (await json_body.json())["error"] == "invalid_request"


async def test_unknown_state_at_callback_is_a_page(world: World) -> None:
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/callback/bank-a?state=x&code=y",
                                      allow_redirects=False)
    assert resp.status == 400 and resp.content_type == "text/html"
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/callback/nope?state=x",
                                      allow_redirects=False)
    assert resp.status == 404 and resp.content_type == "text/html"


async def test_userinfo_errors(world: World) -> None:
    none = await world.proxy.http.get(f"{world.proxy.issuer}/userinfo")
    assert none.status == 401 and none.headers["WWW-Authenticate"].startswith("Bearer")
    bad = await world.proxy.http.get(f"{world.proxy.issuer}/userinfo",
                                     headers={"Authorization": "Bearer nope"})
    assert bad.status == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert (await bad.json())["error"] == "invalid_token"


DEFAULT_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
                   "X-Content-Type-Options": "nosniff"}


async def test_every_kind_of_answer_has_the_default_headers(world: World) -> None:
    """RFC 6749 §5.1 (no-store on token responses) and RFC 9700 §4.2.4 (no Referer from
    pages that hold codes): JSON, redirects, error pages, framework errors; a document
    the handler allows caching keeps its own Cache-Control."""
    redirect, _ = await world.proxy.authorize()
    page, _ = await world.proxy.authorize(client_id="unknown-client")
    token_error = await world.proxy.post("/token", {"grant_type": "password"})
    unknown = await world.proxy.http.get(f"{world.proxy.issuer}/nowhere")
    answers = {"redirect": redirect, "error page": page, "token error": token_error,
               "unknown route": unknown}
    assert redirect.status == 302 and page.status == 400 and unknown.status == 404
    for name, resp in answers.items():
        for header, value in DEFAULT_HEADERS.items():
            assert resp.headers.get(header) == value, (name, header, resp.headers)
    discovery = await world.proxy.http.get(
        f"{world.proxy.issuer}/.well-known/openid-configuration")
    assert discovery.headers["Cache-Control"] != "no-store"
    assert discovery.headers["Referrer-Policy"] == "no-referrer"
