"""ID tokens of the sandbox bank, signed with pyjwt, with the defects tests ask for."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import jwt

from federation.sandbox.bank import AMR, SandboxBank, new_token
from federation.sandbox.keys import generate_key

ID_TOKEN_LIFETIME = 300


@dataclass(frozen=True)
class IdTokenRequest:
    client_id: str
    sub: str
    scope: str
    acr: str
    auth_time: int
    access_token: str | None  # None: an ID token alone (no at_hash)
    nonce: str | None = None  # None on refresh and CIBA: no nonce in those requests
    permission: str | None = None  # a BankID permission the login approved (its statement)


def at_hash(access_token: str) -> str:
    # OIDC Core §3.1.3.6: left-most half of the hash (SHA-256 for ES256 and RS256).
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def mint_id_token(bank: SandboxBank, req: IdTokenRequest) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        **bank.user_claims(req.scope),
        "iss": bank.issuer,
        "sub": req.sub,
        "aud": req.client_id,
        "azp": req.client_id,
        "iat": now,
        "exp": now + ID_TOKEN_LIFETIME,
        "acr": req.acr,
        "amr": list(AMR),
        "auth_time": req.auth_time,
    }
    if req.access_token is not None:
        claims["at_hash"] = at_hash(req.access_token)
    if req.nonce is not None:
        claims["nonce"] = req.nonce
    digest = permission_digest(bank, req.permission)
    if digest is not None:
        claims["permission_digest"] = digest
    return _sign(bank, _apply_claim_fault(bank, claims))


def permission_digest(bank: SandboxBank, permission: str | None) -> str | None:
    """BankID: "a permission_digest claim, a SHA-256 hash of the permission statement"
    (padded standard base64, as its example shows), per ``bank.permission_digest``."""
    form = bank.permission_digest
    if permission is None or form == "absent":
        return None
    if form == "json":
        data = base64.urlsafe_b64decode(permission + "=" * (-len(permission) % 4))
    elif form == "wrong":
        data = b"another statement"
    else:
        data = permission.encode("ascii")
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _apply_claim_fault(bank: SandboxBank, claims: dict[str, Any]) -> dict[str, Any]:
    fault = bank.id_token_fault
    if fault == "wrong_aud":
        claims.update(aud="someone-else", azp="someone-else")
    elif fault == "wrong_iss":
        claims["iss"] = "https://evil.sandbox.example"
    elif fault == "expired":
        for name in ("iat", "exp", "auth_time"):
            claims[name] -= 3600
    elif fault == "wrong_nonce":
        claims["nonce"] = new_token()
    return claims


def _sign(bank: SandboxBank, claims: dict[str, Any]) -> str:
    fault = bank.id_token_fault
    key = bank.key
    if fault == "alg_none":
        return jwt.encode(claims, "", algorithm="none", headers={"kid": key.kid})
    if fault == "wrong_key":
        key = generate_key(bank.alg, kid=key.kid)  # same kid, key not in /jwks
    elif fault == "unknown_kid":
        key = generate_key(bank.alg)  # a kid /jwks never served
    return jwt.encode(claims, key.private_pem, algorithm=key.alg, headers={"kid": key.kid})
