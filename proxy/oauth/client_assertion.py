"""private_key_jwt for merchant clients (RFC 7523 §2.2 and §3, OIDC Core §9)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import jwt

from proxy.oauth.errors import OAuthError
from proxy.oauth.jose import DATE_CLAIMS, numeric_date
from proxy.store import Store

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# asymmetric only: a client that has a JWKS signs with its private key
ALGS = ("ES256", "ES384", "EdDSA", "RS256", "PS256")
# FAPI 2.0 Security Profile §5.4.1: "shall use PS256, ES256, or EdDSA (using the Ed25519
# variant)" (RS256 is not among them)
FAPI2_ALGS = ("ES256", "EdDSA", "PS256")
LEEWAY = 30
# assertions are short-lived; this bounds how long a jti must be remembered
MAX_LIFETIME = 600


def _invalid(description: str, detail: str = "") -> OAuthError:
    return OAuthError("invalid_client", description, status=401, detail=detail)


def asserted_client_id(form: Mapping[str, str]) -> str:
    """The client an assertion claims to be (its ``iss``), before anything is verified."""
    if form.get("client_assertion_type") != JWT_BEARER:
        raise _invalid(f"client_assertion_type must be {JWT_BEARER}")
    try:
        claims = jwt.decode(form.get("client_assertion", ""),
                            options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _invalid("client_assertion is not a JWT") from exc
    issuer = claims.get("iss")
    if not isinstance(issuer, str):
        raise _invalid("client_assertion has no iss")
    if form.get("client_id") not in (None, issuer):
        raise OAuthError("invalid_request", "client_id differs from the assertion's iss")
    return issuer


class AssertingParty(Protocol):
    """A merchant client or a resource server that may use private_key_jwt."""

    @property
    def client_id(self) -> str: ...
    @property
    def jwks(self) -> Mapping[str, object] | None: ...


async def verify_assertion(
    client: AssertingParty,
    assertion: str,
    audiences: list[str],
    store: Store,
    now: int,
    *,
    fapi2: bool = False,
) -> None:
    """RFC 7523 §3: the JWT "MUST contain an "iss" (issuer) claim that contains a unique
    identifier for the entity that issued the JWT" (the client_id, and so is "sub" for
    client authentication), an "aud" that "identifies the authorization server as an
    intended audience", an "exp"; and "The authorization server MAY ensure that JWTs are
    not replayed by maintaining the set of used "jti" values": we do, until exp."""
    if not client.jwks:
        raise _invalid("this client has no keys registered for private_key_jwt")
    algs = FAPI2_ALGS if fapi2 else ALGS
    try:
        header = jwt.get_unverified_header(assertion)
        alg = header.get("alg")
        if alg not in algs:
            raise _invalid(f"client_assertion alg must be one of {', '.join(algs)}")
        keys = [k for k in jwt.PyJWKSet.from_dict(dict(client.jwks)).keys
                if header.get("kid") in (None, k.key_id)]
        claims = None
        for key in keys:
            try:
                claims = jwt.decode(
                    assertion, key.key, algorithms=[str(alg)], audience=audiences,
                    issuer=client.client_id, leeway=LEEWAY,
                    options={"require": ["iss", "sub", "aud", "exp", "jti"]},
                )
                break
            except jwt.InvalidSignatureError:
                continue
    except jwt.PyJWTError as exc:
        # pyjwt's text may quote the assertion: the client gets a fixed one, the log pyjwt's
        raise _invalid("client_assertion was refused: check its signature, iss, sub, aud, "
                       "exp and jti", detail=f"{type(exc).__name__}: {exc}"[:300]) from exc
    if claims is None:
        raise _invalid("client_assertion is not signed by a key of this client")
    # RFC 7519 §2: a NumericDate is "A JSON numeric value" (pyjwt also takes "1" and true)
    if any(name in claims and numeric_date(claims[name]) is None for name in DATE_CLAIMS):
        raise _invalid("client_assertion exp, iat and nbf must be numbers of seconds "
                       "(NumericDate)")
    if fapi2 and not isinstance(claims["aud"], str):
        raise _invalid("client_assertion aud must be the issuer, as a string (FAPI 2.0)")
    if claims["sub"] != client.client_id:
        raise _invalid("client_assertion sub must be the client_id")
    lifetime = int(claims["exp"]) - now
    if lifetime > MAX_LIFETIME:
        raise _invalid(f"client_assertion must expire within {MAX_LIFETIME} seconds")
    jti_key = f"{client.client_id}\x00{claims['jti']}"
    if not await store.add("jti", jti_key, {"exp": claims["exp"]}, max(1, lifetime + LEEWAY)):
        raise _invalid("client_assertion was already used (jti)")
