"""The keys of a ``kind: session`` bank (an eID through a broker's REST session API),
read from its ``banks[]`` entry; every problem reported with its key path."""

from __future__ import annotations

import re
from collections.abc import Mapping

from federation.settings import SessionApi
from proxy.config.reader import Section
from proxy.config.urls import check_issuer

SESSION_KEYS = (
    "api", "api_token_endpoint", "api_scopes", "account_id", "provider",
    "redirect_parameter", "requested_attributes", "loa", "poll_interval",
)  # fmt: skip
# what only an OpenID Provider has: a session bank has no issuer, discovery or ID token
OIDC_ONLY = ("issuer", "upstream_acr_values", "scopes", "userinfo", "use_par",
             "jwks_cooldown", "leeway")
# an HTTP header value (Signicat-AccountId): printable ASCII, no spaces
_HEADER_VALUE = re.compile(r"[\x21-\x7e]+")


def read_session_api(s: Section, kind: str, timeout: float,
                     claims: Mapping[str, str]) -> SessionApi | None:  # fmt: skip
    """The session API of a ``kind: session`` bank; None for any other kind (whose
    session keys, if any, are reported)."""
    if kind != "session":
        for key in SESSION_KEYS:
            if s.has(key):
                s.report(key, "is only used with kind session")
        return None
    for key in OIDC_ONLY:
        if s.has(key):
            s.report(key, "is not used with kind session (the bank is reached through api)")
    api = _url(s, "api")
    token_endpoint = _url(s, "api_token_endpoint")
    account_id = s.opt_text("account_id")
    if account_id is not None and not _HEADER_VALUE.fullmatch(account_id):
        s.report("account_id", "must be printable ASCII without spaces (it is sent as the "
                 "Signicat-AccountId header)")  # fmt: skip
    loa = s.text_map("loa")
    if loa and s.has("authentication_level"):
        s.report("authentication_level", "is not used with loa (each session's loa maps to "
                 "its level); remove one of them")  # fmt: skip
    for name, path in claims.items():
        if not all(path.split(".")):
            s.report(f"claims.{name}", f"must be an attribute name or a dotted path like "
                     f"nin.value (got {path!r})")  # fmt: skip
    poll_interval = s.number("poll_interval", 2.0, exclusive=True)
    if poll_interval > timeout:
        s.report("poll_interval", f"must not be more than timeout ({timeout:g} s): the "
                 "session is read within timeout seconds of the user's return")  # fmt: skip
    return SessionApi(
        api=api.rstrip("/"),
        api_token_endpoint=token_endpoint,
        provider=s.text("provider", required=True),
        redirect_parameter=s.text("redirect_parameter", required=True),
        api_scopes=s.texts("api_scopes"),
        account_id=account_id,
        requested_attributes=s.texts("requested_attributes"),
        loa=loa,
        poll_interval=poll_interval,
    )


def _url(s: Section, key: str) -> str:
    """An https URL (http only on loopback) without query or fragment."""
    url = s.text(key, required=True, why=" with kind session")
    problem = check_issuer(url) if url else None
    if problem:
        s.report(key, problem)
    return url
