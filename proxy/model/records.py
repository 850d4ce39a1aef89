"""The records the proxy keeps in the store, one dataclass per kind.

Kinds and what keys them (the store hashes every id):
``txn`` (the proxy's state toward the bank, keyed by its state parameter, or for
a decoupled bank by the resume handle, or for a session bank by the state the
bank's broker chose), ``swatch`` (a session bank's login as /authorize/status
reads it, keyed by its status handle), ``par`` (a pushed authorization request,
keyed by its request_uri), ``pick`` (an authorization request waiting for the
user to choose a bank), ``page`` (a login as the proxy's interstitial shows it again,
keyed by the page's handle), ``chosen`` (the bank a picker choice went to, keyed by
the choice's id), ``poll`` (the lock that spaces out polls of a decoupled
bank), ``code`` (merchant authorization
code), ``grant`` (one login: identity and encrypted bank tokens), ``at`` / ``rt``
(merchant access / refresh tokens, naming their grant), ``rt_next`` (the pair a
rotated refresh token became, encrypted, kept for the grace window), ``chal`` (a
single-use challenge for a device-key JWT, keyed by its value), ``dsess`` (an OpenID
Connect Native SSO device session, keyed by its device_secret: stored hashed, as every
id is).
Operator revocation finds a subject's or client's grants by scanning every
``grant`` record (their ``sub`` and ``client_id`` fields): see :mod:`proxy.ops.revoke`.
A token is valid only while its grant record exists: revoking a grant is
deleting one key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from proxy.model.tokens import REFRESH_TOKEN, grant_of


class Record:
    """A record is stored as a JSON object of its fields; a field that is None and whose
    default is None is left out (Redis memory per login: docs/performance.md)."""

    kind: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        layout = _layout(type(self))
        data = {name: getattr(self, name) for name in layout.names}
        for name in layout.optional:
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The record a store's JSON holds: its fields (a JSON array read as a tuple),
        anything else ignored (a field a later version added), a missing field without a
        default refused (TypeError, as the dataclass's constructor would). Built without
        the frozen dataclass's ``__init__``, which sets each field through
        ``object.__setattr__``: a grant took 3.5 µs, and introspection decodes two
        records per request."""
        layout = _layout(cls)
        values = dict(layout.defaults)
        for key, value in data.items():
            if key in layout.names:
                values[key] = tuple(value) if isinstance(value, list) else value
        if len(values) != len(layout.names):
            missing = sorted(layout.names - values.keys())
            raise TypeError(f"{cls.__name__} record without {', '.join(missing)}")
        record = object.__new__(cls)
        record.__dict__.update(values)
        return record


@dataclass(frozen=True)
class _Layout:
    names: frozenset[str]
    optional: tuple[str, ...]  # the fields that default to None
    defaults: Mapping[str, Any]  # every field with a default (none has a default_factory)


_LAYOUTS: dict[type, _Layout] = {}


def _layout(cls: type) -> _Layout:
    """A record class's fields, found once."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        fields = dataclasses.fields(cls)
        if any(f.default_factory is not dataclasses.MISSING for f in fields):
            raise TypeError(f"{cls.__name__}: a record's defaults are plain values")
        layout = _Layout(frozenset(f.name for f in fields),
                         tuple(f.name for f in fields if f.default is None),
                         {f.name: f.default for f in fields
                          if f.default is not dataclasses.MISSING})
        _LAYOUTS[cls] = layout
    return layout


@dataclass(frozen=True)
class Transaction(Record):
    kind: ClassVar[str] = "txn"
    client_id: str
    redirect_uri: str
    state: str | None
    nonce: str | None
    code_challenge: str
    scope: tuple[str, ...]
    acr: str
    bank_id: str
    # the bank adapter's state for this login (a PKCE verifier, a nonce); the store keeps
    # it, and poll's auth_req_id, sealed (proxy.login.transactions)
    conn_data: dict[str, Any]
    # the login came through /native/authorize: the callback and resume answer JSON
    native: bool = False
    # decoupled banks only: see proxy.login.decoupled.Poll
    poll: dict[str, Any] | None = None
    # RFC 8707: the audience of the tokens (the request's resource, or the client's
    # default_resource); None: no specific resource
    resource: str | None = None
    # RFC 9449 §10: the code is bound to this DPoP key thumbprint
    dpop_jkt: str | None = None
    # session banks only: the handle of the login's SessionWatch (/authorize/status)
    watch: str | None = None
    # RFC 9396: the request's authorization_details, as checked (None: it had none)
    authorization_details: tuple[dict[str, Any], ...] | None = None
    # traces on: the W3C traceparent of the request that started the login, whose trace
    # the callback or resume continues (proxy.observability.tracing)
    trace: str | None = None


@dataclass(frozen=True)
class SessionWatch(Record):
    """A session bank's login as ``GET /authorize/status/{handle}`` reads it: the
    session at the broker, until the callback settles it (proxy.login.sessions)."""

    kind: ClassVar[str] = "swatch"
    bank_id: str
    client_id: str
    conn_data: dict[str, Any]  # the session, as the adapter kept it
    interval: int  # seconds between reads of the broker, as the client is told
    # "complete" or "failed" once the login has ended; None: read the broker
    outcome: str | None = None


@dataclass(frozen=True)
class PushedRequest(Record):
    """RFC 9126: the validated parameters of a pushed authorization request (those the
    proxy reads, each bounded: proxy.oauth.authorize_checks.PARAMETER_LIMITS)."""

    kind: ClassVar[str] = "par"
    client_id: str
    params: dict[str, str]
    # the push was client-authenticated (a confidential client): only such a request may
    # name its user to a decoupled bank (proxy.login.hints)
    authenticated: bool = False


@dataclass(frozen=True)
class PendingChoice(Record):
    """An authorization request that names no bank: the user picks one, once (the
    choice is consumed: proxy.login.picker)."""

    kind: ClassVar[str] = "pick"
    params: dict[str, str]  # as checked: the known parameters, each bounded
    native: bool
    # where the request came from: pushed to /par, and by an authenticated client
    pushed: bool = False
    authenticated: bool = False


@dataclass(frozen=True)
class LoginPage(Record):
    """A browser login as a page of the proxy shows it again on reload or Back, without
    starting anything (proxy.login.pages)."""

    kind: ClassVar[str] = "page"
    bank_id: str
    client_id: str
    # JWE of {"url": where the login goes on (the bank, or a page of the proxy),
    # "txn": the key of the login's transaction (to tell whether it is still going on)}
    sealed: str
    # a decoupled bank's: the code the bank's app shows, to compare
    binding_message: str | None = None


@dataclass(frozen=True)
class ChosenBank(LoginPage):
    """The login a picker choice started: its picker page shows it from then on."""

    kind: ClassVar[str] = "chosen"


@dataclass(frozen=True)
class Grant(Record):
    kind: ClassVar[str] = "grant"
    grant_id: str
    client_id: str
    sub: str
    scope: tuple[str, ...]
    acr: str
    amr: tuple[str, ...]
    auth_time: int
    bank_id: str
    authentication_level: str | None
    claims: dict[str, Any]
    bank_tokens: str  # JWE of federation.protocol.BankTokens.to_dict()
    resource: str | None = None  # RFC 8707, from the Transaction: the tokens' audience
    # how ``sub`` was computed (proxy.oauth.subject.subject_space): a login shared with
    # another client keeps its sub only when that client's space is the same
    subject_space: str | None = None
    # the public JWK of the device key bound at the code exchange (App2App approvals)
    device_key: dict[str, Any] | None = None
    # OpenID Connect Native SSO: the device session this login belongs to, and ds_hash of
    # its device_secret; both go into every ID token of the grant
    sid: str | None = None
    ds_hash: str | None = None
    # RFC 9396: what the user approved (the bank's answer where it gave one); None: the
    # login asked for no authorization_details
    authorization_details: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True)
class Code(Record):
    kind: ClassVar[str] = "code"
    grant_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    dpop_jkt: str | None = None  # RFC 9449 §10: the token request's proof must use this key
    # OIDC Core §3.1.3.6: the first ID token carries the authorization request's nonce;
    # kept here, not in the grant, which outlives the code by days
    nonce: str | None = None
    # traces on: the traceparent of the request that issued the code, whose trace the
    # code exchange continues (proxy.observability.tracing)
    trace: str | None = None


@dataclass(frozen=True)
class AccessToken(Record):
    """An access token's own facts; its client, who logged in and the bank's tokens are
    its grant's. The token's value names the grant (:func:`proxy.model.tokens.new_grant_value`),
    so the record does not repeat it."""

    kind: ClassVar[str] = "at"
    iat: int
    exp: int
    # narrower than the grant's after a refresh that asked for less (RFC 6749 §6); None:
    # the grant's scope
    scope: tuple[str, ...] | None = None
    aud: str | None = None  # RFC 8707: the one resource server that sees it active
    jkt: str | None = None  # RFC 9449: DPoP-bound to the key with this thumbprint
    # RFC 9396 §6: fewer of the grant's authorization_details, when the token request
    # asked for fewer; None: the grant's
    authorization_details: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True)
class RefreshToken(Record):
    """Its client and scope are its grant's (a refresh token always carries the whole
    scope of the grant; a refresh may ask for less for the access token it mints).

    The token's value names its grant (:func:`proxy.model.tokens.new_grant_value`), so
    its record does not repeat it (Redis memory per live token: docs/performance.md);
    a token issued before it did (``a2a_rt_`` and the secret alone) keeps a record
    that holds ``grant_id``. Read and written with the token: :meth:`of`,
    :meth:`stored`."""

    kind: ClassVar[str] = "rt"
    grant_id: str
    iat: int
    exp: int
    # RFC 9449 §5: a public client's refresh token is bound to its DPoP key
    jkt: str | None = None

    @classmethod
    def of(cls, token: str, data: Mapping[str, Any]) -> RefreshToken:
        """The record of refresh token ``token``: of the grant the token names, or the
        one its record holds (a token of the older form). TypeError if neither."""
        named = cls.grant_named(token, data)
        if named is None:
            raise TypeError("RefreshToken record without grant_id")
        return cls.from_json({**data, "grant_id": named})

    def stored(self, token: str) -> dict[str, Any]:
        """What the store keeps for ``token``: without ``grant_id`` when the token names
        this grant, with it for a token of the older form."""
        data = self.to_json()
        if grant_of(REFRESH_TOKEN, token) == self.grant_id:
            del data["grant_id"]
        return data

    @staticmethod
    def grant_named(token: str, data: Mapping[str, Any]) -> str | None:
        """The grant of a refresh token's record or consume marker (whose ``grant_id``
        is the record's, None for a token that names its grant), or None."""
        held = data.get("grant_id")
        return held if isinstance(held, str) else grant_of(REFRESH_TOKEN, token)


@dataclass(frozen=True)
class RotatedPair(Record):
    kind: ClassVar[str] = "rt_next"
    grant_id: str
    client_id: str
    pair: str  # JWE of the token response the rotation produced, with its "exp"
    jkt: str | None = None  # the DPoP key the rotation's proof used: a retry must use it


@dataclass(frozen=True)
class Challenge(Record):
    """A ``POST /challenge`` answer: signed into one device-key JWT of this client, once."""

    kind: ClassVar[str] = "chal"
    client_id: str


@dataclass(frozen=True)
class DeviceSession(Record):
    """OpenID Connect Native SSO: the device session a device_secret stands for. It is
    alive while its record and the login it was made by (``grant_id``) both exist."""

    kind: ClassVar[str] = "dsess"
    sid: str
    grant_id: str
    ds_hash: str
