"""Random values handed to clients: every token, code and handle.

"Every token, code and handle is 256 bits from secrets, base64url"; tokens
carry a recognisable prefix so they are easy to spot in a secret scanner.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

ACCESS_TOKEN = "a2a_at_"
REFRESH_TOKEN = "a2a_rt_"
AUTHORIZATION_CODE = "a2a_ac_"
GRANT = "a2a_gr_"


def new_value(prefix: str = "") -> str:
    """256 bits from :mod:`secrets`, base64url without padding, after ``prefix``."""
    return prefix + secrets.token_urlsafe(32)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def fingerprint(value: str) -> str:
    """What a log line may show of a token, code or handle: 12 chars of its SHA-256."""
    return b64url(hashlib.sha256(value.encode()).digest())[:12]


def new_grant_id() -> str:
    """A grant's id: 128 bits from :mod:`secrets`. It is an identifier, not a credential
    (nothing accepts it from outside; an access token shows it), so it needs to be unique,
    not unguessable; shorter, it costs less in every record and token that names it."""
    return GRANT + secrets.token_urlsafe(16)


def new_access_token(grant_id: str) -> str:
    """``a2a_at_{grant}.{secret}``: an access token names its grant, so introspection
    reads the token's record and the grant's in one round trip (the grant must be alive
    for the token to be). The secret part is 256 bits from :mod:`secrets`; the grant
    part is an identifier, not a credential: it opens nothing on its own."""
    return f"{ACCESS_TOKEN}{grant_id.removeprefix(GRANT)}.{new_value()}"


def grant_of_access_token(token: str) -> str | None:
    """The grant id an access token names, or None if it is not one of ours."""
    if not token.startswith(ACCESS_TOKEN):
        return None
    grant, dot, secret = token[len(ACCESS_TOKEN):].partition(".")
    if not dot or not grant or not secret:
        return None
    return GRANT + grant
