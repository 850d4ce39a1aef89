"""Pure helpers of the OIDC adapters (redirect and CIBA): URL building and checks,
and turning the bank's responses into :mod:`federation.protocol` values."""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from federation.bank_http import safe_text
from federation.protocol import BankError, BankTokens, Identity

# The bank's authorization errors the merchant may see as they are (OAuth 2.0
# §4.1.2.1, OIDC Core §3.1.2.6); anything else becomes server_error.
PASSED_ERRORS = {
    "access_denied": "the user or the bank refused the login",
    "login_required": "the bank requires the user to log in",
    "interaction_required": "the bank requires user interaction",
    "consent_required": "the bank requires the user's consent",
    "account_selection_required": "the bank requires the user to select an account",
    "temporarily_unavailable": "the bank is temporarily unavailable",
}


def authorization_url(endpoint: str, params: Mapping[str, str]) -> str:
    """``endpoint`` with ``params`` added; its own query is kept (OAuth 2.0 §3.1:
    "The endpoint URI MAY include an application/x-www-form-urlencoded formatted
    query component, which MUST be retained when adding additional query parameters")."""
    parts = urlsplit(endpoint)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query = urlencode([*kept, *params.items()])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def check_callback_iss(doc: Mapping[str, Any], params: Mapping[str, str], issuer: str) -> None:
    """RFC 9207 §2.4, before anything else in the callback is believed.

    "Clients MUST then decode the value from its application/x-www-form-urlencoded
    form ... and compare the result to the issuer identifier of the authorization
    server where the authorization request was sent to. This comparison MUST use
    simple string comparison ... If the value does not match the expected issuer
    identifier, clients MUST reject the authorization response and MUST NOT proceed
    with the authorization grant. For error responses, clients MUST NOT assume that
    the error originates from the intended authorization server."
    "Clients MUST reject authorization responses without the iss parameter from
    authorization servers that do support the parameter according to the client's
    configuration." — here, per ``authorization_response_iss_parameter_supported``.

    A mismatch is ``server_error``, not ``access_denied``: nobody refused anything;
    the response is not from our bank (a mix-up attempt or a misconfiguration) and
    the merchant should treat it as our failure, not as a user's choice.
    """
    iss = params.get("iss")
    if iss is None:
        if doc.get("authorization_response_iss_parameter_supported") is True:
            raise BankError(
                "server_error", "the bank's response could not be verified", "callback: iss missing"
            )
        return
    if iss != issuer:
        raise BankError(
            "server_error", "the bank's response could not be verified", "callback: iss mismatch"
        )


def bank_error(params: Mapping[str, str]) -> BankError:
    """The bank's error response as our BankError; its text is never shown, only logged."""
    code = params.get("error", "")
    detail = f"bank error {safe_text(code, 64)}"
    if params.get("error_description"):
        detail += f": {safe_text(params['error_description'])}"
    if code in PASSED_ERRORS:
        return BankError(code, PASSED_ERRORS[code], detail)
    return BankError("server_error", "the bank could not complete the login", detail)


# 9999-12-31T23:59:59Z in seconds: no date or duration a bank sends goes beyond it
_MAX_SECONDS = 253402300799


def _int(value: Any) -> int | None:
    """Whole seconds from a JSON number (or digit string); None for anything else.
    RFC 8259 §6: "Numeric values that cannot be represented in the grammar below (such
    as Infinity and NaN) are not permitted" (Python's JSON reader takes them); nor is
    anything past the year 9999 a date or a lifetime."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = int(value) if math.isfinite(value) else None
    # some banks send "3600"; a longer string of digits is no number of seconds
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    return value if isinstance(value, int) and abs(value) <= _MAX_SECONDS else None


def tokens_from_response(
    body: Mapping[str, Any],
    *,
    previous: BankTokens | None = None,
    access_token_required: bool = True,
) -> BankTokens | None:
    """BankTokens from a token response (RFC 6749 §5.1); None if it has no usable
    access token.

    RFC 6749 §5.1 makes ``access_token`` REQUIRED, and so it is by default. A
    CIBA bank may answer with an ID token alone (BankID's app-authorize does);
    with ``access_token_required=False`` a response *without* ``access_token``
    gives ``BankTokens(access_token=None, ...)``, while one with a malformed
    value (empty, not a string) is still refused.

    On refresh, what the bank leaves out stays as it was: RFC 6749 §6 says the
    server "MAY issue a new refresh token", and §5.1 makes ``scope`` optional
    "if identical to the scope requested by the client".
    """
    access_token = body.get("access_token")
    absent_allowed = access_token is None and not access_token_required
    if not absent_allowed and (not isinstance(access_token, str) or not access_token):
        return None
    expires_in = _int(body.get("expires_in"))
    refresh = body.get("refresh_token")
    scope = body.get("scope")
    token_type = body.get("token_type")
    return BankTokens(
        access_token=access_token,
        token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
        expires_at=int(time.time()) + expires_in if expires_in is not None else None,
        refresh_token=refresh
        if isinstance(refresh, str) and refresh
        else (previous.refresh_token if previous else None),
        scope=scope if isinstance(scope, str) else (previous.scope if previous else None),
    )


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    acr = claims.get("acr")
    amr = claims.get("amr")
    return Identity(
        sub=str(claims["sub"]),
        claims=dict(claims),
        acr=acr if isinstance(acr, str) else None,
        amr=tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else (),
        auth_time=_int(claims.get("auth_time")),
    )


def positive_int(value: Any) -> int | None:
    """A positive integer from a JSON number (or digit string); None for anything else,
    and for anything past the year 9999 in seconds (see :func:`_int`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    # some send "120"; a longer string of digits is no number of seconds
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    return value if isinstance(value, int) and 0 < value <= _MAX_SECONDS else None


def usable_deep_link(value: Any) -> str | None:
    """``value`` if it is an https URL, or http on a loopback host; otherwise None.

    Control characters, whitespace and userinfo (``https://bank.example@evil.example``)
    are refused: the link is opened on the user's phone as the bank's.
    """
    if not isinstance(value, str) or not value:
        return None
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    if not host or parts.username is not None or parts.password is not None:
        return None
    if parts.scheme == "https":
        return value
    if parts.scheme == "http" and is_loopback(host):
        return value
    return None


def is_loopback(host: str) -> bool:
    """A loopback IP address, or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
