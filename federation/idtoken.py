"""Validation of the bank's ID token (OIDC Core §3.1.3.7).

Every failure is the same ``server_error`` for the merchant (it must not get
a code for this login) and a ``detail`` naming the failed check for the logs.
The token itself never appears in a detail.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Mapping
from typing import Any, NoReturn

import jwt

from federation.jwks import ALG_KEY_TYPES, JwksCache, JwksError
from federation.protocol import BankError
from federation.settings import BankSettings

DESCRIPTION = "the bank's ID token could not be validated"
# OIDC Discovery §3: id_token_signing_alg_values_supported is REQUIRED and
# "The value none MAY be supported"; RS256 is the default of OIDC Core §15.1.
DEFAULT_ALGS = ("RS256",)


def _fail(check: str) -> NoReturn:
    raise BankError("server_error", DESCRIPTION, f"id_token: {check}")


def _number(claims: Mapping[str, Any], name: str) -> float:
    """RFC 8259 §6: "Numeric values that cannot be represented in the grammar below (such
    as Infinity and NaN) are not permitted" (Python's JSON reader takes them; a NaN exp
    compares false with every time, so it would never expire)."""
    value = claims.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        _fail(f"{name} is missing or not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        _fail(f"{name} is missing or not a number")
    if not math.isfinite(number):
        _fail(f"{name} is missing or not a number")
    return number


async def validate_id_token(
    token: str,
    *,
    settings: BankSettings,
    metadata_doc: Mapping[str, Any],
    jwks: JwksCache,
    nonce: str | None,
    now: float | None = None,
) -> dict[str, Any]:
    """The validated claims of ``token``; raises BankError("server_error") on any failure.

    ``nonce`` is the value sent in the authentication request, or None when none
    was sent (CIBA's backchannel request has no ``nonce`` parameter).
    """
    now = time.time() if now is None else now
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        _fail("not a JWS compact serialisation")

    # §3.1.3.7 (7): "The alg value SHOULD be the default of RS256 or the algorithm
    # sent by the Client in the id_token_signed_response_alg parameter during
    # Registration." We take what the bank advertises, and only asymmetric
    # algorithms: never "none", never HS* (that would be keyed with our secret).
    alg = header.get("alg")
    supported = metadata_doc.get("id_token_signing_alg_values_supported") or DEFAULT_ALGS
    if not isinstance(alg, str) or alg == "none" or alg.startswith("HS"):
        _fail(f"alg {str(alg)[:16]!r} is refused")
    if alg not in supported:
        _fail(f"alg {alg[:16]!r} is not in id_token_signing_alg_values_supported")
    if alg not in ALG_KEY_TYPES:
        _fail(f"alg {alg[:16]!r} is not supported here")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        _fail("kid is not a string")

    # §3.1.3.7 (6): "the Client MUST validate the signature of all other ID Tokens
    # according to JWS [JWS] using the algorithm specified in the JWT alg Header
    # Parameter. The Client MUST use the keys provided by the Issuer."
    try:
        key = await jwks.get_key(kid, alg)
    except JwksError as exc:
        _fail(f"no signing key: {exc}")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidSignatureError:
        _fail("signature does not verify")
    except jwt.PyJWTError as exc:
        _fail(f"cannot be decoded ({type(exc).__name__})")
    _check_claims(claims, settings=settings, nonce=nonce, now=now)
    return claims


def _check_claims(
    claims: Mapping[str, Any], *, settings: BankSettings, nonce: str | None, now: float
) -> None:
    # (2) "The Issuer Identifier for the OpenID Provider (which is typically obtained
    # during Discovery) MUST exactly match the value of the iss (issuer) Claim."
    if claims.get("iss") != settings.issuer:
        _fail("iss does not match the bank's issuer")

    # (3) "The Client MUST validate that the aud (audience) Claim contains its
    # client_id value registered at the Issuer identified by the iss (issuer) Claim
    # as an audience. ... The ID Token MUST be rejected if the ID Token does not
    # list the Client as a valid audience, or if it contains additional audiences
    # not trusted by the Client."
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or settings.client_id not in audiences:
        _fail("aud does not contain our client_id")
    # (4) "If the implementation is using extensions (which are beyond the scope of
    # this specification) that result in the azp (authorized party) Claim being
    # present, it SHOULD validate the azp value as specified by those extensions."
    # (5) "This validation MAY include that when an azp (authorized party) Claim is
    # present, the Client SHOULD verify that its client_id is the Claim Value."
    # We require azp with several audiences (the "additional audiences" of (3)).
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        _fail("several audiences and no azp")
    if azp is not None and azp != settings.client_id:
        _fail("azp is not our client_id")

    # (9) "The current time MUST be before the time represented by the exp Claim
    # (possibly allowing for some small leeway to account for clock skew)."
    if now >= _number(claims, "exp") + settings.leeway:
        _fail("exp is in the past")
    # (10) "The iat Claim can be used to reject tokens that were issued too far away
    # from the current time, limiting the amount of time that nonces need to be
    # stored to prevent attacks." iat is REQUIRED (§2); one from the future is refused.
    if _number(claims, "iat") > now + settings.leeway:
        _fail("iat is in the future")
    if "nbf" in claims and _number(claims, "nbf") > now + settings.leeway:
        _fail("nbf is in the future")

    # (11) "If a nonce value was sent in the Authentication Request, a nonce Claim
    # MUST be present and its value checked to verify that it is the same value as
    # the one that was sent in the Authentication Request."
    # nonce None: none was sent, so there is nothing to check a nonce claim against.
    # That is CIBA: its authentication request has no nonce parameter, and the
    # nonce in its example ID tokens was removed as one "which shouldn't be there"
    # (openid/mobile issue #92); a bank that adds one anyway is not refused for it.
    if nonce is not None:
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            _fail("nonce does not match the one sent")

    # §2: "sub REQUIRED. Subject Identifier. ... It MUST NOT exceed 255 ASCII characters"
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        _fail("sub is missing")

    # (12) "If the acr Claim was requested, the Client SHOULD check that the asserted
    # Claim Value is appropriate." A bank that names a level we did not ask for is refused.
    acr = claims.get("acr")
    if settings.upstream_acr_values and acr is not None and acr not in settings.upstream_acr_values:
        _fail("acr is not one of the requested upstream_acr_values")
