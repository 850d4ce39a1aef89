"""Reading a session broker's answers (Signicat's Authentication REST API, headless flow).

Pure functions, no HTTP: each takes the parsed JSON body as it came (any JSON value)
and either returns what the adapter needs or raises BankError. The broker is trusted
for who logged in, not for the shape of its answers: a missing field, a wrong type, a
URL pointing elsewhere is ``server_error`` with a ``detail`` (for the log line) that
says which, never an exception of another kind.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from federation.bank_http import safe_text
from federation.oidc_params import usable_deep_link
from federation.protocol import BankError, Identity, SessionProgress
from federation.settings import SessionApi

# the session id goes into a URL path ({api}/sessions/{id}): unreserved characters only,
# and never a dot segment ("." or "..", which a URL library would resolve away)
_SESSION_ID = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,127}")
# the broker's state keys the login in the store and comes back in the callback URL
STATE_MIN, STATE_MAX = 22, 512
TEXT_MAX = 512
# the session statuses that end a session (the seed: "wait until the status value is
# either SUCCESS, ABORT, or ERROR, at which point the session is finalised"); EXPIRED is
# read as the end too, should a broker report it
SUCCESS, ABORT, ERROR, EXPIRED = "SUCCESS", "ABORT", "ERROR", "EXPIRED"

UNUSABLE = "the bank's answer could not be used"
EXPIRED_TEXT = "the login at the bank expired before it was approved"


def unusable(detail: str) -> BankError:
    return BankError("server_error", UNUSABLE, f"session: {detail}")


def expired(detail: str) -> BankError:
    return BankError("access_denied", EXPIRED_TEXT, f"session: {detail}")


@dataclass(frozen=True)
class Created:
    """A session the broker created, as the proxy keeps it (``conn_data``)."""

    session_id: str
    transaction_id: str
    token_request_url: str
    authorization_url: str  # where the user goes: the eID app's universal link
    state: str  # the state the broker put into authorization_url
    expires_at: float  # unix seconds

    def conn_data(self) -> dict[str, Any]:
        """What the transaction keeps: everything but the state itself (the store keys
        the login by it, hashed; only its digest is kept to compare at the callback)."""
        return {
            "session": self.session_id,
            "transaction": self.transaction_id,
            "token_url": self.token_request_url,
            "state_sha256": state_digest(self.state),
            "expires_at": self.expires_at,
        }


def state_digest(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


def same_state(state: str, conn_data: Mapping[str, Any]) -> bool:
    """The seed: "your backend must validate that the state value received from the
    mobile app matches the state value originally generated in the
    authorizationRequestUrl" -- exactly, in constant time."""
    kept = conn_data.get("state_sha256")
    return isinstance(kept, str) and hmac.compare_digest(state_digest(state), kept)


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL with no userinfo; None otherwise."""
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F
                                       for c in url):
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host or parts.username is not None \
            or parts.password is not None or parts.fragment:
        return None
    return scheme, host.lower(), port or (443 if scheme == "https" else 80)


def parse_created(body: Any, api: SessionApi, *, now: float, default_lifetime: float) -> Created:
    """The answer to ``POST {api}/sessions``."""
    if not isinstance(body, dict):
        raise unusable("the created session is not a JSON object")
    session_id = body.get("id")
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise unusable("id missing, not a string or not a safe path segment")
    idp = body.get("idpData")
    if not isinstance(idp, dict):
        raise unusable("idpData missing or not an object")
    transaction_id = _text(idp, "transactionId", "idpData.transactionId")
    token_url = _text(idp, "tokenRequestUrl", "idpData.tokenRequestUrl")
    # The proxy never sends its API token anywhere but the API it got it for.
    if origin(token_url) is None or origin(token_url) != origin(api.api):
        raise unusable("idpData.tokenRequestUrl is not on the API's origin")
    url = _text(idp, "authorizationRequestUrl", "idpData.authorizationRequestUrl", limit=8192)
    # The user's phone opens it as the eID app's own: https (http only on loopback), no
    # userinfo, no whitespace or control characters.
    if usable_deep_link(url) is None:
        raise unusable("idpData.authorizationRequestUrl is not an https URL")
    return Created(session_id, transaction_id, token_url, url, _state_of(url),
                   _expires_at(body, now, default_lifetime))


def _text(data: Mapping[str, Any], key: str, name: str, limit: int = TEXT_MAX) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise unusable(f"{name} missing, not a string, or longer than {limit} characters")
    return value


def _state_of(url: str) -> str:
    """The state the broker put into the authorization URL: it comes back on the
    callback, so it is what the login is found by."""
    states = [v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)
              if k == "state"]
    if len(states) != 1:
        raise unusable("idpData.authorizationRequestUrl has no state, or more than one")
    state = states[0]
    printable = all("\x21" <= c <= "\x7e" for c in state)
    if not printable or not STATE_MIN <= len(state) <= STATE_MAX:
        raise unusable(f"the state in idpData.authorizationRequestUrl is not {STATE_MIN} to "
                       f"{STATE_MAX} printable characters")
    return state


def _expires_at(body: Mapping[str, Any], now: float, default_lifetime: float) -> float:
    """``expiresAt`` (ISO 8601), else ``sessionLifetime`` (seconds) from now, else the
    proxy's own transaction lifetime."""
    raw = body.get("expiresAt")
    if raw is not None:
        at = _timestamp(raw)
        if at is None:
            raise unusable("expiresAt is not an ISO 8601 time with a zone")
    else:
        lifetime = body.get("sessionLifetime")
        if lifetime is None:
            at = now + default_lifetime
        elif isinstance(lifetime, int) and not isinstance(lifetime, bool) and lifetime > 0:
            at = now + lifetime
        else:
            raise unusable("sessionLifetime is not a positive integer")
    if at <= now:
        raise unusable("the session expires before it starts")
    return at


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        stamp = parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
    return stamp if math.isfinite(stamp) else None


# -- GET {api}/sessions/{id} ------------------------------------------------------------


def session_status(body: Any, session_id: str) -> str:
    """The ``status`` of the session ``session_id``."""
    if not isinstance(body, dict):
        raise unusable("the session is not a JSON object")
    if "id" in body and body["id"] != session_id:
        raise unusable("the broker answered with another session")
    status = body.get("status")
    if not isinstance(status, str) or not status or len(status) > 64:
        raise unusable("status missing or not a string")
    return status


def progress(status: str) -> SessionProgress:
    """A session's status as the proxy's /authorize/status shows it."""
    if status == SUCCESS:
        return "complete"
    if status in (ABORT, ERROR, EXPIRED):
        return "failed"
    return "pending"


def ended(status: str) -> BankError | None:
    """A session that ended without success, as the merchant hears of it; None for
    SUCCESS and for a session still going on."""
    if status == ABORT:
        return BankError("access_denied", "the user cancelled the login at the bank",
                         "session: status ABORT")
    if status == ERROR:
        return BankError("server_error", "the bank could not complete the login",
                         "session: status ERROR")
    if status == EXPIRED:
        return expired("status EXPIRED")
    return None


def identity_of(body: Mapping[str, Any], api: SessionApi, claim_paths: Mapping[str, str]
                ) -> Identity:  # fmt: skip
    """Who logged in, from a session whose status is SUCCESS.

    ``subject.id`` is the bank's subject. The claims are the subject's attributes, and
    for each path of ``claim_paths`` (merchant claim: path, e.g. ``nin.value``) the
    value at that path, under the path itself. The session's ``loa`` maps through
    ``api.loa`` to the login's authentication level; with a map, a session whose loa is
    not one of its keys (lower than the route accepts, or none) is refused.
    """
    subject = body.get("subject")
    if not isinstance(subject, dict):
        raise unusable("subject missing or not an object")
    sub = subject.get("id")
    if not isinstance(sub, str) or not sub or len(sub) > TEXT_MAX:
        raise unusable("subject.id missing or not a string")
    if "provider" in body and body["provider"] != api.provider:
        raise unusable("the session was completed with another provider")
    claims: dict[str, Any] = {k: v for k, v in subject.items() if k != "id"}
    for path in claim_paths.values():
        found, value = _at(subject, path)
        if found:
            claims[path] = value
    claims["sub"] = sub
    level = None
    if api.loa:
        loa = body.get("loa")
        if not isinstance(loa, str) or loa not in api.loa:
            shown = safe_text(loa, 32) if isinstance(loa, str) else "-"
            raise BankError("access_denied",
                            "the login's level of assurance is lower than this route accepts",
                            f"session: loa {shown} is not one of {sorted(api.loa)}")
        level = api.loa[loa]
    return Identity(sub=sub, claims=claims, authentication_level=level)


def _at(data: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """The value at a dotted ``path`` (``nin.value``) in nested objects."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value
