"""Which of a user's claims a token's scope releases (OIDC Core §5.4).

The bank's claims are mapped into merchant claims (a bank's ``claims:``) when the login
finishes; a client sees only those its granted scope asks for, in the ID token and at
/userinfo alike (introspection shows no user claims at all). ``sub``, ``acr``,
``authentication_level`` and the protocol claims are not user claims: the proxy sets
them itself, whatever the scope.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# OIDC Core §5.4: "profile OPTIONAL. This scope value requests access to the End-User's
# default profile Claims, which are: name, family_name, given_name, middle_name,
# nickname, preferred_username, profile, picture, website, gender, birthdate, zoneinfo,
# locale, and updated_at." "email ... the email and email_verified Claims." "address
# ... the address Claim." "phone ... the phone_number and phone_number_verified Claims."
SCOPE_CLAIMS: Mapping[str, frozenset[str]] = {
    "profile": frozenset({
        "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
        "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale",
        "updated_at",
    }),
    "email": frozenset({"email", "email_verified"}),
    "address": frozenset({"address"}),
    "phone": frozenset({"phone_number", "phone_number_verified"}),
}
STANDARD = frozenset().union(*SCOPE_CLAIMS.values())
_SCOPE_OF = {claim: scope for scope, claims in SCOPE_CLAIMS.items() for claim in claims}
# what the proxy itself puts in its tokens and answers: a bank mapping never sets these
PROTOCOL = frozenset({
    "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "nonce", "acr", "amr", "auth_time",
    "at_hash", "c_hash", "azp", "sid", "authentication_level", "cnf", "scope", "client_id",
    "token_type", "active", "bank_id", "authorization_details",
})
# scope values of the protocol: never the name of a custom claim's scope
PROTOCOL_SCOPES = frozenset({"openid", "offline_access"})


def scope_of(claim: str) -> str | None:
    """The scope that releases ``claim``: its §5.4 scope for a standard claim; for a
    custom merchant claim (e.g. ``national_id``), the scope of the same name, which a
    client must be registered for (its ``scopes``) and ask for. None: never released
    as a user claim (a protocol claim, or one named like a protocol scope)."""
    if claim in PROTOCOL or claim in PROTOCOL_SCOPES:
        return None
    return _SCOPE_OF.get(claim, claim)


def released(claims: Mapping[str, Any], scope: Iterable[str]) -> dict[str, Any]:
    """The claims of ``claims`` that ``scope`` releases."""
    granted = frozenset(scope)
    return {name: value for name, value in claims.items() if scope_of(name) in granted}
