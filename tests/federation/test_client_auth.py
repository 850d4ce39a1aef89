"""Client authentication at the bank: the exact request each method produces."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fedfakes import CLIENT_ID, FakeBank, new_key, self_signed, settings_for

from federation.bank_http import call_bank
from federation.client_auth import ASSERTION_TYPE, BankClientAuth, build_ssl_context
from federation.settings import TlsSettings


async def send(
    bank: FakeBank, session: aiohttp.ClientSession, auth: BankClientAuth, **kw: Any
) -> None:
    url = f"{bank.issuer}/token"
    form, headers = auth.apply(url, {"grant_type": "authorization_code", "code": "c"}, **kw)
    await call_bank(session, "POST", url, time_limit=1, data=form, headers=headers)


async def test_client_secret_basic(fake_bank: FakeBank, session: aiohttp.ClientSession):
    client_id, secret = "merchant:1 é", "s3cr3t/+ &%="
    settings = settings_for(fake_bank.issuer, client_id=client_id, client_secret=secret)
    await send(fake_bank, session, BankClientAuth(settings))
    got = fake_bank.last("/token")
    scheme, _, blob = got.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    # RFC 6749 §2.3.1: each part form-urlencoded before the Basic encoding
    assert base64.b64decode(blob).decode() == f"{quote_plus(client_id)}:{quote_plus(secret)}"
    assert base64.b64decode(blob).decode() == "merchant%3A1+%C3%A9:s3cr3t%2F%2B+%26%25%3D"
    assert got.form == {"grant_type": "authorization_code", "code": "c"}


async def test_client_secret_post(fake_bank: FakeBank, session: aiohttp.ClientSession):
    settings = settings_for(fake_bank.issuer, client_auth="client_secret_post")
    await send(fake_bank, session, BankClientAuth(settings))
    got = fake_bank.last("/token")
    assert "Authorization" not in got.headers
    assert got.form == {
        "grant_type": "authorization_code",
        "code": "c",
        "client_id": CLIENT_ID,
        "client_secret": "bank-secret",
    }


def _pem(key: Any) -> str:
    return key.export_to_pem(private_key=True, password=None).decode()


@pytest.mark.parametrize(
    ("make", "alg", "kid_from_jwk"),
    [
        (lambda: new_key(kid="ec-1").export(private_key=True), "ES256", True),
        (lambda: new_key("EC", kid="p384", crv="P-384").export(private_key=True), "ES384", True),
        (lambda: new_key("OKP", kid="ed-1").export(private_key=True), "EdDSA", True),
        (lambda: _pem(new_key("RSA")), "RS256", False),
        (lambda: _pem(new_key("EC")), "ES256", False),
    ],
)
async def test_private_key_jwt(
    fake_bank: FakeBank, session: aiohttp.ClientSession, make: Any, alg: str, kid_from_jwk: bool
):
    from jwcrypto import jwk

    text = make()
    key = jwk.JWK.from_json(text) if text.startswith("{") else jwk.JWK.from_pem(text.encode())
    settings = settings_for(
        fake_bank.issuer, client_auth="private_key_jwt", client_secret=None, private_key=text
    )
    auth = BankClientAuth(settings)
    await send(fake_bank, session, auth, now=1_700_000_000)
    await send(fake_bank, session, auth, now=1_700_000_000)
    first, second = [r.form for r in fake_bank.requests if r.path == "/token"]
    assert "Authorization" not in fake_bank.last("/token").headers
    assert first["client_id"] == CLIENT_ID
    assert first["client_assertion_type"] == ASSERTION_TYPE
    assert "client_secret" not in first
    header = jwt.get_unverified_header(first["client_assertion"])
    assert header["alg"] == alg
    assert header["kid"] == (key["kid"] if kid_from_jwk else key.thumbprint())
    pem = key.export_to_pem(private_key=False)
    claims = jwt.decode(
        first["client_assertion"],
        pem,
        algorithms=[alg],
        audience=f"{fake_bank.issuer}/token",
        options={"verify_exp": False},
    )
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == f"{fake_bank.issuer}/token"
    assert claims["iat"] == 1_700_000_000
    assert claims["exp"] == claims["iat"] + 60
    second_claims = jwt.decode(second["client_assertion"], options={"verify_signature": False})
    assert len(claims["jti"]) >= 32
    assert second_claims["jti"] != claims["jti"]


async def test_private_key_jwt_rsa_prefers_ps256_when_the_bank_only_takes_it(
    fake_bank: FakeBank, session: aiohttp.ClientSession
):
    text = _pem(new_key("RSA"))
    settings = settings_for(fake_bank.issuer, client_auth="private_key_jwt", private_key=text)
    await send(fake_bank, session, BankClientAuth(settings), supported_algs=["PS256", "ES256"])
    assertion = fake_bank.last("/token").form["client_assertion"]
    assert jwt.get_unverified_header(assertion)["alg"] == "PS256"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_secret": None}, r"banks\[bank-a\].client_secret: required"),
        ({"client_auth": "private_key_jwt"}, r"banks\[bank-a\].private_key: required"),
        ({"client_auth": "tls_client_auth"}, r"banks\[bank-a\].tls: tls_client_auth needs"),
    ],
)
def test_missing_credentials_fail_at_start(overrides: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        BankClientAuth(settings_for("https://bank.example", **overrides))


async def test_tls_client_auth_presents_the_certificate(
    tmp_path: Path, session: aiohttp.ClientSession
):
    server_cert, server_key = self_signed(tmp_path, "bank", ip="127.0.0.1")
    client_cert, client_key = self_signed(tmp_path, "merchant-client")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(server_cert, server_key)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(client_cert)
    seen: dict[str, Any] = {}

    async def token(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        seen["peer"] = peer
        seen["form"] = dict(await request.post())
        seen["authorization"] = request.headers.get("Authorization")
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/token", token)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_ctx)
    try:
        url = f"https://127.0.0.1:{server.port}/token"
        settings = settings_for(
            "https://127.0.0.1",
            client_auth="tls_client_auth",
            client_secret=None,
            tls=TlsSettings(cert=client_cert, key=client_key),
        )
        auth = BankClientAuth(settings)
        assert auth.ssl_context is not None
        auth.ssl_context.load_verify_locations(server_cert)  # trust the test bank
        form, headers = auth.apply(url, {"grant_type": "refresh_token", "refresh_token": "r"})
        reply = await call_bank(
            session,
            "POST",
            url,
            time_limit=2,
            data=form,
            headers=headers,
            ssl_context=auth.ssl_context,
        )
    finally:
        await server.close()
    assert reply.status == 200
    subject = dict(item[0] for item in seen["peer"]["subject"])
    assert subject["commonName"] == "merchant-client"
    assert seen["form"] == {
        "grant_type": "refresh_token",
        "refresh_token": "r",
        "client_id": CLIENT_ID,
    }
    assert seen["authorization"] is None


def test_no_ssl_context_for_other_methods():
    assert build_ssl_context(settings_for("https://bank.example")) is None
