"""The OAuth error a rule raises: its code, what the client did wrong, its status, and
where it may be redirected (:class:`RedirectTarget`, only once the client's redirect_uri
is verified). How it reaches the user is :mod:`proxy.web.errors`' job alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proxy.observability.metrics import STORE_UNAVAILABLE


@dataclass(frozen=True)
class RedirectTarget:
    """A redirect_uri that was checked against the registered ones, and the client's state."""

    redirect_uri: str
    state: str | None
    issuer: str
    # browser-less App2App: the response is JSON {"action": "call", "url": ...}
    # instead of a 302 (draft-zehavi-oauth-app2app-browserless §3.5.4, §3.7)
    native: bool = False


class OAuthError(Exception):
    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
        redirect: RedirectTarget | None = None,
        detail: str = "",
        client_id: str | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})
        self.redirect = redirect
        self.detail = detail  # for the logs only
        # the registered client the request belongs to, when known but its redirect_uri
        # is not (or the login is over): the error page links back to its client_uri
        self.client_id = client_id


def unavailable(redirect: RedirectTarget | None = None) -> OAuthError:
    """The store is down: 503 with Retry-After, or, once the client's redirect_uri is
    verified, an error redirect so the app hears of it with its state. Every call is one
    store outage met by a request, and is counted."""
    STORE_UNAVAILABLE.inc()
    return OAuthError(
        "temporarily_unavailable",
        "the authorization server's store is not answering; retry shortly",
        status=503,
        headers={"Retry-After": "1"},
        redirect=redirect,
    )
