"""Checks of the URLs in the config: issuers, redirect URIs, callback URIs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# RFC 8252 §8.3: loopback; plain http is fine here (development, or native apps)
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def check_issuer(url: str) -> str | None:
    """What is wrong with ``url`` as an issuer, or None.

    RFC 8414 §2: "a case-sensitive URL that uses the "https" scheme and has no
    query or fragment components". http is allowed on loopback, for development.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("https", "http") or not host:
        return f"must be an absolute https URL, like https://login.example.com (got {url!r})"
    if parts.scheme == "http" and host not in LOOPBACK:
        return f"must use https (http is only allowed for localhost/127.0.0.1/::1) (got {url!r})"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return f"must not have a query or fragment (got {url!r})"
    if parts.username is not None or parts.password is not None:
        return "must not contain user:password@"
    return None


def check_redirect_uri(uri: str) -> str | None:
    """What is wrong with a client's ``uri`` as a redirect URI, or None.

    RFC 6749 §3.1.2: "The redirection endpoint URI MUST be an absolute URI" and
    "MUST NOT include a fragment component". RFC 8252 allows, for native apps,
    private-use URI schemes (§7.1: "a URI scheme based on a domain name under
    their control, expressed in reverse order", hence the dot) and loopback
    redirects over http (§7.3).
    """
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError as exc:
        return f"is not a valid URI ({exc})"
    if not parts.scheme or not _SCHEME.fullmatch(parts.scheme) or ":" not in uri:
        return f"must be an absolute URI (got {uri!r})"
    if parts.fragment or "#" in uri:
        return f"must not have a fragment (got {uri!r})"
    scheme = parts.scheme.lower()
    if scheme == "https":
        return None if host else f"must name a host (got {uri!r})"
    if scheme == "http":
        if host in LOOPBACK:
            return None
        return (
            "http is only allowed on loopback (127.0.0.1, [::1] or localhost; RFC 8252 §7.3); "
            f"use https (got {uri!r})"
        )
    if "." in scheme:
        return None
    return (
        "must be https, http on loopback, or a private-use scheme in reverse domain "
        f"order like com.example.app:/callback (RFC 8252 §7.1) (got {uri!r})"
    )


def check_https(uri: str) -> str | None:
    """What is wrong with ``uri`` as an https URL (no fragment), or None."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme != "https" or not host:
        return f"must be an absolute https URL (got {uri!r})"
    if parts.fragment or "#" in uri:
        return f"must not have a fragment (got {uri!r})"
    return None


def check_resource(uri: str) -> str | None:
    """What is wrong with ``uri`` as a resource indicator (an API's audience), or None.

    RFC 8707 §2: the value "MUST be an absolute URI, as specified by Section 4.3 of
    [RFC3986]" and "MUST NOT include a fragment component"."""
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        return f"is not a valid URI ({exc})"
    if not _SCHEME.fullmatch(parts.scheme or "") or not (parts.netloc or parts.path):
        return f"must be an absolute URI, like https://api.merchant.example (got {uri!r})"
    if parts.fragment or uri.endswith("#"):
        return f"must not have a fragment (got {uri!r})"
    return None


def redacted(url: str) -> str:
    """The URL without credentials or query, fit for logs and error messages."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"
