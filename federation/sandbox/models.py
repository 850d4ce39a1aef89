"""The sandbox bank's records: registered clients, its one user, and what it holds
between requests (pending approvals, codes, tokens). All plain dataclasses."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

CibaStatus = Literal["pending", "approved", "denied"]


def _default_claims() -> dict[str, Any]:
    return {
        "name": "Alice Sandbox",
        "given_name": "Alice",
        "family_name": "Sandbox",
        "birthdate": "1990-01-01",
        "email": "alice@sandbox.example",
    }


@dataclass
class SandboxClient:
    client_id: str
    redirect_uris: list[str]
    auth_method: str  # "client_secret_basic" | "client_secret_post" | "private_key_jwt"
    secret: str | None = None
    jwks: dict[str, Any] | None = None  # public JWKS ({"keys": [...]}) for private_key_jwt


@dataclass
class SandboxUser:
    sub: str = "sandbox-user-1"
    claims: dict[str, Any] = field(default_factory=_default_claims)
    # BankID: the national identity number the permissions API knows the user by, and the
    # phone their BankID app runs on (device_info: p, ma, mo)
    nnin: str = "12345678910"
    device: dict[str, str] = field(
        default_factory=lambda: {"p": "ios", "ma": "Apple", "mo": "iPhone11,2"})


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the bank received it (Gafaelfawr: fakes check what was sent)."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.time)  # when it arrived (the demo orders hops)


class NoRecordedRequest(AssertionError, LookupError):
    """``SandboxBank.last(path)`` found no request to that path."""


@dataclass(frozen=True)
class AuthRequest:
    """A validated authorization request, waiting for the user's decision. With RFC 9396
    ``authorization_details`` (of a type in ``rar_types``, or a BankID permission item
    pushed to /par)."""

    client_id: str
    redirect_uri: str
    state: str
    nonce: str
    scope: str
    code_challenge: str
    acr: str
    login_hint: str | None
    authorization_details: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class CodeGrant:
    request: AuthRequest
    sub: str
    auth_time: int
    expires_at: int


@dataclass(frozen=True)
class AccessGrant:
    client_id: str
    sub: str
    scope: str
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class ApiGrant:
    """A client-credentials access token (the proxy's API token at BankID)."""

    client_id: str
    scope: str
    expires_at: float


@dataclass(frozen=True)
class Permission:
    """A permission registered at the permissions API (BankID, the seed's step 5)."""

    client_id: str
    type: str  # authentication.v1 | payment.v1 | text.v1
    permission: str  # the statement, URL-safe base64, as registered
    statement: dict[str, Any]  # decoded
    login_hint: str  # the nnin
    app_callback_uri: str | None
    expires_at: float

    def describe(self) -> str:
        """What the bank app shows the user: each payment, or the text."""
        if self.type == "payment.v1":
            return "; ".join(
                f"Pay {p['amount']} {p['currency']} to {p['creditorName']}"
                for p in self.statement.get("payments", ()))
        if self.type == "text.v1":
            return str(self.statement.get("text", ""))
        return ""


@dataclass(frozen=True)
class RefreshGrant:
    client_id: str
    sub: str
    scope: str
    acr: str
    auth_time: int
    # RFC 9396: what the user approved, answered in the token response (§7)
    authorization_details: tuple[dict[str, Any], ...] = ()
    # a BankID permission the login approved: its digest goes into the ID token
    permission: str | None = None


@dataclass(frozen=True)
class NativeRequest:
    """A validated browser-less App2App request, waiting on the bank app's page."""

    request: AuthRequest
    native_callback_uri: str


@dataclass
class CibaRequest:
    """A backchannel authentication request (CIBA §7): polled by the client, decided
    on the bank app. Identifiers stay out of ``repr`` so they never reach a log line."""

    auth_req_id: str = field(repr=False)
    handle: str = field(repr=False)  # the bank app page's key, never the auth_req_id
    client_id: str
    scope: str
    acr: str
    form: dict[str, str] = field(repr=False)  # all the client sent, less its credentials
    expires_at: float
    interval: int
    status: CibaStatus = "pending"
    last_poll: float | None = None
    sub: str | None = None  # set when decided
    decided_at: int | None = None
    consumed: bool = False  # tokens were issued; kept (not deleted) so a replay is seen
    # BankID app-authorize: the permission the login_hint_token named
    permission: Permission | None = field(default=None, repr=False)

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at <= (time.time() if now is None else now)

    def takes_decision(self) -> bool:
        """Pending and not expired: the user may still approve or deny."""
        return self.status == "pending" and not self.expired()

    @property
    def binding_message(self) -> str | None:
        return self.form.get("binding_message")

    @property
    def app_callback_uri(self) -> str | None:
        return self.form.get("app_callback_uri")


class UnknownCibaRequest(LookupError):
    """No CIBA request has that auth_req_id (or handle), or none was made yet."""


class CibaRequestClosed(ValueError):
    """The CIBA request was already decided, or has expired: it takes no decision."""
