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
DEVICE_SECRET = "a2a_ds_"  # OpenID Connect Native SSO
CHALLENGE = "a2a_ch_"  # POST /challenge, signed into a device-key JWT


def new_value(prefix: str = "") -> str:
    """256 bits from :mod:`secrets`, base64url without padding, after ``prefix``."""
    return prefix + new_values(1)[0]


def new_values(count: int) -> list[str]:
    """``count`` values of 256 bits each, base64url without padding, from one draw of
    :mod:`secrets` (the operating system's generator; a draw is a system call, and a code
    exchange chooses four values)."""
    drawn = secrets.token_bytes(32 * count)
    return [b64url(drawn[start:start + 32]) for start in range(0, 32 * count, 32)]


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


def new_grant_value(prefix: str, grant_id: str, secret: str | None = None) -> str:
    """``{prefix}{grant}.{secret}``: an access token (``a2a_at_``), a refresh token
    (``a2a_rt_``) or a code (``a2a_ac_``) that names its grant, so that the token's record
    and its grant's are read in one round trip (introspection: one MGET; a code exchange:
    the consume and the grant's read in one batch; a refresh: the token's and the grant's
    records in one MGET), and the token's record need not repeat the grant's id. The
    secret part is 256 bits from :mod:`secrets`; the grant part is an identifier, not a
    credential: it opens nothing on its own, and the store's key is the hash of the whole
    value, so another grant part names no record. ``secret``: one of :func:`new_values`,
    drawn with others."""
    return f"{prefix}{grant_id.removeprefix(GRANT)}.{secret or new_value()}"


def grant_of(prefix: str, value: str) -> str | None:
    """The grant id a value of :func:`new_grant_value` names, or None if ``value`` is not
    one of ours with this ``prefix``."""
    if not value.startswith(prefix):
        return None
    grant, dot, secret = value[len(prefix):].partition(".")
    if not dot or not grant or not secret:
        return None
    return GRANT + grant
