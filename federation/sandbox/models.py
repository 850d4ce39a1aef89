"""The sandbox bank's records: registered clients, its one user, and what it holds
between requests (pending approvals, codes, tokens). All plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the bank received it (Gafaelfawr: fakes check what was sent)."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


class NoRecordedRequest(AssertionError, LookupError):
    """``SandboxBank.last(path)`` found no request to that path."""


@dataclass(frozen=True)
class AuthRequest:
    """A validated authorization request, waiting for the user's decision."""

    client_id: str
    redirect_uri: str
    state: str
    nonce: str
    scope: str
    code_challenge: str
    acr: str
    login_hint: str | None


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
class RefreshGrant:
    client_id: str
    sub: str
    scope: str
    acr: str
    auth_time: int
