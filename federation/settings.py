"""A bank's settings, as the operator wrote them in ``config.yaml``.

The proxy's config loader builds these; federation code only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ClientAuth = Literal[
    "client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"
]
BankKind = Literal["oidc", "ciba", "session"]
# kind ciba: how the start and poll calls authenticate; "access_token": the API token of
# the permissions API as client_assertion (BankID's app-authorize)
Assertion = Literal["access_token"]


@dataclass(frozen=True)
class TlsSettings:
    cert: str  # path to a PEM certificate (already resolved against the config folder)
    key: str  # path to its PEM private key


@dataclass(frozen=True)
class SessionApi:
    """How the proxy reaches a ``kind: session`` bank (docs/configuration.md)."""

    api: str  # sessions at {api}/sessions, no trailing slash
    api_token_endpoint: str  # client_credentials, with the bank's client_auth
    provider: str  # allowedProviders: [provider]
    redirect_parameter: str  # additionalParameters: {<this>: {issuer}/callback/{id}}
    api_scopes: tuple[str, ...] = ()
    account_id: str | None = None  # the Signicat-AccountId header, when set
    requested_attributes: tuple[str, ...] = ()
    # the session's loa -> authentication_level; when set, a session whose loa is not
    # one of its keys is refused (access_denied)
    loa: Mapping[str, str] = field(default_factory=dict)
    poll_interval: float = 2.0  # seconds between reads of a session not yet finished


@dataclass(frozen=True)
class Permissions:
    """BankID's permissions API, where a ``kind: ciba`` bank wants each login registered
    upfront as a permission whose token is the start call's ``login_hint_token``
    (docs/configuration.md, ``permissions:``)."""

    # POST the permission here (Bearer: the API token); "" for an oidc bank, which only
    # names the permission types of its RFC 9396 items (BankID's OIDC provider)
    endpoint: str = ""
    scopes: tuple[str, ...] = ()  # of the client-credentials API token
    # where the API token comes from; None: the bank's discovered token_endpoint
    token_endpoint: str | None = None
    login_hint_scheme: str = "nnin"  # login_hint -> loginHint: [{scheme, value}]
    intents: tuple[str, ...] = ("app2app",)
    login_type: str = "authentication.v1"  # the permission of a login without details
    # merchant authorization_details type -> permission type (payment.v1, text.v1)
    types: Mapping[str, str] = field(default_factory=dict)
    loa: str = "sub"  # the permission's loa


@dataclass(frozen=True)
class BankSettings:
    id: str
    kind: BankKind
    issuer: str
    client_id: str
    client_auth: ClientAuth
    acr_values: tuple[str, ...]
    upstream_acr_values: tuple[str, ...] = ()
    timeout: float = 10.0
    client_secret: str | None = None
    # private_key_jwt: the private key as a JWK JSON string or PEM text (file contents)
    private_key: str | None = None
    tls: TlsSettings | None = None
    userinfo: bool = False
    scopes: tuple[str, ...] = ("openid",)
    use_par: bool = False
    authentication_level: str | None = None
    # merchant claim name -> bank claim name (kind session: a path into the session's
    # subject, dotted for nested attributes, e.g. nin.value)
    claims: Mapping[str, str] = field(default_factory=dict)
    interstitial: bool = False
    fallback_acr: str | None = None
    jwks_cooldown: float = 5.0
    native: bool = True
    # seconds of clock skew tolerated when checking exp/iat of the bank's ID token
    leeway: float = 30.0
    # the bank's name as its users know it ("Sandbox Bank"), in the sentences of the
    # picker, the interstitial, the waiting page and the native prompt; the id is the
    # operator's label (logs, metrics, /callback/{id})
    name: str | None = None
    # a line under the name on the picker that tells two ways into one bank apart ("in
    # the app on this phone"); None: the name alone
    description: str | None = None
    # kind: ciba: the field of the backchannel response holding the App2App deep link
    # (BankID's app-authorize answers ``authorize_uri``)
    deep_link_field: str = "authorize_uri"
    # kind: ciba: merchant authorization request fields sent on to the bank as they are
    # (e.g. BankID's ``device_info``)
    pass_through: tuple[str, ...] = ()
    # kind: ciba: the discovery key naming the start endpoint (BankID's app-authorize is
    # ``app_authentication_endpoint``)
    start_endpoint: str = "backchannel_authentication_endpoint"
    # kind: ciba with permissions: the start and poll calls send the permissions API token
    # as client_assertion instead of client_auth
    assertion: Assertion | None = None
    permissions: Permissions | None = None
    # kind: session (a headless REST session API, Signicat's Authentication REST API);
    # such a bank has no OpenID ``issuer`` (it is ""): the keys below say where it is
    session: SessionApi | None = None
    # with traces on (docs/observability.md): send W3C traceparent on calls to this bank
    trace_context: bool = True

    @property
    def display_name(self) -> str:
        return self.name or self.id
