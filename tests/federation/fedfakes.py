"""A tiny fake OpenID Provider and helpers for the federation unit tests.

Each endpoint's answer is a knob; every request is recorded with its form and
headers, so tests assert exactly what the adapter sent (Gafaelfawr's habit).
The full-featured fake for whole flows is ``federation.sandbox``.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jwcrypto import jwk

from federation.settings import BankSettings

CLIENT_ID = "merchant"
SECRET = "bank-secret"


def new_key(kty: str = "EC", kid: str | None = None, **params: Any) -> jwk.JWK:
    if kty == "EC":
        params.setdefault("crv", "P-256")
    if kty == "RSA":
        params.setdefault("size", 2048)
    if kty == "OKP":
        params.setdefault("crv", "Ed25519")
    key = jwk.JWK.generate(kty=kty, **params)
    if kid is not None:
        key["kid"] = kid
    return key


def public(key: jwk.JWK) -> dict[str, Any]:
    pub: dict[str, Any] = dict(key.export_public(as_dict=True))
    if "kid" in key:
        pub["kid"] = key["kid"]
    return pub


def sign(claims: dict[str, Any], key: jwk.JWK, alg: str = "ES256", **headers: Any) -> str:
    pem = key.export_to_pem(private_key=True, password=None)
    head = {"kid": key["kid"]} if "kid" in key else {}
    head.update(headers)
    return jwt.encode(claims, pem, algorithm=alg, headers=head)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeBank:
    issuer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # merged into the discovery document
    discovery_status: int = 200
    discovery_issuer: str | None = None  # None: the real issuer
    keys: list[jwk.JWK] = field(default_factory=list)
    jwks_body: dict[str, Any] | None = None  # overrides the published key set
    jwks_status: int = 200
    delays: dict[str, float] = field(default_factory=dict)  # path -> seconds
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)  # path -> (status, json)
    # path -> answers given once each, in order, before ``answers`` (a CIBA poll sequence)
    queued: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    backchannel: bool = False  # advertise CIBA poll mode (backchannel_authentication_endpoint)
    hits: Counter[str] = field(default_factory=Counter)
    requests: list[Recorded] = field(default_factory=list)

    def last(self, path: str) -> Recorded:
        return next(r for r in reversed(self.requests) if r.path == path)

    def doc(self) -> dict[str, Any]:
        iss = self.issuer
        return {
            "issuer": self.discovery_issuer if self.discovery_issuer is not None else iss,
            "authorization_endpoint": f"{iss}/authorize",
            "token_endpoint": f"{iss}/token",
            "userinfo_endpoint": f"{iss}/userinfo",
            "jwks_uri": f"{iss}/jwks",
            "id_token_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
            **(self.ciba_doc() if self.backchannel else {}),
            **self.extra,
        }

    def ciba_doc(self) -> dict[str, Any]:
        return {
            "backchannel_authentication_endpoint": f"{self.issuer}/bc-authorize",
            "backchannel_token_delivery_modes_supported": ["poll"],
            "grant_types_supported": ["urn:openid:params:grant-type:ciba", "refresh_token"],
        }

    def id_token(self, key: jwk.JWK | None = None, alg: str = "ES256", **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": "n-0",
        }
        body.update(claims)
        return sign({k: v for k, v in body.items() if v is not None}, key or self.keys[0], alg)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(
            Recorded(request.method, path, dict(request.query), form, dict(request.headers))
        )
        if path in self.delays:
            await asyncio.sleep(self.delays[path])
        if self.queued.get(path):
            return _reply(*self.queued[path].pop(0))
        if path in self.answers:
            return _reply(*self.answers[path])
        if path == "/.well-known/openid-configuration":
            return web.json_response(self.doc(), status=self.discovery_status)
        if path == "/jwks":
            body = self.jwks_body or {"keys": [public(k) for k in self.keys]}
            return web.json_response(body, status=self.jwks_status)
        return web.json_response({"error": "not_found"}, status=404)


def _reply(status: int, body: Any) -> web.Response:
    if isinstance(body, str):
        return web.Response(status=status, text=body)
    return web.json_response(body, status=status)


def settings_for(issuer: str, **overrides: Any) -> BankSettings:
    values: dict[str, Any] = {
        "id": "bank-a",
        "kind": "oidc",
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_auth": "client_secret_basic",
        "client_secret": SECRET,
        "acr_values": ("urn:merchant:acr:bank-a",),
        "timeout": 0.3,
    }
    values.update(overrides)
    return BankSettings(**values)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def self_signed(folder: Path, name: str, ip: str | None = None) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )
    if ip:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))])
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(key, hashes.SHA256())
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)
