"""What the proxy asks of a bank adapter (dex's connector interfaces, in Python).

One adapter per ``kind:``. A redirect adapter hands back opaque ``conn_data``
with its authorization URL; the proxy stores it with the transaction and gives
it back on the callback. A decoupled adapter (CIBA poll mode) starts the login
on the back channel and is polled by the proxy; both end in a :class:`BankResult`.
A session adapter (``kind: session``) is a redirect adapter whose bank chose the
state itself (:attr:`RedirectStart.state`) and whose progress can be read while the
user is away (:class:`SessionWatcher`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeGuard, runtime_checkable

from federation.settings import BankSettings

# RFC 9396 authorization_details: JSON objects, each with its "type"
Details = tuple[dict[str, Any], ...]


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
    # None: the bank issued only an ID token (BankID's app-authorize answers so)
    access_token: str | None
    token_type: str = "Bearer"
    expires_at: int | None = None  # unix seconds; None: the bank did not say
    refresh_token: str | None = None
    scope: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable, without the members that are None (from_dict reads them
        back as None)."""
        data = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BankTokens:
        return cls(
            access_token=data.get("access_token"),
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
    # the level this login reached, where the bank's answer decides it (a session bank's
    # loa through its ``loa:`` map); None: the bank's configured authentication_level
    authentication_level: str | None = None


@dataclass(frozen=True)
class BankResult:
    identity: Identity
    tokens: BankTokens
    # RFC 9396 §7: the authorization_details the bank says the user granted, where it
    # answered them (in the types the merchant asked for); None: it did not, and the
    # login granted what was asked (a BankID permission, bound by its token and digest)
    authorization_details: Details | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable; the proxy keeps it encrypted between a decoupled bank's
        answer and the user's return."""
        identity = self.identity
        data: dict[str, Any] = {
            "identity": {
                "sub": identity.sub,
                "claims": dict(identity.claims),
                "acr": identity.acr,
                "amr": list(identity.amr),
                "auth_time": identity.auth_time,
                "authentication_level": identity.authentication_level,
            },
            "tokens": self.tokens.to_dict(),
        }
        if self.authorization_details is not None:
            data["authorization_details"] = [dict(d) for d in self.authorization_details]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BankResult:
        identity = data["identity"]
        details = data.get("authorization_details")
        return cls(
            Identity(
                sub=str(identity["sub"]),
                claims=dict(identity.get("claims") or {}),
                acr=identity.get("acr"),
                amr=tuple(identity.get("amr") or ()),
                auth_time=identity.get("auth_time"),
                authentication_level=identity.get("authentication_level"),
            ),
            BankTokens.from_dict(data["tokens"]),
            tuple(dict(d) for d in details) if isinstance(details, list) else None,
        )


@dataclass(frozen=True)
class RedirectStart:
    url: str  # the bank authorization URL (or the URL of its App2App universal link)
    conn_data: Mapping[str, Any]  # JSON-serialisable; stored with the transaction
    # True: ``url`` is a request to the bank's own ``native_authorization_endpoint``
    # (draft-zehavi-oauth-app2app-browserless), which the merchant app calls, rather
    # than a URL to open in the user agent
    native: bool = False
    # the state the bank will send back to the callback, when the bank chose it (a
    # session broker puts its own into ``url``); None: the StartRequest's state
    state: str | None = None


@dataclass(frozen=True)
class StartRequest:
    state: str  # the proxy's own state toward the bank
    redirect_uri: str  # {issuer}/callback/{bank_id}
    login_hint: str | None = None
    # browser-less App2App: the merchant app's deep link, forwarded to a bank that
    # advertises ``native_authorization_endpoint``
    native_callback_uri: str | None = None
    # RFC 9396: what the merchant asks the user to approve (validated against the
    # operator's schemas); a bank that cannot carry them raises invalid_authorization_details
    authorization_details: Details = ()


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


@dataclass(frozen=True)
class DecoupledRequest:
    """What the proxy asks a decoupled (CIBA poll mode) bank to start."""

    return_uri: str  # {issuer}/resume/{handle}: where the bank app sends the user back
    requested_expiry: int  # seconds
    login_hint: str | None = None
    login_hint_token: str | None = None
    binding_message: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)  # the bank's pass_through fields
    authorization_details: Details = ()  # RFC 9396, as in StartRequest


@dataclass(frozen=True)
class DecoupledStart:
    auth_req_id: str
    expires_in: int  # seconds, as the bank answered
    interval: int  # seconds between polls (CIBA: 5 when the bank names none)
    deep_link: str | None = None  # the App2App universal link, when the bank sent one
    # JSON-serialisable; kept with the transaction and handed back to every poll (a
    # BankID login: the digests of the permission it registered)
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pending:
    """The user has not finished yet; poll again after ``interval`` seconds (already
    raised by 5 when the bank answered ``slow_down``)."""

    interval: int


@runtime_checkable
class DecoupledAdapter(Protocol):
    settings: BankSettings

    async def start_decoupled(self, request: DecoupledRequest) -> DecoupledStart:
        """Send the backchannel authentication request; BankError if the bank refuses."""
        ...

    async def poll(self, auth_req_id: str, interval: int,
                   context: Mapping[str, Any] | None = None) -> BankResult | Pending:
        """One token request for ``auth_req_id`` (``context``: the DecoupledStart's).
        ``access_denied`` / ``expired_token`` and every other failure raise BankError
        with that error code."""
        ...

    async def refresh(self, tokens: BankTokens) -> BankTokens:
        ...

    async def status(self) -> Mapping[str, Any]:
        ...


SessionProgress = Literal["pending", "complete", "failed"]


@runtime_checkable
class SessionWatcher(Protocol):
    """A redirect adapter whose login can be read while the user is away (``kind:
    session``): the proxy's /authorize/status asks it."""

    settings: BankSettings

    async def watch(self, conn_data: Mapping[str, Any]) -> SessionProgress:
        """One read of the login's progress at the bank; BankError if it cannot be had
        (``temporarily_unavailable``: try again later)."""
        ...


BankAdapter = RedirectAdapter | DecoupledAdapter

# adapter class -> (redirect?, decoupled?, session?). isinstance() with a runtime-checkable
# Protocol looks up every member on every call (microseconds each time, on the login
# path); an adapter's class decides it once.
_SHAPES: dict[type, tuple[bool, bool, bool]] = {}


def _shape(adapter: object) -> tuple[bool, bool, bool]:
    shape = _SHAPES.get(type(adapter))
    if shape is None:
        shape = (isinstance(adapter, RedirectAdapter), isinstance(adapter, DecoupledAdapter),
                 isinstance(adapter, SessionWatcher))
        if adapter is not None:
            _SHAPES[type(adapter)] = shape
    return shape


def is_redirect(adapter: object) -> TypeGuard[RedirectAdapter]:
    """The adapter of a bank the user is redirected to (and back from)."""
    return _shape(adapter)[0]


def is_decoupled(adapter: object) -> TypeGuard[DecoupledAdapter]:
    """The adapter of a decoupled (CIBA poll mode) bank."""
    return _shape(adapter)[1]


def is_session(adapter: object) -> TypeGuard[SessionWatcher]:
    """The adapter of a session bank (``kind: session``), whose progress can be read."""
    return _shape(adapter)[2]
