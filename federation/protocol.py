"""What the proxy asks of a bank adapter (dex's connector interfaces, in Python).

One adapter per ``kind:``. A redirect adapter hands back opaque ``conn_data``
with its authorization URL; the proxy stores it with the transaction and gives
it back on the callback. A decoupled adapter (CIBA-style) will add
``start_decoupled`` / ``poll`` beside these; both end in a :class:`BankResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from federation.settings import BankSettings


class BankError(Exception):
    """A login that failed at or because of the bank.

    ``error`` is the OAuth error code the merchant gets (``access_denied``,
    ``temporarily_unavailable``, ``server_error``, ``login_required`` ...);
    ``description`` is safe to show the merchant; ``detail`` is for the logs
    only and must never hold a token, code or secret.
    """

    def __init__(self, error: str, description: str, detail: str = "") -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.detail = detail or description


@dataclass(frozen=True)
class BankTokens:
    access_token: str
    token_type: str = "Bearer"
    expires_at: int | None = None  # unix seconds; None: the bank did not say
    refresh_token: str | None = None
    scope: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BankTokens:
        return cls(
            access_token=str(data["access_token"]),
            token_type=str(data.get("token_type") or "Bearer"),
            expires_at=data.get("expires_at"),
            refresh_token=data.get("refresh_token"),
            scope=data.get("scope"),
        )


@dataclass(frozen=True)
class Identity:
    """Who the bank says logged in, from its validated ID token (and userinfo)."""

    sub: str
    claims: Mapping[str, Any] = field(default_factory=dict)  # all bank claims, validated
    acr: str | None = None
    amr: tuple[str, ...] = ()
    auth_time: int | None = None


@dataclass(frozen=True)
class BankResult:
    identity: Identity
    tokens: BankTokens


@dataclass(frozen=True)
class RedirectStart:
    url: str  # the bank authorization URL (or the URL of its App2App universal link)
    conn_data: Mapping[str, Any]  # JSON-serialisable; stored with the transaction


@dataclass(frozen=True)
class StartRequest:
    state: str  # the proxy's own state toward the bank
    redirect_uri: str  # {issuer}/callback/{bank_id}
    login_hint: str | None = None


@runtime_checkable
class RedirectAdapter(Protocol):
    settings: BankSettings

    async def start(self, request: StartRequest) -> RedirectStart:
        """Build the bank authorization URL; raise BankError if the bank is unusable."""
        ...

    async def finish(
        self, conn_data: Mapping[str, Any], params: Mapping[str, str], redirect_uri: str
    ) -> BankResult:
        """Handle the bank's callback parameters: check ``iss``, exchange the code,
        validate the ID token. Raise BankError for every failure."""
        ...

    async def refresh(self, tokens: BankTokens) -> BankTokens:
        """Refresh the bank tokens with the bank's refresh token; BankError if refused."""
        ...

    async def status(self) -> Mapping[str, Any]:
        """Metadata health for /readyz (never raises)."""
        ...
