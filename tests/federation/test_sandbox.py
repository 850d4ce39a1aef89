"""The sandbox bank, driven over real HTTP as the proxy will drive it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import aiohttp
import jwt
import pytest
from jwcrypto import jwk

from federation.sandbox import (
    ID_TOKEN_FAULTS,
    NoRecordedRequest,
    SandboxBank,
    SandboxClient,
    serve_sandbox,
)

REDIRECT = "https://proxy.example/callback/sandbox"
SECRET = "s3cret:with/odd+chars"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_KEY = jwk.JWK.generate(kty="EC", crv="P-256", kid="client-key-1")
CLIENT_PEM = CLIENT_KEY.export_to_pem(private_key=True, password=None)
METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def make_clients() -> list[SandboxClient]:
    public = {"keys": [CLIENT_KEY.export_public(as_dict=True)]}
    return [
        SandboxClient("basic-client", [REDIRECT], "client_secret_basic", secret=SECRET),
        SandboxClient("post-client", [REDIRECT], "client_secret_post", secret=SECRET),
        SandboxClient("jwt-client", [REDIRECT], "private_key_jwt", jwks=public),
    ]


CLIENT_OF = {
    "client_secret_basic": "basic-client",
    "client_secret_post": "post-client",
    "private_key_jwt": "jwt-client",
}


@pytest.fixture
async def bank() -> AsyncIterator[SandboxBank]:
    async with serve_sandbox(SandboxBank(clients=make_clients())) as served:
        yield served


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- helpers ---------------------------------------------------------------


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def assertion(bank: SandboxBank, client_id: str, **overrides: Any) -> str:
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{bank.issuer}/token",
        "exp": int(time.time()) + 60,
        "jti": secrets.token_urlsafe(16),
        **overrides,
    }
    claims = {k: v for k, v in claims.items() if v is not None}  # None: leave the claim out
    return jwt.encode(claims, CLIENT_PEM, algorithm="ES256", headers={"kid": "client-key-1"})


def auth(
    bank: SandboxBank, client_id: str, secret: str = SECRET
) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, form fields) authenticating ``client_id`` per its auth_method."""
    method = bank.clients[client_id].auth_method
    if method == "client_secret_basic":
        raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}, {}
    if method == "client_secret_post":
        return {}, {"client_id": client_id, "client_secret": secret}
    return {}, {"client_assertion_type": JWT_BEARER, "client_assertion": assertion(bank, client_id)}


def auth_params(client_id: str, verifier: str, **overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "st-" + secrets.token_urlsafe(8),
        "nonce": "n-" + secrets.token_urlsafe(8),
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v != ""}


async def authorize(
    http: aiohttp.ClientSession, bank: SandboxBank, params: dict[str, str]
) -> aiohttp.ClientResponse:
    async with http.get(f"{bank.issuer}/authorize", params=params, allow_redirects=False) as resp:
        await resp.read()
        return resp


def redirect_params(resp: aiohttp.ClientResponse) -> dict[str, str]:
    assert resp.status == 302
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def get_code(
    http: aiohttp.ClientSession, bank: SandboxBank, client_id: str, verifier: str, **kw: str
) -> dict[str, str]:
    return redirect_params(await authorize(http, bank, auth_params(client_id, verifier, **kw)))


async def post_token(
    http: aiohttp.ClientSession,
    bank: SandboxBank,
    client_id: str,
    form: dict[str, str],
    secret: str = SECRET,
    **kw: Any,
) -> tuple[int, dict[str, Any]]:
    headers, fields = auth(bank, client_id, secret)
    async with http.post(
        f"{bank.issuer}/token", data={**fields, **form}, headers=headers, **kw
    ) as resp:
        return resp.status, await resp.json()


async def login(
    http: aiohttp.ClientSession, bank: SandboxBank, client_id: str = "basic-client", **kw: str
) -> tuple[dict[str, str], dict[str, Any]]:
    """A whole auto-approved login: (authorize params, token response)."""
    verifier = secrets.token_urlsafe(48)
    params = auth_params(client_id, verifier, **kw)
    code = redirect_params(await authorize(http, bank, params))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    status, body = await post_token(http, bank, client_id, form)
    assert status == 200, body
    return params, body


async def bank_jwks(http: aiohttp.ClientSession, bank: SandboxBank) -> dict[str, Any]:
    async with http.get(f"{bank.issuer}/jwks") as resp:
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result


def verify(id_token: str, jwks: dict[str, Any], bank: SandboxBank, aud: str) -> dict[str, Any]:
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = next(k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(
        id_token, key.key, algorithms=[bank.alg], audience=aud, issuer=bank.issuer
    )
    return claims


def unverified(id_token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(id_token, options={"verify_signature": False})
    return claims


# -- discovery and keys ----------------------------------------------------


async def test_metadata(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", bank.issuer)
    async with http.get(f"{bank.issuer}/.well-known/openid-configuration") as resp:
        assert resp.status == 200
        meta = await resp.json()
    iss = bank.issuer
    assert meta["issuer"] == iss
    assert meta["authorization_endpoint"] == f"{iss}/authorize"
    assert meta["token_endpoint"] == f"{iss}/token"
    assert meta["userinfo_endpoint"] == f"{iss}/userinfo"
    assert meta["jwks_uri"] == f"{iss}/jwks"
    assert meta["introspection_endpoint"] == f"{iss}/introspect"
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == set(METHODS)
    assert meta["id_token_signing_alg_values_supported"] == ["ES256"]
    assert "urn:sandbox:loa:high" in meta["acr_values_supported"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    bank.iss_parameter = False
    async with http.get(f"{bank.issuer}/.well-known/openid-configuration") as resp:
        assert (await resp.json())["authorization_response_iss_parameter_supported"] is False


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
async def test_jwks_and_id_token_verify(alg: str, http: aiohttp.ClientSession) -> None:
    async with serve_sandbox(SandboxBank(clients=make_clients(), alg=alg)) as bank:
        jwks = await bank_jwks(http, bank)
        [key] = jwks["keys"]
        assert key["use"] == "sig" and key["alg"] == alg and key["kid"]
        assert "d" not in key  # public only
        params, body = await login(http, bank)
        assert jwt.get_unverified_header(body["id_token"]) == {
            "alg": alg,
            "typ": "JWT",
            "kid": key["kid"],
        }
        claims = verify(body["id_token"], jwks, bank, "basic-client")
        assert claims["nonce"] == params["nonce"]


# -- the code flow -----------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
async def test_code_flow(method: str, bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    client_id = CLIENT_OF[method]
    params, body = await login(http, bank, client_id, login_hint="alice")
    redirect = redirect_params(await authorize(http, bank, params))
    assert redirect["state"] == params["state"] and redirect["iss"] == bank.issuer
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "openid profile"
    assert body["access_token"] and body["refresh_token"]
    claims = verify(body["id_token"], await bank_jwks(http, bank), bank, client_id)
    assert claims["sub"] == "sandbox-user-1"
    assert claims["aud"] == claims["azp"] == client_id
    assert claims["nonce"] == params["nonce"]
    assert claims["acr"] == "urn:sandbox:loa:substantial"
    assert claims["amr"] == ["pwd", "mfa"]
    assert claims["exp"] == claims["iat"] + 300
    assert abs(claims["auth_time"] - time.time()) < 5
    assert claims["name"] == "Alice Sandbox" and claims["birthdate"] == "1990-01-01"
    assert bank.last("/authorize").query["login_hint"] == "alice"
    sent = bank.last("/token")
    assert sent.form["grant_type"] == "authorization_code"
    assert ("Authorization" in sent.headers) == (method == "client_secret_basic")


async def test_acr_values_first_entry_lands_in_id_token(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    _, body = await login(http, bank, acr_values="urn:sandbox:loa:high urn:sandbox:loa:substantial")
    assert unverified(body["id_token"])["acr"] == "urn:sandbox:loa:high"
    assert bank.last("/authorize").query["acr_values"].startswith("urn:sandbox:loa:high")


async def test_openid_only_scope_has_no_user_claims(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    _, body = await login(http, bank, scope="openid")
    assert "name" not in unverified(body["id_token"])


async def test_wrong_verifier_is_invalid_grant(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    code = (await get_code(http, bank, "basic-client", "v" * 43))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": "w" * 43,
    }
    assert await post_token(http, bank, "basic-client", form) == (
        400,
        {
            "error": "invalid_grant",
            "error_description": "code_verifier does not match code_challenge",
        },
    )


async def test_missing_verifier_is_invalid_request(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    code = (await get_code(http, bank, "basic-client", "v" * 43))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    status, body = await post_token(http, bank, "basic-client", form)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_redirect_uri_mismatch_is_invalid_grant(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    code = (await get_code(http, bank, "basic-client", "v" * 43))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT + "/other",
        "code_verifier": "v" * 43,
    }
    status, body = await post_token(http, bank, "basic-client", form)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_code_of_another_client_is_invalid_grant(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    code = (await get_code(http, bank, "basic-client", "v" * 43))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": "v" * 43,
    }
    status, body = await post_token(http, bank, "post-client", form)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_code_reuse_is_refused(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    verifier = "v" * 43
    code = (await get_code(http, bank, "post-client", verifier))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    assert (await post_token(http, bank, "post-client", form))[0] == 200
    status, body = await post_token(http, bank, "post-client", form)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_unsupported_grant_type(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    status, body = await post_token(http, bank, "basic-client", {"grant_type": "password"})
    assert (status, body["error"]) == (400, "unsupported_grant_type")


# -- client authentication -----------------------------------------------------


async def token_status(
    http: aiohttp.ClientSession,
    bank: SandboxBank,
    form: dict[str, str],
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], str | None]:
    verifier = "v" * 43
    code = (await get_code(http, bank, "basic-client", verifier))["code"]
    base = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    async with http.post(f"{bank.issuer}/token", data={**base, **form}, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers.get("WWW-Authenticate")


@pytest.mark.parametrize("client_id", ["basic-client", "post-client"])
async def test_wrong_secret_is_invalid_client(
    client_id: str, bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    verifier = "v" * 43
    code = (await get_code(http, bank, client_id, verifier))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    status, body = await post_token(http, bank, client_id, form, secret="wrong")
    assert (status, body["error"]) == (401, "invalid_client")


async def test_basic_failure_challenges_basic(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    raw = base64.b64encode(b"basic-client:wrong").decode()
    status, body, challenge = await token_status(http, bank, {}, {"Authorization": f"Basic {raw}"})
    assert (status, body["error"]) == (401, "invalid_client")
    assert challenge is not None and challenge.startswith("Basic")


async def test_secret_must_travel_per_registered_method(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    # basic-client registered client_secret_basic: sending the secret in the form is refused
    form = {"client_id": "basic-client", "client_secret": SECRET}
    status, body, _ = await token_status(http, bank, form)
    assert (status, body["error"]) == (401, "invalid_client")
    # and post-client may not use Basic
    raw = base64.b64encode(f"post-client:{quote_plus(SECRET)}".encode()).decode()
    status, body, _ = await token_status(http, bank, {}, {"Authorization": f"Basic {raw}"})
    assert (status, body["error"]) == (401, "invalid_client")


async def test_missing_client_auth_is_invalid_client(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await token_status(http, bank, {"client_id": "basic-client"})
    assert (status, body["error"]) == (401, "invalid_client")


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "https://elsewhere.example/token"},
        {"exp": int(time.time()) - 120},
        {"sub": "someone-else"},
        {"jti": None},
    ],
    ids=["aud", "expired", "sub", "no-jti"],
)
async def test_bad_client_assertion_is_invalid_client(
    overrides: dict[str, Any], bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    verifier = "v" * 43
    code = (await get_code(http, bank, "jwt-client", verifier))["code"]
    signed = assertion(bank, "jwt-client", **overrides)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": signed,
    }
    async with http.post(f"{bank.issuer}/token", data=form) as resp:
        assert (resp.status, (await resp.json())["error"]) == (401, "invalid_client")


async def test_client_assertion_signed_by_other_key_or_replayed(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    other = jwk.JWK.generate(kty="EC", crv="P-256").export_to_pem(private_key=True, password=None)
    forged = jwt.encode(
        unverified(assertion(bank, "jwt-client")),
        other,
        algorithm="ES256",
        headers={"kid": "client-key-1"},
    )
    form = {"client_assertion_type": JWT_BEARER, "client_assertion": forged}
    status, body, _ = await token_status(http, bank, form)
    # token_status's code belongs to basic-client; the failure must be auth, not grant
    assert (status, body["error"]) == (401, "invalid_client")
    # a good assertion works once at the issuer audience, then its jti is spent
    verifier = "v" * 43
    good = assertion(bank, "jwt-client", aud=bank.issuer)
    for expected in (200, 401):
        code = (await get_code(http, bank, "jwt-client", verifier))["code"]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": good,
        }
        async with http.post(f"{bank.issuer}/token", data=form) as resp:
            assert resp.status == expected


# -- authorize errors, deny, consent page ---------------------------------------


@pytest.mark.parametrize(
    "overrides", [{"client_id": "nobody"}, {"redirect_uri": "https://evil.example/cb"}]
)
async def test_unverified_client_or_redirect_gets_html_page(
    overrides: dict[str, str], bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    params = {**auth_params("basic-client", "v" * 43), **overrides}
    resp = await authorize(http, bank, params)
    assert resp.status == 400
    assert resp.content_type == "text/html"
    assert "Location" not in resp.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"nonce": ""}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
async def test_authorize_errors_redirect_with_state_and_iss(
    overrides: dict[str, str], error: str, bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    params = auth_params("basic-client", "v" * 43, **overrides)
    got = redirect_params(await authorize(http, bank, params))
    assert got["error"] == error
    assert got["state"] == params["state"] and got["iss"] == bank.issuer
    assert "code" not in got


async def test_missing_state_is_invalid_request(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    got = await get_code(http, bank, "basic-client", "v" * 43, state="")
    assert got["error"] == "invalid_request" and "state" not in got


async def test_deny(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.deny = True
    params = auth_params("basic-client", "v" * 43)
    got = redirect_params(await authorize(http, bank, params))
    assert got["error"] == "access_denied"
    assert got["state"] == params["state"] and got["iss"] == bank.issuer
    assert "code" not in got


async def test_no_iss_parameter(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.iss_parameter = False
    got = await get_code(http, bank, "basic-client", "v" * 43)
    assert "code" in got and "iss" not in got


async def consent(
    http: aiohttp.ClientSession, bank: SandboxBank, params: dict[str, str]
) -> tuple[str, str]:
    async with http.get(f"{bank.issuer}/authorize", params=params, allow_redirects=False) as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
    match = re.search(r'name="handle" value="([^"]+)"', page)
    assert match
    return page, match.group(1)


async def decide(
    http: aiohttp.ClientSession, bank: SandboxBank, handle: str, decision: str
) -> aiohttp.ClientResponse:
    form = {"handle": handle, "decision": decision}
    async with http.post(
        f"{bank.issuer}/authorize/decide", data=form, allow_redirects=False
    ) as resp:
        await resp.read()
        return resp


async def test_click_to_approve(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.auto_approve = False
    verifier = "v" * 43
    params = auth_params("post-client", verifier)
    page, handle = await consent(http, bank, params)
    assert "Alice Sandbox" in page and "post-client" in page
    assert ">Approve<" in page and ">Deny<" in page
    assert f'action="{bank.issuer}/authorize/decide"' in page
    assert params["state"] not in page and params["nonce"] not in page  # a handle, not params
    got = redirect_params(await decide(http, bank, handle, "approve"))
    assert got["state"] == params["state"] and got["iss"] == bank.issuer
    form = {
        "grant_type": "authorization_code",
        "code": got["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    status, body = await post_token(http, bank, "post-client", form)
    assert status == 200
    assert unverified(body["id_token"])["nonce"] == params["nonce"]
    # the handle is single use
    resp = await decide(http, bank, handle, "approve")
    assert resp.status == 400 and resp.content_type == "text/html"


async def test_the_consent_page_once_answered_has_no_buttons(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    """Back from the merchant's page to the consent page (the browser loads the bank's
    authorization URL again): the request was answered, nothing to click twice."""
    bank.auto_approve = False
    params = auth_params("post-client", "v" * 43)
    page, handle = await consent(http, bank, params)
    assert "<form" in page
    await decide(http, bank, handle, "approve")
    async with http.get(f"{bank.issuer}/authorize", params=params) as again:
        text = await again.text()
    assert again.status == 200 and "You already answered" in text and "<form" not in text


async def test_pages_forbid_framing_and_script(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    """No form-action: an answer's redirects go on to the merchant's origin, which the
    bank cannot know (tests/browser: the login goes through in Chromium)."""
    bank.auto_approve = False
    async with http.get(f"{bank.issuer}/authorize", allow_redirects=False,
                        params=auth_params("post-client", "v" * 43)) as resp:
        policy = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert "form-action" not in policy


async def test_a_404_is_a_page_for_a_browser_and_json_for_an_api(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{bank.issuer}/nope", headers={"Accept": "text/html"}) as resp:
        assert resp.status == 404 and resp.content_type == "text/html"
        assert "<h1>Page not found</h1>" in await resp.text()
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    async with http.get(f"{bank.issuer}/nope") as resp:
        assert resp.status == 404 and (await resp.json())["error"] == "invalid_request"
    async with http.delete(f"{bank.issuer}/token") as resp:
        assert resp.status == 405 and resp.headers["Allow"] == "POST"


async def test_click_to_deny(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.auto_approve = False
    params = auth_params("basic-client", "v" * 43)
    _, handle = await consent(http, bank, params)
    got = redirect_params(await decide(http, bank, handle, "deny"))
    assert got["error"] == "access_denied" and got["state"] == params["state"]


async def test_decide_with_unknown_handle(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    resp = await decide(http, bank, "made-up", "approve")
    assert resp.status == 400 and "Location" not in resp.headers


# -- ID token faults and keys ----------------------------------------------------


async def test_each_id_token_fault(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    jwks = await bank_jwks(http, bank)
    [real] = jwks["keys"]
    for fault in ID_TOKEN_FAULTS:
        bank.id_token_fault = fault
        params, body = await login(http, bank)
        token = body["id_token"]
        header, claims = jwt.get_unverified_header(token), unverified(token)
        if fault == "wrong_key":
            assert header["kid"] == real["kid"]
            with pytest.raises(jwt.InvalidSignatureError):
                verify(token, jwks, bank, "basic-client")
        elif fault == "alg_none":
            assert header["alg"] == "none" and token.endswith(".")
        elif fault == "wrong_aud":
            assert claims["aud"] != "basic-client"
        elif fault == "wrong_iss":
            assert claims["iss"] != bank.issuer
        elif fault == "expired":
            now = time.time()
            assert claims["exp"] < now - 3000 and claims["iat"] <= now - 3600
            with pytest.raises(jwt.ExpiredSignatureError):
                verify(token, jwks, bank, "basic-client")
        elif fault == "wrong_nonce":
            assert claims["nonce"] != params["nonce"]
        elif fault == "unknown_kid":
            assert header["kid"] not in {k["kid"] for k in jwks["keys"]}
        else:
            pytest.fail(f"untested fault {fault}")
    bank.id_token_fault = None
    _, body = await login(http, bank)
    verify(body["id_token"], jwks, bank, "basic-client")
    with pytest.raises(ValueError, match="unknown id_token_fault"):
        bank.id_token_fault = "typo"


async def test_rotate_keys(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    [old] = (await bank_jwks(http, bank))["keys"]
    bank.rotate_keys()
    jwks = await bank_jwks(http, bank)
    [new] = jwks["keys"]
    assert new["kid"] != old["kid"]
    _, body = await login(http, bank)
    assert jwt.get_unverified_header(body["id_token"])["kid"] == new["kid"]
    verify(body["id_token"], jwks, bank, "basic-client")


# -- refresh, userinfo, introspection ------------------------------------------


async def refresh(
    http: aiohttp.ClientSession, bank: SandboxBank, token: str, client_id: str = "basic-client"
) -> tuple[int, dict[str, Any]]:
    return await post_token(
        http, bank, client_id, {"grant_type": "refresh_token", "refresh_token": token}
    )


async def test_refresh_rotates(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    _, first = await login(http, bank)
    status, second = await refresh(http, bank, first["refresh_token"])
    assert status == 200
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == "openid profile" and second["token_type"] == "Bearer"
    assert "nonce" not in unverified(second["id_token"])
    status, body = await refresh(http, bank, first["refresh_token"])  # rotated away
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = await refresh(http, bank, second["refresh_token"], "post-client")
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_refuse_refresh(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    _, tokens = await login(http, bank)
    bank.refuse_refresh = True
    status, body = await refresh(http, bank, tokens["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_no_refresh_tokens(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.issue_refresh_tokens = False
    bank.access_token_lifetime = 42
    _, body = await login(http, bank)
    assert "refresh_token" not in body and body["expires_in"] == 42


async def test_userinfo(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    _, tokens = await login(http, bank)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with http.get(f"{bank.issuer}/userinfo", headers=bearer) as resp:
        assert resp.status == 200
        info = await resp.json()
    assert info == {"sub": "sandbox-user-1", **bank.user.claims}
    async with http.post(
        f"{bank.issuer}/userinfo", data={"access_token": tokens["access_token"]}
    ) as resp:
        assert resp.status == 200 and (await resp.json())["sub"] == "sandbox-user-1"


async def test_userinfo_refuses_bad_token(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    async with http.get(
        f"{bank.issuer}/userinfo", headers={"Authorization": "Bearer nope"}
    ) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
        assert (await resp.json())["error"] == "invalid_token"
    async with http.get(f"{bank.issuer}/userinfo") as resp:
        assert resp.status == 401
        assert "error=" not in resp.headers["WWW-Authenticate"]  # RFC 6750 §3.1


@pytest.mark.parametrize("method", METHODS)
async def test_introspection(method: str, bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    _, tokens = await login(http, bank)
    client_id = CLIENT_OF[method]

    async def introspect(token: str) -> tuple[int, dict[str, Any]]:
        headers, fields = auth(bank, client_id)
        async with http.post(
            f"{bank.issuer}/introspect", data={**fields, "token": token}, headers=headers
        ) as resp:
            return resp.status, await resp.json()

    status, body = await introspect(tokens["access_token"])
    assert status == 200
    assert body["active"] is True
    assert body["sub"] == "sandbox-user-1" and body["client_id"] == "basic-client"
    assert body["scope"] == "openid profile" and body["exp"] > time.time()
    assert await introspect("unknown") == (200, {"active": False})
    assert await introspect(tokens["refresh_token"]) == (200, {"active": False})


async def test_introspection_needs_client_auth_and_expires(
    bank: SandboxBank, http: aiohttp.ClientSession
) -> None:
    bank.access_token_lifetime = 0
    _, tokens = await login(http, bank)
    async with http.post(
        f"{bank.issuer}/introspect", data={"token": tokens["access_token"]}
    ) as resp:
        assert (resp.status, (await resp.json())["error"]) == (401, "invalid_client")
    _, fields = auth(bank, "post-client")
    async with http.post(
        f"{bank.issuer}/introspect", data={**fields, "token": tokens["access_token"]}
    ) as resp:
        assert await resp.json() == {"active": False}


# -- knobs and recording ---------------------------------------------------------


async def test_token_delay(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    bank.token_delay = 0.5
    form = {"grant_type": "refresh_token", "refresh_token": "x"}
    with pytest.raises(asyncio.TimeoutError):
        await post_token(http, bank, "basic-client", form, timeout=aiohttp.ClientTimeout(total=0.1))
    started = time.monotonic()
    status, _ = await post_token(http, bank, "basic-client", form)
    assert status == 400 and time.monotonic() - started >= 0.5


async def test_recording(bank: SandboxBank, http: aiohttp.ClientSession) -> None:
    with pytest.raises(LookupError):
        bank.last("/token")
    with pytest.raises(NoRecordedRequest):
        bank.last("/token")
    await login(http, bank, "post-client")
    sent = bank.last("/token")
    assert sent.method == "POST" and sent.path == "/token"
    assert sent.form["client_id"] == "post-client" and sent.form["client_secret"] == SECRET
    assert [r.path for r in bank.requests] == ["/authorize", "/token"]
