"""How the proxy authenticates to a bank's token (and PAR) endpoint.

``client_auth`` in the bank's config picks one of:
- ``client_secret_basic``: HTTP Basic; "the client identifier is encoded using
  the application/x-www-form-urlencoded encoding algorithm ... and the encoded
  value is used as the username; the client password is encoded using the same
  algorithm and used as the password" (RFC 6749 §2.3.1).
- ``client_secret_post``: ``client_id`` and ``client_secret`` in the form body.
- ``private_key_jwt``: a signed ``client_assertion`` (RFC 7523 §2.2, §3).
- ``tls_client_auth``: ``client_id`` in the body, the certificate in the TLS
  handshake (RFC 8705 §2); :func:`build_ssl_context` makes the context.
"""

from __future__ import annotations

import base64
import secrets
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import jwt
from jwcrypto import jwk

from federation.settings import BankSettings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60
_EC_ALGS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


@dataclass(frozen=True)
class SigningKey:
    key: Any  # a cryptography private key object
    kid: str
    kty: str
    crv: str | None
    alg: str | None  # from the JWK's "alg", if it named one


def load_signing_key(text: str) -> SigningKey:
    """A private key from JWK JSON or PEM text; kid = its ``kid`` or RFC 7638 thumbprint."""
    stripped = text.strip()
    if stripped.startswith("{"):
        key = jwk.JWK.from_json(stripped)
    else:
        key = jwk.JWK.from_pem(stripped.encode())
    if not key.has_private:
        raise ValueError("private_key holds no private key")
    kid = key.get("kid") or key.thumbprint()
    return SigningKey(
        key.get_op_key("sign"), str(kid), str(key["kty"]), key.get("crv"), key.get("alg")
    )


def signing_alg(key: SigningKey, supported: Sequence[str] | None = None) -> str:
    """ES256/ES384/ES512 by curve, EdDSA, or RS256 (PS256 when the bank only takes PS256)."""
    if key.alg:
        return key.alg
    if key.kty == "EC":
        if key.crv not in _EC_ALGS:
            raise ValueError(f"private_key: unsupported curve {key.crv}")
        return _EC_ALGS[key.crv]
    if key.kty == "OKP":
        return "EdDSA"
    if supported and "RS256" not in supported and "PS256" in supported:
        return "PS256"
    return "RS256"


def client_assertion(
    key: SigningKey, client_id: str, audience: str, *, alg: str, now: float | None = None
) -> str:
    """RFC 7523 §3: iss and sub are the client_id; aud identifies the authorization server."""
    iat = int(time.time() if now is None else now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(32),
        "iat": iat,
        "exp": iat + ASSERTION_LIFETIME,
    }
    return jwt.encode(claims, key.key, algorithm=alg, headers={"kid": key.kid})


def basic_credentials(client_id: str, secret: str) -> str:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def build_ssl_context(settings: BankSettings) -> ssl.SSLContext | None:
    """The TLS context for this bank's requests: the client certificate for ``tls_client_auth``."""
    if settings.client_auth != "tls_client_auth":
        return None
    if settings.tls is None:
        raise ValueError(f"banks[{settings.id}].tls: tls_client_auth needs a cert and key")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.load_cert_chain(settings.tls.cert, settings.tls.key)
    return context


class BankClientAuth:
    """Adds this bank's client authentication to a token-endpoint form request."""

    def __init__(self, settings: BankSettings) -> None:
        self.settings = settings
        self._key: SigningKey | None = None
        method = settings.client_auth
        if method in ("client_secret_basic", "client_secret_post") and not settings.client_secret:
            raise ValueError(f"banks[{settings.id}].client_secret: required by {method}")
        if method == "private_key_jwt":
            if not settings.private_key:
                raise ValueError(f"banks[{settings.id}].private_key: required by private_key_jwt")
            self._key = load_signing_key(settings.private_key)
            signing_alg(self._key)  # an unusable key fails at start-up, not at first login
        self.ssl_context = build_ssl_context(settings)

    def apply(
        self,
        token_endpoint: str,
        data: Mapping[str, str],
        *,
        supported_algs: Sequence[str] | None = None,
        now: float | None = None,
    ) -> tuple[dict[str, str], dict[str, str]]:
        """``(form, headers)`` for a request to the bank.

        The assertion's ``aud`` is the token endpoint URL, also for PAR: RFC 9126
        §2 says the server "MUST accept its issuer identifier, token endpoint
        URL, or pushed authorization request endpoint URL" as audience.
        """
        form = dict(data)
        headers: dict[str, str] = {}
        method = self.settings.client_auth
        client_id = self.settings.client_id
        if method == "client_secret_basic":
            assert self.settings.client_secret is not None
            headers["Authorization"] = basic_credentials(client_id, self.settings.client_secret)
        elif method == "client_secret_post":
            assert self.settings.client_secret is not None
            form.update(client_id=client_id, client_secret=self.settings.client_secret)
        elif method == "private_key_jwt":
            assert self._key is not None
            alg = signing_alg(self._key, supported_algs)
            form["client_id"] = client_id
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = client_assertion(
                self._key, client_id, token_endpoint, alg=alg, now=now
            )
        else:  # tls_client_auth: the certificate is in the handshake (self.ssl_context)
            form["client_id"] = client_id
        return form, headers
