"""Signing keys of the sandbox bank: generated with jwcrypto, used through pyjwt."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from jwcrypto import jwk

SUPPORTED_ALGS = ("ES256", "RS256")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private_pem: bytes  # what pyjwt signs with
    public_jwk: dict[str, Any]  # what /jwks serves (kid, use, alg included)


def generate_key(alg: str, kid: str | None = None) -> SigningKey:
    """A fresh key for ``alg`` (EC P-256 for ES256, RSA 2048 for RS256).

    ``kid`` defaults to a random value; the faults pass one on purpose (a rogue
    key that claims the real key's kid).
    """
    if alg == "ES256":
        key = jwk.JWK.generate(kty="EC", crv="P-256")
    elif alg == "RS256":
        key = jwk.JWK.generate(kty="RSA", size=2048)
    else:
        raise ValueError(f"unsupported alg {alg!r}; use one of {SUPPORTED_ALGS}")
    kid = kid or f"sandbox-{secrets.token_urlsafe(8)}"
    public: dict[str, Any] = dict(key.export_public(as_dict=True))
    public.update(kid=kid, use="sig", alg=alg)
    pem: bytes = key.export_to_pem(private_key=True, password=None)
    return SigningKey(kid=kid, alg=alg, private_pem=pem, public_jwk=public)
