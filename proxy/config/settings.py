"""The operator's configuration, parsed once into frozen dataclasses.

:mod:`proxy.config` reads ``config.yaml`` into these; everything else reads
only these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from jsonschema.protocols import Validator
from jwcrypto import jwk

from federation.settings import BankSettings


def https_host(uri: str) -> str | None:
    """The host of an https URI, in lower case; None for any other URI."""
    try:
        parts = urlsplit(uri)
        return parts.hostname if parts.scheme.lower() == "https" else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Listen:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class StoreSettings:
    url: str = "redis://127.0.0.1:6379/0"
    cluster: bool = False
    # every key starts with this: several deployments (or test runs) can share a Redis
    prefix: str = "a2a:"


@dataclass(frozen=True)
class SigningKey:
    """One ``keys.signing`` entry: a private JWK with a kid and alg, published in /jwks
    from the start, signing in ``[not_before, not_after)`` (unix seconds; None: open)."""

    key: jwk.JWK
    not_before: int | None = None
    not_after: int | None = None
    file: str = ""  # as the config names it, for messages and ``keys plan``

    @property
    def kid(self) -> str:
        return str(self.key["kid"])

    def may_sign(self, now: float) -> bool:
        return (self.not_before is None or self.not_before <= now) and (
            self.not_after is None or now < self.not_after
        )


@dataclass(frozen=True)
class Keys:
    # all are published in /jwks; the one that signs is chosen at signing time
    # (proxy.config.rotation.signer_at): the newest by not_before whose window holds now
    signing: tuple[SigningKey, ...]
    # 32 raw bytes (the config holds them base64url) that encrypt bank tokens at rest
    token_encryption: bytes
    # keys.token_encryption given as a list: the keys after the first, which only decrypt
    # (a key rotation: docs/key-rotation.md)
    token_decryption: tuple[bytes, ...] = ()

    @property
    def token_keys(self) -> tuple[bytes, ...]:
        """Every token encryption key: the one that encrypts first, then the others."""
        return (self.token_encryption, *self.token_decryption)


@dataclass(frozen=True)
class Lifetimes:
    transaction: int = 600
    authorization_code: int = 60
    access_token: int = 300
    refresh_token: int = 2592000
    id_token: int = 300
    refresh_grace: int = 10
    # RFC 9126 pushed authorization requests; at most 600 (config check)
    request_uri: int = 60
    # a POST /challenge answer: how long it may be signed into a device-key JWT
    challenge: int = 60
    # GET /gateway/check: the JWT it hands the gateway (never past the access token's
    # exp), and how long the gateway may cache a Bearer check (below gateway_jwt)
    gateway_jwt: int = 60
    gateway_cache: int = 5


@dataclass(frozen=True)
class Subject:
    type: Literal["pairwise", "bank"] = "pairwise"
    salt: str | None = None  # required for pairwise


@dataclass(frozen=True)
class ClientSettings:
    client_id: str
    type: Literal["public", "confidential"]
    redirect_uris: tuple[str, ...]
    acr_values: tuple[str, ...] | None = None  # None: every bank
    default_acr: str | None = None
    scopes: tuple[str, ...] = ("openid",)
    native_callback_uris: tuple[str, ...] = ()
    # where a login continues when starting App2App at the routed bank fails (a bank's
    # own fallback_acr comes first)
    fallback_acr: str | None = None
    client_secret: str | None = None  # confidential with client_secret_basic/post
    jwks: dict[str, object] | None = None  # confidential with private_key_jwt (public JWKS)
    # instead of client_secret: SHA-256 of the secret (32 bytes); only the hash is kept
    client_secret_sha256: bytes | None = None
    # "fapi2": FAPI 2.0 Security Profile rules for this client (docs/security.md)
    profile: Literal["default", "fapi2"] = "default"
    # tokens must be DPoP-bound (RFC 9449); always so with profile fapi2
    require_dpop: bool = False
    # RFC 8707: the audience of this client's tokens when the request names no resource
    default_resource: str | None = None
    # RFC 9396: the authorization_details types this client may ask for
    authorization_details_types: tuple[str, ...] = ()
    # OIDC Core §8.1: the host whose clients share a pairwise sub (docs/security.md);
    # None: the one https host of redirect_uris (see ``sector``)
    sector_identifier: str | None = None
    # RFC 7591 §2: the client's name shown to the user, and its home page; the proxy's
    # pages link back to it ("Back to {client_name}") when a login of this client ends
    # on one of them
    client_name: str | None = None
    client_uri: str | None = None
    # the merchant's own apps (docs/app2app.md): the clients whose App2App logins this
    # one may approve with its device-key bound login
    approve_for: tuple[str, ...] = ()
    # may take part in OpenID Connect Native SSO (the device_sso scope, the token exchange)
    native_sso: bool = False
    # the clients whose logins made from this one's (an approval, a Native SSO exchange)
    # also carry the bank's tokens; none by default
    share_bank_tokens: tuple[str, ...] = ()

    @property
    def dpop_required(self) -> bool:
        return self.require_dpop or self.profile == "fapi2"

    @property
    def sector(self) -> str | None:
        """OIDC Core §8.1: "the Sector Identifier used for pairwise identifier calculation
        is the host component of the registered redirect_uri": ``sector_identifier`` when
        set, else the host of redirect_uris when they are all https on that one host;
        None when they are not (the config check then asks for ``sector_identifier``)."""
        if self.sector_identifier is not None:
            return self.sector_identifier
        hosts = {https_host(uri) for uri in self.redirect_uris}
        host = hosts.pop() if len(hosts) == 1 else None
        return host or None


@dataclass(frozen=True)
class AuthorizationDetailsType:
    """``authorization_details_types.<name>``: an RFC 9396 type the operator declares, the
    JSON Schema each object of the type must match, and whether merchant ID tokens carry
    the approved objects of the type."""

    name: str
    schema: Mapping[str, Any]
    validator: Validator = field(compare=False, repr=False)  # the schema, compiled once
    id_token: bool = False


@dataclass(frozen=True)
class IosApp:
    app_id: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class AndroidApp:
    package: str
    sha256_cert_fingerprints: tuple[str, ...]


@dataclass(frozen=True)
class Apps:
    ios: tuple[IosApp, ...] = ()
    android: tuple[AndroidApp, ...] = ()


@dataclass(frozen=True)
class ResourceServer:
    client_id: str
    client_secret: str | None = None  # HTTP Basic at /introspect
    receive_bank_token: bool = False
    # RFC 8707: the resource URI this API serves; a token whose audience is another
    # resource is inactive for it. None: it sees tokens issued without a resource.
    audience: str | None = None
    jwks: dict[str, object] | None = None  # private_key_jwt at /introspect (public JWKS)
    client_secret_sha256: bytes | None = None  # instead of client_secret


@dataclass(frozen=True)
class RateLimits:
    """Requests per ``window`` seconds, counted in the store, per endpoint name
    (``authorize``, ``token``, ``par``, ``revoke``, ``challenge``, ``introspect``);
    ``token``, ``par``, ``revoke`` and ``challenge`` share one count, and one of them left
    out takes the smallest limit given to the others (:mod:`proxy.web.ratelimit`); any
    other endpoint left out is not limited."""

    window: int = 60
    per_client: dict[str, int] = field(default_factory=dict)
    per_address: dict[str, int] = field(default_factory=dict)
    # take the client address from the last X-Forwarded-For hop (behind a proxy you run)
    trust_forwarded_for: bool = False


@dataclass(frozen=True)
class LoginHintLimit:
    """``login_hint_limit:``: logins one decoupled bank is asked to start for one user
    (one ``login_hint`` or ``login_hint_token``) per ``window`` seconds, across every
    instance (proxy.login.hints)."""

    logins: int = 5
    window: int = 900


@dataclass(frozen=True)
class MetricsSettings:
    """``metrics:``: GET /metrics on the main port (docs/observability.md)."""

    enabled: bool = True  # False: /metrics answers 404
    # set: /metrics wants "Authorization: Bearer <token>" (merchants must not read it)
    bearer_token: str | None = None


@dataclass(frozen=True)
class Config:
    issuer: str  # no trailing slash
    keys: Keys
    listen: Listen = field(default_factory=Listen)
    store: StoreSettings = field(default_factory=StoreSettings)
    lifetimes: Lifetimes = field(default_factory=Lifetimes)
    subject: Subject = field(default_factory=Subject)
    banks: tuple[BankSettings, ...] = ()
    clients: tuple[ClientSettings, ...] = ()
    apps: Apps = field(default_factory=Apps)
    resource_servers: tuple[ResourceServer, ...] = ()
    rate_limits: RateLimits | None = None  # None: no limits
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    login_hint_limit: LoginHintLimit = field(default_factory=LoginHintLimit)
    authorization_details_types: tuple[AuthorizationDetailsType, ...] = ()

    @property
    def approvals(self) -> bool:
        """Some client approves App2App logins of others (``approve_for``)."""
        return any(c.approve_for for c in self.clients)

    @property
    def native_sso(self) -> bool:
        """Some client takes part in OpenID Connect Native SSO."""
        return any(c.native_sso for c in self.clients)
