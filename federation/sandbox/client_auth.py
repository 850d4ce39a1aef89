"""Client authentication at /token and /introspect, exactly per the client's
registered ``auth_method`` (RFC 6749 §2.3, RFC 7523 §2.2 / OIDC Core §9)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence
from typing import Protocol
from urllib.parse import unquote_plus

import jwt
from aiohttp import web

from federation.sandbox.errors import invalid_client
from federation.sandbox.models import SandboxClient


class Registrar(Protocol):
    """Who registers clients: the sandbox bank, and the sandbox session broker."""

    clients: dict[str, SandboxClient]
    seen_assertion_ids: set[str]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ("ES256", "ES384", "RS256", "RS384", "PS256", "PS384", "EdDSA")


def _basic_credentials(header: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(header[len("Basic ") :].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client("malformed Basic credentials", basic=True) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise invalid_client("malformed Basic credentials", basic=True)
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


def _same(a: str, b: str | None) -> bool:
    return b is not None and hmac.compare_digest(a.encode(), b.encode())


def authenticate_client(
    bank: Registrar,
    request: web.Request,
    form: Mapping[str, str],
    audiences: Sequence[str],
) -> SandboxClient:
    """The authenticated client, or OAuthError ``invalid_client`` (401)."""
    header = request.headers.get("Authorization", "")
    basic = header[:6].lower() == "basic "
    assertion = form.get("client_assertion")
    used = [basic, "client_secret" in form, assertion is not None]
    if sum(used) > 1:
        # RFC 6749 §2.3: "The client MUST NOT use more than one authentication method".
        raise invalid_client("more than one client authentication method", basic=basic)
    secret: str | None = form.get("client_secret")
    client_id = form.get("client_id")
    if basic:
        client_id, secret = _basic_credentials(header)
        if form.get("client_id", client_id) != client_id:
            raise invalid_client("client_id differs from the Basic credentials", basic=True)
    elif assertion is not None and client_id is None:
        try:
            client_id = str(jwt.decode(assertion, options={"verify_signature": False})["iss"])
        except (jwt.PyJWTError, KeyError):
            raise invalid_client("client_assertion is not a JWT with iss") from None
    client = bank.clients.get(client_id or "")
    if client is None:
        raise invalid_client("unknown client or no client authentication", basic=basic)
    method = client.auth_method
    if method == "client_secret_basic":
        if not basic or not _same(secret or "", client.secret):
            raise invalid_client("client_secret_basic authentication failed", basic=basic)
    elif method == "client_secret_post":
        if basic or not _same(secret or "", client.secret):
            raise invalid_client("client_secret_post authentication failed", basic=basic)
    elif method == "private_key_jwt":
        if form.get("client_assertion_type") != JWT_BEARER or assertion is None:
            raise invalid_client("private_key_jwt requires a jwt-bearer client_assertion")
        _verify_assertion(bank, client, assertion, audiences)
    else:
        raise invalid_client(f"client registered with unsupported auth_method {method}")
    return client


def _verify_assertion(
    bank: Registrar, client: SandboxClient, assertion: str, audiences: Sequence[str]
) -> None:
    try:
        header = jwt.get_unverified_header(assertion)
        alg = header.get("alg")
        if alg not in ASSERTION_ALGS:
            raise invalid_client(f"client_assertion alg {alg!r} is not accepted")
        keys = jwt.PyJWKSet.from_dict(client.jwks or {"keys": []}).keys
        kid = header.get("kid")
        candidates = [k for k in keys if kid is None or k.key_id == kid]
        if not candidates:
            raise invalid_client("client_assertion kid is not in the client's jwks")
        claims = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    assertion,
                    key.key,
                    algorithms=[alg],
                    audience=list(audiences),
                    issuer=client.client_id,
                    options={"require": ["iss", "sub", "aud", "exp", "jti"]},
                    leeway=5,
                )
                break
            except jwt.InvalidSignatureError:
                continue
        if claims is None:
            raise invalid_client("client_assertion signature does not verify")
    except jwt.PyJWTError as exc:
        raise invalid_client(f"client_assertion rejected: {exc}") from None
    if claims["sub"] != client.client_id:
        raise invalid_client("client_assertion sub must be the client_id")
    jti = str(claims["jti"])
    if jti in bank.seen_assertion_ids:
        raise invalid_client("client_assertion jti was already used")
    bank.seen_assertion_ids.add(jti)
