"""OidcRedirectAdapter against the sandbox bank (whole flows) and the fake bank (edge cases)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import aiohttp
import pytest
from fedfakes import CLIENT_ID, SECRET, FakeBank, new_key, self_signed, settings_for
from jwcrypto import jwk

from federation.oidc import OidcRedirectAdapter
from federation.protocol import BankError, BankTokens, RedirectAdapter, StartRequest
from federation.sandbox import SandboxBank, SandboxClient, serve_sandbox
from federation.settings import TlsSettings

REDIRECT = "https://proxy.example/callback/bank-a"
CLIENT_KEY = new_key(kid="merchant-key-1")
FAULT_DETAILS = {
    "wrong_key": "id_token: signature does not verify",
    "alg_none": "id_token: alg 'none' is refused",
    "wrong_aud": "id_token: aud does not contain our client_id",
    "wrong_iss": "id_token: iss does not match the bank's issuer",
    "expired": "id_token: exp is in the past",
    "wrong_nonce": "id_token: nonce does not match the one sent",
    "unknown_kid": "id_token: no signing key: no key for kid",
}


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxBank]:
    client = SandboxClient(CLIENT_ID, [REDIRECT], "client_secret_basic", secret=SECRET)
    async with serve_sandbox(SandboxBank(clients=[client])) as served:
        yield served


def adapter_for(
    bank: SandboxBank | FakeBank, session: aiohttp.ClientSession, **overrides: Any
) -> OidcRedirectAdapter:
    return OidcRedirectAdapter(settings_for(bank.issuer, **overrides), session)


def use_method(bank: SandboxBank, method: str) -> dict[str, Any]:
    """Register our client at the sandbox with ``method``; the adapter settings to match."""
    client = bank.clients[CLIENT_ID]
    client.auth_method = method
    if method == "private_key_jwt":
        client.jwks = {"keys": [CLIENT_KEY.export_public(as_dict=True)]}
        return {
            "client_auth": method,
            "client_secret": None,
            "private_key": CLIENT_KEY.export(private_key=True),
        }
    return {"client_auth": method}


async def authorize(session: aiohttp.ClientSession, url: str) -> dict[str, str]:
    """Follow the bank's authorization URL to the callback; the callback's query."""
    async with session.get(url, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        location = resp.headers["Location"]
    assert location.startswith(REDIRECT)
    return dict(parse_qsl(urlsplit(location).query))


async def login(
    adapter: OidcRedirectAdapter, session: aiohttp.ClientSession, **start: Any
) -> tuple[Any, dict[str, Any], dict[str, str]]:
    begun = await adapter.start(StartRequest(state="st-1", redirect_uri=REDIRECT, **start))
    params = await authorize(session, begun.url)
    return begun, dict(begun.conn_data), params


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# -- whole flows against the sandbox -------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
async def test_login_with_each_client_auth(
    sandbox: SandboxBank, session: aiohttp.ClientSession, method: str
):
    adapter = adapter_for(
        sandbox,
        session,
        scopes=("openid", "profile"),
        upstream_acr_values=("urn:sandbox:loa:high",),
        **use_method(sandbox, method),
    )
    assert isinstance(adapter, RedirectAdapter)
    _, conn, params = await login(adapter, session, login_hint="alice")
    assert params["state"] == "st-1"
    sent = sandbox.last("/authorize").query
    assert sent["nonce"] == conn["nonce"]
    assert sent["code_challenge"] == s256(conn["code_verifier"])
    assert sent["acr_values"] == "urn:sandbox:loa:high"
    assert sent["login_hint"] == "alice"

    result = await adapter.finish(conn, params, REDIRECT)

    token_form = sandbox.last("/token").form
    assert token_form["grant_type"] == "authorization_code"
    assert token_form["code"] == params["code"]
    assert token_form["redirect_uri"] == REDIRECT
    assert token_form["code_verifier"] == conn["code_verifier"]
    identity, tokens = result.identity, result.tokens
    assert identity.sub == "sandbox-user-1"
    assert identity.acr == "urn:sandbox:loa:high"
    assert identity.amr == ("pwd", "mfa")
    assert isinstance(identity.auth_time, int)
    assert identity.claims["name"] == "Alice Sandbox"
    assert tokens.access_token and tokens.refresh_token
    assert tokens.token_type == "Bearer"
    assert tokens.scope == "openid profile"
    assert tokens.expires_at is not None and abs(tokens.expires_at - (time.time() + 300)) < 5


async def test_userinfo_is_read_with_the_access_token(
    sandbox: SandboxBank, session: aiohttp.ClientSession
):
    adapter = adapter_for(sandbox, session, userinfo=True, scopes=("openid", "profile"))
    _, conn, params = await login(adapter, session)
    result = await adapter.finish(conn, params, REDIRECT)
    sent = sandbox.last("/userinfo").headers["Authorization"]
    assert sent == f"Bearer {result.tokens.access_token}"
    assert result.identity.claims["family_name"] == "Sandbox"


async def test_user_denies(sandbox: SandboxBank, session: aiohttp.ClientSession):
    sandbox.deny = True
    adapter = adapter_for(sandbox, session)
    _, conn, params = await login(adapter, session)
    with pytest.raises(BankError) as info:
        await adapter.finish(conn, params, REDIRECT)
    assert info.value.error == "access_denied"
    assert info.value.description == "the user or the bank refused the login"
    assert "the user denied the request" in info.value.detail  # the bank's text: logs only


@pytest.mark.parametrize("fault", sorted(FAULT_DETAILS))
async def test_id_token_faults(sandbox: SandboxBank, session: aiohttp.ClientSession, fault: str):
    adapter = adapter_for(sandbox, session)
    _, conn, params = await login(adapter, session)
    sandbox.id_token_fault = fault
    with pytest.raises(BankError) as info:
        await adapter.finish(conn, params, REDIRECT)
    assert info.value.error == "server_error"
    assert info.value.description == "the bank's ID token could not be validated"
    assert info.value.detail.startswith(FAULT_DETAILS[fault])


async def test_rotated_bank_key(sandbox: SandboxBank, session: aiohttp.ClientSession):
    adapter = adapter_for(sandbox, session, jwks_cooldown=0.0)
    _, conn, params = await login(adapter, session)
    await adapter.finish(conn, params, REDIRECT)
    sandbox.rotate_keys()
    _, conn, params = await login(adapter, session)
    assert (await adapter.finish(conn, params, REDIRECT)).identity.sub == "sandbox-user-1"
    assert sum(1 for r in sandbox.requests if r.path == "/jwks") == 2


async def test_iss_parameter_required_when_advertised(
    sandbox: SandboxBank, session: aiohttp.ClientSession
):
    adapter = adapter_for(sandbox, session)
    _, conn, params = await login(adapter, session)
    assert params["iss"] == sandbox.issuer
    del params["iss"]
    with pytest.raises(BankError) as info:
        await adapter.finish(conn, params, REDIRECT)
    assert (info.value.error, info.value.detail) == ("server_error", "callback: iss missing")
    assert not any(r.path == "/token" for r in sandbox.requests)  # never proceeded


async def test_iss_parameter_optional_when_not_advertised(
    sandbox: SandboxBank, session: aiohttp.ClientSession
):
    sandbox.iss_parameter = False
    adapter = adapter_for(sandbox, session)
    _, conn, params = await login(adapter, session)
    assert "iss" not in params
    assert (await adapter.finish(conn, params, REDIRECT)).identity.sub == "sandbox-user-1"


async def test_iss_mismatch_is_rejected_even_when_not_advertised(
    sandbox: SandboxBank, session: aiohttp.ClientSession
):
    sandbox.iss_parameter = False
    adapter = adapter_for(sandbox, session)
    _, conn, params = await login(adapter, session)
    for iss in ("https://attacker.example", sandbox.issuer + "/"):
        with pytest.raises(BankError) as info:
            await adapter.finish(conn, {**params, "iss": iss}, REDIRECT)
        assert (info.value.error, info.value.detail) == ("server_error", "callback: iss mismatch")
    assert not any(r.path == "/token" for r in sandbox.requests)


async def test_error_response_from_another_issuer_is_not_believed(
    sandbox: SandboxBank, session: aiohttp.ClientSession
):
    adapter = adapter_for(sandbox, session)
    params = {"error": "access_denied", "state": "st-1", "iss": "https://attacker.example"}
    with pytest.raises(BankError) as info:
        await adapter.finish({"nonce": "n", "code_verifier": "v"}, params, REDIRECT)
    assert info.value.error == "server_error"


async def test_token_endpoint_timeout(sandbox: SandboxBank, session: aiohttp.ClientSession):
    adapter = adapter_for(sandbox, session, timeout=0.3)
    _, conn, params = await login(adapter, session)
    sandbox.token_delay = 2.0
    started = time.monotonic()
    with pytest.raises(BankError) as info:
        await adapter.finish(conn, params, REDIRECT)
    elapsed = time.monotonic() - started
    assert info.value.error == "temporarily_unavailable"
    assert info.value.description == "the bank did not answer in time"
    assert 0.25 < elapsed < 0.9


async def test_refresh(sandbox: SandboxBank, session: aiohttp.ClientSession):
    adapter = adapter_for(sandbox, session, scopes=("openid", "profile"))
    _, conn, params = await login(adapter, session)
    tokens = (await adapter.finish(conn, params, REDIRECT)).tokens
    fresh = await adapter.refresh(tokens)
    assert sandbox.last("/token").form["grant_type"] == "refresh_token"
    assert sandbox.last("/token").form["refresh_token"] == tokens.refresh_token
    assert fresh.access_token != tokens.access_token
    assert fresh.refresh_token and fresh.refresh_token != tokens.refresh_token  # rotated
    with pytest.raises(BankError) as info:
        await adapter.refresh(tokens)  # the spent one
    assert info.value.error == "invalid_grant"
    assert "error invalid_grant" in info.value.detail


async def test_refresh_refused_and_timeout(sandbox: SandboxBank, session: aiohttp.ClientSession):
    adapter = adapter_for(sandbox, session, timeout=0.3)
    _, conn, params = await login(adapter, session)
    tokens = (await adapter.finish(conn, params, REDIRECT)).tokens
    sandbox.refuse_refresh = True
    with pytest.raises(BankError) as info:
        await adapter.refresh(tokens)
    assert info.value.error == "invalid_grant"
    sandbox.refuse_refresh = False
    sandbox.token_delay = 2.0
    started = time.monotonic()
    with pytest.raises(BankError) as info:
        await adapter.refresh(tokens)
    assert info.value.error == "temporarily_unavailable"
    assert time.monotonic() - started < 0.9
    with pytest.raises(BankError) as info:
        await adapter.refresh(BankTokens(access_token="at"))
    assert info.value.error == "invalid_grant"


async def test_status(sandbox: SandboxBank, session: aiohttp.ClientSession):
    assert await adapter_for(sandbox, session).status() == {"metadata": "ok"}
    down = OidcRedirectAdapter(settings_for("http://127.0.0.1:9"), session)
    assert (await down.status())["metadata"] == "unavailable"


# -- edge cases against the fake bank ------------------------------------------


async def test_authorization_url_keeps_the_endpoint_query(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    fake_bank.extra["authorization_endpoint"] = f"{fake_bank.issuer}/authorize?tenant=t1&state=x#f"
    adapter = adapter_for(fake_bank, session, scopes=("openid", "profile"))
    begun = await adapter.start(StartRequest(state="st-1", redirect_uri=REDIRECT))
    parts = urlsplit(begun.url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{fake_bank.issuer}/authorize"
    assert parts.fragment == ""
    assert {k: v[0] for k, v in query.items()} == {
        "tenant": "t1",
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "st-1",  # ours, not the endpoint's
        "nonce": begun.conn_data["nonce"],
        "code_challenge": s256(begun.conn_data["code_verifier"]),
        "code_challenge_method": "S256",
    }
    assert all(len(v) == 1 for v in query.values())
    assert set(begun.conn_data) == {"nonce", "code_verifier"}
    assert len(begun.conn_data["nonce"]) >= 43


async def test_par(fake_bank: FakeBank, session: aiohttp.ClientSession):
    fake_bank.extra["pushed_authorization_request_endpoint"] = f"{fake_bank.issuer}/par"
    fake_bank.answers["/par"] = (201, {"request_uri": "urn:bank:req:1", "expires_in": 60})
    adapter = adapter_for(fake_bank, session, use_par=True)
    begun = await adapter.start(
        StartRequest(state="st-1", redirect_uri=REDIRECT, login_hint="alice")
    )
    query = dict(parse_qsl(urlsplit(begun.url).query))
    assert query == {"client_id": CLIENT_ID, "request_uri": "urn:bank:req:1"}
    pushed = fake_bank.last("/par")
    assert pushed.headers["Authorization"].startswith("Basic ")
    assert pushed.form["state"] == "st-1"
    assert pushed.form["nonce"] == begun.conn_data["nonce"]
    assert pushed.form["login_hint"] == "alice"
    assert pushed.form["code_challenge_method"] == "S256"


async def test_par_refused(fake_bank: FakeBank, session: aiohttp.ClientSession):
    fake_bank.extra["pushed_authorization_request_endpoint"] = f"{fake_bank.issuer}/par"
    fake_bank.answers["/par"] = (400, {"error": "invalid_request"})
    adapter = adapter_for(fake_bank, session, use_par=True)
    with pytest.raises(BankError) as info:
        await adapter.start(StartRequest(state="st-1", redirect_uri=REDIRECT))
    assert info.value.error == "server_error"
    assert info.value.detail == "PAR: HTTP 400, error invalid_request"


async def test_par_without_endpoint_falls_back(fake_bank: FakeBank, session: aiohttp.ClientSession):
    adapter = adapter_for(fake_bank, session, use_par=True)
    begun = await adapter.start(StartRequest(state="st-1", redirect_uri=REDIRECT))
    assert "request_uri" not in begun.url and "nonce=" in begun.url


async def test_start_when_metadata_unreachable(session: aiohttp.ClientSession):
    adapter = OidcRedirectAdapter(settings_for("http://127.0.0.1:9"), session)
    with pytest.raises(BankError) as info:
        await adapter.start(StartRequest(state="s", redirect_uri=REDIRECT))
    assert info.value.error == "temporarily_unavailable"


def token_answer(bank: FakeBank, **fields: Any) -> dict[str, Any]:
    body = {
        "access_token": "at-1",
        "token_type": "Bearer",
        "expires_in": 60,
        "id_token": bank.id_token(),
        "refresh_token": "rt-1",
        "scope": "openid",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


CONN = {"nonce": "n-0", "code_verifier": "v" * 43}


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        ((400, {"error": "invalid_grant"}), "token endpoint: HTTP 400, error invalid_grant"),
        ((500, "oops"), "token endpoint: HTTP 500, error -"),
        ((200, "<html>"), "token endpoint: HTTP 200, error -"),
        ((200, {"access_token": "at"}), "token response: no id_token"),
        # nested deeper than the json module recurses: RecursionError, not ValueError
        ((200, "[" * 200_000), "token endpoint: HTTP 200, error -"),
    ],
)
async def test_token_endpoint_failures(
    fake_bank: FakeBank, session: aiohttp.ClientSession, answer: Any, detail: str
):
    fake_bank.answers["/token"] = answer
    with pytest.raises(BankError) as info:
        await adapter_for(fake_bank, session).finish(CONN, {"code": "c"}, REDIRECT)
    assert (info.value.error, info.value.detail) == ("server_error", detail)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 10**400],
                         ids=["NaN", "Infinity", "-Infinity", "huge int"])
async def test_a_number_that_is_not_finite_counts_as_absent(
    fake_bank: FakeBank, session: aiohttp.ClientSession, value: float
):
    """expires_in (RFC 6749 §5.1, RECOMMENDED) and auth_time (OIDC Core §2) that are no
    usable number are left out, as if the bank had not sent them: no 500 at the callback."""
    fake_bank.answers["/token"] = (
        200, token_answer(fake_bank, expires_in=value,
                          id_token=fake_bank.id_token(auth_time=value)))
    result = await adapter_for(fake_bank, session).finish(CONN, {"code": "c"}, REDIRECT)
    assert result.tokens.expires_at is None
    assert result.identity.auth_time is None


async def test_no_access_token(fake_bank: FakeBank, session: aiohttp.ClientSession):
    fake_bank.answers["/token"] = (200, token_answer(fake_bank, access_token=None))
    with pytest.raises(BankError) as info:
        await adapter_for(fake_bank, session).finish(CONN, {"code": "c"}, REDIRECT)
    assert info.value.error == "server_error"
    assert "no access_token" in info.value.detail


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"error": "login_required"}, "login_required"),
        ({"error": "interaction_required"}, "interaction_required"),
        ({"error": "consent_required"}, "consent_required"),
        ({"error": "account_selection_required"}, "account_selection_required"),
        ({"error": "temporarily_unavailable"}, "temporarily_unavailable"),
        ({"error": "invalid_request", "error_description": "<script>x</script>"}, "server_error"),
        ({"error": "server_error"}, "server_error"),
        ({"state": "st-1"}, "server_error"),  # no code
    ],
)
async def test_callback_errors(
    fake_bank: FakeBank, session: aiohttp.ClientSession, params: dict[str, str], error: str
):
    with pytest.raises(BankError) as info:
        await adapter_for(fake_bank, session).finish(CONN, params, REDIRECT)
    assert info.value.error == error
    assert "<script>" not in info.value.description
    assert not any(r.path == "/token" for r in fake_bank.requests)


async def test_userinfo_merge_and_sub_check(fake_bank: FakeBank, session: aiohttp.ClientSession):
    fake_bank.answers["/token"] = (200, token_answer(fake_bank))
    fake_bank.answers["/userinfo"] = (200, {"sub": "user-1", "name": "Ann", "iss": "forged"})
    adapter = adapter_for(fake_bank, session, userinfo=True)
    claims = (await adapter.finish(CONN, {"code": "c"}, REDIRECT)).identity.claims
    assert claims["name"] == "Ann"
    assert claims["iss"] == fake_bank.issuer  # the signed ID token wins
    fake_bank.answers["/userinfo"] = (200, {"sub": "someone-else", "name": "Eve"})
    with pytest.raises(BankError) as info:
        await adapter.finish(CONN, {"code": "c"}, REDIRECT)
    assert (info.value.error, info.value.detail) == ("server_error", "userinfo: sub mismatch")


async def test_refresh_keeps_old_refresh_token_and_scope(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    fake_bank.answers["/token"] = (200, {"access_token": "at-2", "token_type": "bearer"})
    old = BankTokens(access_token="at-1", refresh_token="rt-1", scope="openid accounts")
    fresh = await adapter_for(fake_bank, session).refresh(old)
    assert fresh == BankTokens(
        access_token="at-2",
        token_type="bearer",
        expires_at=None,
        refresh_token="rt-1",
        scope="openid accounts",
    )
    form = fake_bank.last("/token").form
    assert form == {"grant_type": "refresh_token", "refresh_token": "rt-1"}


async def test_refresh_server_error_is_invalid_grant(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    fake_bank.answers["/token"] = (503, {"error": "temporarily_unavailable"})
    with pytest.raises(BankError) as info:
        await adapter_for(fake_bank, session).refresh(BankTokens("at", refresh_token="rt"))
    assert info.value.error == "invalid_grant"


def test_bad_private_key_fails_at_construction(session: aiohttp.ClientSession):
    rsa_pub = jwk.JWK.generate(kty="RSA", size=2048).export_public()
    with pytest.raises(ValueError, match="no private key"):
        OidcRedirectAdapter(
            settings_for(
                "https://bank.example", client_auth="private_key_jwt", private_key=rsa_pub
            ),
            session,
        )


async def test_tls_client_auth_uses_mtls_endpoint_aliases(
    fake_bank: FakeBank, session: aiohttp.ClientSession, tmp_path: Path
):
    cert, key = self_signed(tmp_path, "merchant-client")
    fake_bank.extra["mtls_endpoint_aliases"] = {"token_endpoint": f"{fake_bank.issuer}/mtls/token"}
    fake_bank.answers["/mtls/token"] = (200, token_answer(fake_bank))
    adapter = adapter_for(
        fake_bank,
        session,
        client_auth="tls_client_auth",
        client_secret=None,
        tls=TlsSettings(cert=cert, key=key),
    )
    await adapter.finish(CONN, {"code": "c"}, REDIRECT)
    sent = fake_bank.last("/mtls/token")
    assert sent.form == {
        "grant_type": "authorization_code",
        "code": "c",
        "redirect_uri": REDIRECT,
        "code_verifier": CONN["code_verifier"],
        "client_id": CLIENT_ID,
    }
    assert "Authorization" not in sent.headers
    assert fake_bank.hits["/token"] == 0


# -- browser-less App2App: forwarding native_callback_uri -----------------------

NATIVE_CB = "https://merchant.example/app2app/callback"


def native_start(**fields: Any) -> StartRequest:
    values: dict[str, Any] = {
        "state": "st-1",
        "redirect_uri": REDIRECT,
        "login_hint": "alice",
        "native_callback_uri": NATIVE_CB,
    }
    values.update(fields)
    return StartRequest(**values)


async def test_native_endpoint_gets_the_native_callback_uri(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    fake_bank.extra["native_authorization_endpoint"] = f"{fake_bank.issuer}/native/authorize"
    adapter = adapter_for(fake_bank, session)
    begun = await adapter.start(native_start())
    assert begun.native is True
    parts = urlsplit(begun.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{fake_bank.issuer}/native/authorize"
    assert dict(parse_qsl(parts.query)) == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": "st-1",
        "nonce": begun.conn_data["nonce"],
        "code_challenge": s256(begun.conn_data["code_verifier"]),
        "code_challenge_method": "S256",
        "login_hint": "alice",
        "native_callback_uri": NATIVE_CB,
    }
    assert set(begun.conn_data) == {"nonce", "code_verifier"}


@pytest.mark.parametrize(
    ("advertised", "overrides", "fields"),
    [
        (None, {}, {}),  # the bank has no native endpoint
        (42, {}, {}),  # nor a usable one
        ("", {}, {}),
        ("NATIVE", {"native": False}, {}),  # the operator turned native logins off
        ("NATIVE", {}, {"native_callback_uri": None}),  # the merchant app did not ask
    ],
)
async def test_no_native_forwarding(
    fake_bank: FakeBank,
    session: aiohttp.ClientSession,
    advertised: Any,
    overrides: dict[str, Any],
    fields: dict[str, Any],
):
    if advertised == "NATIVE":
        advertised = f"{fake_bank.issuer}/native/authorize"
    if advertised is not None:
        fake_bank.extra["native_authorization_endpoint"] = advertised
    begun = await adapter_for(fake_bank, session, **overrides).start(native_start(**fields))
    assert begun.native is False
    parts = urlsplit(begun.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{fake_bank.issuer}/authorize"
    assert "native_callback_uri" not in dict(parse_qsl(parts.query))


@pytest.mark.parametrize("trigger", ["use_par", "require_pushed_authorization_requests"])
async def test_native_with_par(fake_bank: FakeBank, session: aiohttp.ClientSession, trigger: str):
    fake_bank.extra["native_authorization_endpoint"] = f"{fake_bank.issuer}/native/authorize"
    fake_bank.extra["pushed_authorization_request_endpoint"] = f"{fake_bank.issuer}/par"
    fake_bank.answers["/par"] = (201, {"request_uri": "urn:bank:req:1", "expires_in": 60})
    overrides: dict[str, Any] = {}
    if trigger == "use_par":
        overrides["use_par"] = True
    else:
        fake_bank.extra["require_pushed_authorization_requests"] = True
    begun = await adapter_for(fake_bank, session, **overrides).start(native_start())
    assert begun.native is True
    parts = urlsplit(begun.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{fake_bank.issuer}/native/authorize"
    assert dict(parse_qsl(parts.query)) == {"client_id": CLIENT_ID, "request_uri": "urn:bank:req:1"}
    pushed = fake_bank.last("/par").form
    assert pushed["native_callback_uri"] == NATIVE_CB
    assert pushed["redirect_uri"] == REDIRECT
    assert pushed["nonce"] == begun.conn_data["nonce"]


async def test_plain_par_does_not_forward(fake_bank: FakeBank, session: aiohttp.ClientSession):
    fake_bank.extra["pushed_authorization_request_endpoint"] = f"{fake_bank.issuer}/par"
    fake_bank.answers["/par"] = (201, {"request_uri": "urn:bank:req:1", "expires_in": 60})
    begun = await adapter_for(fake_bank, session, use_par=True).start(native_start())
    assert begun.native is False
    assert begun.url.startswith(f"{fake_bank.issuer}/authorize?")
    assert "native_callback_uri" not in fake_bank.last("/par").form
