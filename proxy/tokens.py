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
