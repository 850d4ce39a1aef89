"""``rate_limits:``: requests per window, per claimed client and per source address."""

from __future__ import annotations

from proxy.config.reader import Section
from proxy.config.settings import LoginHintLimit, RateLimits

# the endpoints that can be limited (authorize: GET/POST /authorize and /native/authorize);
# token, par and revoke, where clients authenticate, share their counts (proxy.web.ratelimit)
ENDPOINTS = ("authorize", "token", "par", "revoke", "introspect")
RATE_LIMIT_KEYS = ("window", "per_client", "per_address", "trust_forwarded_for")


def read_rate_limits(top: Section) -> RateLimits | None:
    """None when the section is left out: nothing is limited."""
    if top.raw("rate_limits") is None:
        return None
    s = top.section("rate_limits", RATE_LIMIT_KEYS)
    default = RateLimits()
    return RateLimits(
        window=s.positive("window", default.window),
        per_client=_per_endpoint(s, "per_client"),
        per_address=_per_endpoint(s, "per_address"),
        trust_forwarded_for=s.flag("trust_forwarded_for", default.trust_forwarded_for),
    )


def _per_endpoint(s: Section, key: str) -> dict[str, int]:
    """``{endpoint: requests per window}``; an endpoint left out is not limited."""
    limits = s.section(key, ENDPOINTS)  # reports unknown endpoint names, with a suggestion
    return {name: limits.positive(name, 1) for name in ENDPOINTS if limits.has(name)}


def read_login_hint_limit(top: Section) -> LoginHintLimit:
    """Always in force; the section only changes the numbers."""
    s = top.section("login_hint_limit", ("logins", "window"))
    default = LoginHintLimit()
    return LoginHintLimit(
        logins=s.positive("logins", default.logins), window=s.positive("window", default.window)
    )
