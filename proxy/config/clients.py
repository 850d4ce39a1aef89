"""``clients:`` (merchant apps), ``resource_servers:`` (merchant APIs) and ``apps:``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Literal

from jwcrypto import jwk
from jwcrypto.common import JWException

from proxy.config.env import UNRESOLVED
from proxy.config.errors import Problems, item
from proxy.config.reader import Section, describe
from proxy.config.settings import (
    AndroidApp,
    Apps,
    ClientSettings,
    IosApp,
    Lifetimes,
    ResourceServer,
    SigningKey,
    Subject,
)
from proxy.config.urls import check_https, check_redirect_uri, check_resource, check_web_page

CLIENT_KEYS = (
    "client_id", "type", "redirect_uris", "acr_values", "default_acr", "scopes",
    "native_callback_uris", "client_secret", "jwks", "fallback_acr", "client_secret_sha256",
    "profile", "require_dpop", "default_resource", "sector_identifier", "client_name",
    "client_uri", "approve_for", "native_sso", "share_bank_tokens",
    "authorization_details_types",
)  # fmt: skip
CLIENT_TYPES: tuple[Literal["public", "confidential"], ...] = ("public", "confidential")
RESOURCE_SERVER_KEYS = (
    "client_id", "client_secret", "client_secret_sha256", "jwks", "receive_bank_token",
    "audience",
)  # fmt: skip
PROFILES: tuple[Literal["default", "fapi2"], ...] = ("default", "fapi2")
FAPI2_MAX_CODE_LIFETIME = 60
# FAPI 2.0 Security Profile §5.3.2.2: "shall issue pushed authorization requests
# request_uri with expires_in values of less than 600 seconds"
FAPI2_REQUEST_URI_LIFETIME_BELOW = 600
# §5.4.1: authorization servers creating JWTs "shall use PS256, ES256, or EdDSA"; the
# ID tokens a fapi2 client receives are signed by keys.signing (an RSA key signs RS256).
# The same list as proxy.oauth.dpop.FAPI2_ALGS (the config cannot import it).
FAPI2_SIGNING_ALGS = ("ES256", "EdDSA", "PS256")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
# assetlinks.json: SHA-256 of the signing certificate, upper-case hex pairs joined by ':'
_FINGERPRINT = re.compile(r"[0-9A-F]{2}(:[0-9A-F]{2}){31}")
# a DNS host name in lower case (RFC 1123 labels)
_HOST = re.compile(
    r"(?=.{1,253}\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)


def read_clients(top: Section, routes: Mapping[str, str]) -> list[tuple[str, ClientSettings]]:
    """Each client with its key path. ``routes``: acr value -> id of the bank it routes to."""
    entries = top.items("clients")
    if not entries and top.raw("clients") in (None, []) and not top.broken:
        top.report("clients", "at least one client is needed")
    clients: list[tuple[str, ClientSettings]] = []
    for path, value in entries:
        client = _read_client(Section(value, path, top.problems, CLIENT_KEYS), routes)
        if client is not None:
            clients.append((path, client))
    return clients


def _read_client(s: Section, routes: Mapping[str, str]) -> ClientSettings | None:
    kind = s.choice("type", CLIENT_TYPES)
    redirect_uris = _uris(s, "redirect_uris", check_redirect_uri, required=True)
    acr_items = s.text_items("acr_values")
    acr_values = None if s.raw("acr_values") is None else tuple(acr for _, acr in acr_items)
    if s.raw("acr_values") == []:
        s.report("acr_values", "must not be empty (leave it out to allow every bank)")
    for path, acr in acr_items:
        if acr not in routes:
            s.problems.add(path, _no_route(acr, routes))
    default_acr = _client_acr(s, "default_acr", acr_values, routes)
    fallback_acr = _client_acr(s, "fallback_acr", acr_values, routes)
    client_secret, secret_hash, jwks = _credentials(s)
    if kind == "confidential" and not (
        s.has("client_secret") or s.has("client_secret_sha256") or s.has("jwks")
    ):
        s.problems.add(s.path, "a confidential client needs client_secret (or client_secret_"
                       "sha256), or jwks (its public keys, for private_key_jwt)")  # fmt: skip
    if kind == "public":
        for key in ("client_secret", "client_secret_sha256", "jwks"):
            if s.has(key):
                s.report(key, "a public client has no credentials; remove it, "
                         "or make the client confidential")  # fmt: skip
    profile = s.choice("profile", PROFILES, "default") or "default"
    if profile == "fapi2":
        # FAPI 2.0 Security Profile §5.3.2.1: the authorization server "shall only support
        # confidential clients" and authenticates them with mTLS or private_key_jwt
        # (§5.3.2.1, client authentication); this proxy offers private_key_jwt.
        if kind != "confidential" or not s.has("jwks") or s.has("client_secret") or s.has(
            "client_secret_sha256"
        ):
            s.report("profile", "fapi2 needs a confidential client that authenticates with "
                     "private_key_jwt: give it jwks and no client secret")  # fmt: skip
    client = ClientSettings(
        client_id=s.text("client_id", required=True),
        type=kind or "public",
        redirect_uris=redirect_uris,
        acr_values=acr_values,
        default_acr=default_acr,
        scopes=s.texts("scopes", ("openid",), required=s.has("scopes")),
        native_callback_uris=_uris(s, "native_callback_uris", check_https),
        fallback_acr=fallback_acr,
        client_secret=client_secret,
        jwks=jwks,
        client_secret_sha256=secret_hash,
        profile=profile,
        require_dpop=s.flag("require_dpop", False),
        default_resource=_resource(s, "default_resource"),
        sector_identifier=_sector(s),
        client_name=s.opt_text("client_name"),
        client_uri=_web_page(s, "client_uri"),
        approve_for=s.texts("approve_for"),
        native_sso=s.flag("native_sso", False),
        share_bank_tokens=s.texts("share_bank_tokens"),
        authorization_details_types=s.texts("authorization_details_types"),
    )
    return None if s.broken else client


def _sector(s: Section) -> str | None:
    sector = s.opt_text("sector_identifier")
    if sector is not None and not _HOST.fullmatch(sector):
        s.report("sector_identifier", "must be a host name in lower case, like "
                 f"merchant.example (OIDC Core §8.1: a sector is a host) (got {sector!r})")
    return sector


def _client_acr(
    s: Section, key: str, acr_values: tuple[str, ...] | None, routes: Mapping[str, str]
) -> str | None:
    """An acr value the client names for itself: one of its own, routing to a bank."""
    acr = s.opt_text(key)
    if acr is not None:
        if acr_values is not None and acr not in acr_values:
            s.report(key, f"{acr!r} is not in this client's acr_values")
        elif acr not in routes:
            s.report(key, _no_route(acr, routes))
    return acr


def _uris(
    s: Section, key: str, check: Callable[[str], str | None], *, required: bool = False
) -> tuple[str, ...]:
    uris: list[str] = []
    for path, uri in s.text_items(key, required=required):
        problem = check(uri)
        if problem:
            s.problems.add(path, problem)
        elif uri in uris:
            s.problems.add(path, "is listed twice")
        uris.append(uri)
    return tuple(uris)


def _credentials(s: Section) -> tuple[str | None, bytes | None, dict[str, object] | None]:
    """client_secret, or client_secret_sha256 (hex SHA-256 of the secret: only the hash
    is ever in memory), and/or jwks (public keys, for private_key_jwt). A secret must have
    MIN_SECRET_BYTES (:meth:`Section.credential`); a hash hides the length of its secret."""
    client_secret = s.credential("client_secret")
    secret_hash = None
    hashed = s.opt_text("client_secret_sha256", secret=True)
    if hashed is not None:
        if not _SHA256_HEX.fullmatch(hashed):
            s.report("client_secret_sha256", "must be the SHA-256 of the secret as 64 hex "
                     "digits (e.g. printf %s \"$SECRET\" | sha256sum)")  # fmt: skip
        else:
            secret_hash = bytes.fromhex(hashed)
        if client_secret is not None:
            s.report("client_secret_sha256", "give client_secret or its hash, not both")
    return client_secret, secret_hash, _jwks(s)


def _resource(s: Section, key: str) -> str | None:
    uri = s.opt_text(key)
    problem = check_resource(uri) if uri else None
    if problem:
        s.report(key, problem)
    return uri


def _web_page(s: Section, key: str) -> str | None:
    uri = s.opt_text(key)
    problem = check_web_page(uri) if uri else None
    if problem:
        s.report(key, problem)
    return uri


def _no_route(acr: str, routes: Mapping[str, str]) -> str:
    known = ", ".join(routes) or "none"
    return f"{acr!r} does not route to any bank (acr values of the banks: {known})"


def _jwks(s: Section) -> dict[str, object] | None:
    """A client's public JWKS, ``{keys: [...]}``; private keys are refused."""
    value = s.raw("jwks")
    if value is None:
        return None
    keys = value.get("keys") if isinstance(value, Mapping) else None
    if not isinstance(value, Mapping) or not isinstance(keys, list) or not keys:
        s.report(
            "jwks", f"must be a JWKS: a mapping with a non-empty keys list (got {describe(value)})"
        )
        return None
    ok = True
    for index, entry in enumerate(keys):
        path = item(f"{s.at('jwks')}.keys", index)
        try:
            if not isinstance(entry, Mapping) or UNRESOLVED in entry.values():
                raise ValueError(f"must be a mapping (got {describe(entry)})")
            key = jwk.JWK(**entry)
        except (JWException, ValueError, TypeError) as exc:
            detail = f": {exc}" if str(exc) else ""
            s.problems.add(path, f"is not a valid JWK{detail}")
            ok = False
            continue
        if key.has_private or key.get("kty") == "oct":
            s.problems.add(
                path, "holds a private or symmetric key; list only the client's public keys"
            )
            ok = False
    return {str(k): v for k, v in value.items()} if ok else None


def read_resource_servers(top: Section) -> list[tuple[str, ResourceServer]]:
    """Each resource server with its key path."""
    servers: list[tuple[str, ResourceServer]] = []
    for path, value in top.items("resource_servers"):
        s = Section(value, path, top.problems, RESOURCE_SERVER_KEYS)
        client_secret, secret_hash, jwks = _credentials(s)
        if not (s.has("client_secret") or s.has("client_secret_sha256") or s.has("jwks")):
            s.problems.add(path, "a resource server needs client_secret (or "
                           "client_secret_sha256), or jwks (for private_key_jwt)")  # fmt: skip
        audience = _resource(s, "audience")
        server = ResourceServer(
            client_id=s.text("client_id", required=True),
            client_secret=client_secret,
            receive_bank_token=s.flag("receive_bank_token", False),
            audience=audience,
            jwks=jwks,
            client_secret_sha256=secret_hash,
        )
        if not s.broken:
            servers.append((path, server))
    return servers


def check_client_ids(
    clients: list[tuple[str, ClientSettings]],
    servers: list[tuple[str, ResourceServer]],
    problems: Problems,
) -> None:
    """client_ids are unique across clients and resource servers (both authenticate
    at the same endpoints)."""
    seen: dict[str, str] = {}
    named = [(path, c.client_id) for path, c in clients] + [(p, r.client_id) for p, r in servers]
    for path, client_id in named:
        if client_id in seen:
            problems.add(
                f"{path}.client_id", f"{client_id!r} is already the client_id of {seen[client_id]}"
            )
        elif client_id:
            seen[client_id] = path


def check_across(
    clients: list[tuple[str, ClientSettings]],
    servers: list[tuple[str, ResourceServer]],
    lifetimes: Lifetimes,
    signing: tuple[SigningKey, ...],
    problems: Problems,
) -> None:
    """A client's default_resource is some resource server's audience; a fapi2 client's
    codes live at most 60 s (FAPI 2.0 Security Profile §5.3.2.1: the authorization
    server "shall issue authorization codes with a maximum lifetime of 60 seconds"), its
    request_uris less than 600 s, and its ID tokens are signed with an alg it may take."""
    audiences = {r.audience for _, r in servers if r.audience}
    weak_keys = [k.file or k.kid for k in signing if k.key.get("alg") not in FAPI2_SIGNING_ALGS]
    for path, client in clients:
        if client.default_resource and client.default_resource not in audiences:
            problems.add(
                f"{path}.default_resource",
                f"{client.default_resource!r} is not the audience of any resource server "
                f"(audiences: {', '.join(sorted(audiences)) or 'none'})",
            )
        if client.profile != "fapi2":
            continue
        if lifetimes.authorization_code > FAPI2_MAX_CODE_LIFETIME:
            problems.add(
                f"{path}.profile",
                f"fapi2 needs lifetimes.authorization_code <= {FAPI2_MAX_CODE_LIFETIME} "
                f"(it is {lifetimes.authorization_code})",
            )
        if lifetimes.request_uri >= FAPI2_REQUEST_URI_LIFETIME_BELOW:
            problems.add(
                f"{path}.profile",
                f"fapi2 needs lifetimes.request_uri < {FAPI2_REQUEST_URI_LIFETIME_BELOW} "
                f"(it is {lifetimes.request_uri})",
            )
        if weak_keys:
            problems.add(
                f"{path}.profile",
                f"fapi2 needs every keys.signing key to sign {', '.join(FAPI2_SIGNING_ALGS)}; "
                f"{', '.join(weak_keys)} signs RS256 (use an EC P-256 or Ed25519 key)",
            )


def check_sectors(
    clients: list[tuple[str, ClientSettings]], subject: Subject, problems: Problems
) -> None:
    """Under pairwise subjects each client has a sector: OIDC Core §8.1, "If there are
    multiple hostnames in the registered redirect_uris, the Client MUST register a
    sector_identifier_uri"; here a loopback or private-use redirect URI names no host
    that is the merchant's either."""
    if subject.type != "pairwise":
        return
    for path, client in clients:
        if client.sector is None:
            problems.add(
                f"{path}.sector_identifier",
                "is required with subject type pairwise when redirect_uris are not all "
                "https on one host: name the host of the sector whose clients share a "
                "user's sub, like merchant.example (OIDC Core §8.1). Clients that must "
                "recognise the same user (the merchant's own apps, e.g. with approve_for "
                "or native_sso) need the same sector",
            )


# OpenID Connect Native SSO for Mobile Apps 1.0 §3.1: the scope that asks for a
# device_secret (proxy.oauth.own_apps.DEVICE_SSO; the config cannot import it)
DEVICE_SSO_SCOPE = "device_sso"


def check_own_apps(
    clients: list[tuple[str, ClientSettings]], subject: Subject, problems: Problems
) -> None:
    """``approve_for``, ``native_sso`` and ``share_bank_tokens`` (docs/app2app.md, "The
    merchant's own apps"): each names clients that exist; an approver holds a refresh token
    (offline_access) to approve with; ``device_sso`` is for native_sso clients; and, under
    pairwise subjects, clients linked by approve_for or native_sso share a sector (OIDC
    Core §8.1: one sub per sector; a login shared across two sectors would hand one client
    the other sector's sub, or a second sub for one user)."""
    by_id = {client.client_id: (path, client) for path, client in clients}
    pairwise = subject.type == "pairwise"
    sso = [(path, c) for path, c in clients if c.native_sso]
    for path, client in clients:
        for key, named in (("approve_for", client.approve_for),
                           ("share_bank_tokens", client.share_bank_tokens)):
            for index, other_id in enumerate(named):
                at = item(f"{path}.{key}", index)
                other = by_id.get(other_id)
                if other is None:
                    problems.add(at, f"{other_id!r} is not the client_id of any client")
                elif other_id == client.client_id:
                    problems.add(at, "names this client itself")
                elif key == "approve_for" and pairwise and _other_sector(client, other[1]):
                    problems.add(at, f"{other_id!r} is of another sector "
                                 f"({other[1].sector} and {client.sector}): a client may "
                                 "approve logins only of clients of its own sector, which "
                                 "see the same sub (set sector_identifier)")
                elif key == "share_bank_tokens" and other_id not in client.approve_for and not (
                        client.native_sso and other[1].native_sso):
                    problems.add(at, f"{other_id!r} gets no login from this client: list it "
                                 "in approve_for, or give both native_sso: true")
        if client.profile == "fapi2" and (client.native_sso or any(
                client.client_id in other.approve_for for _, other in clients)):
            # FAPI 2.0 Security Profile §5.3.2.2: the authorization server "shall require
            # pushed authorization requests"; an approval or a Native SSO exchange gives a
            # login without one
            problems.add(f"{path}.profile", "a fapi2 client logs in only through a pushed "
                         "request: it may not be in another client's approve_for, nor "
                         "take part in native_sso")
        if client.approve_for and "offline_access" not in client.scopes:
            problems.add(f"{path}.approve_for", "an approving client needs offline_access in "
                         "its scopes: it approves with its refresh token")
        if DEVICE_SSO_SCOPE in client.scopes and not client.native_sso:
            problems.add(f"{path}.scopes", f"{DEVICE_SSO_SCOPE} is for clients with "
                         "native_sso: true")
    if pairwise and sso:
        first_path, first = sso[0]
        for path, client in sso[1:]:
            if _other_sector(client, first):
                problems.add(f"{path}.native_sso", f"clients with native_sso share one "
                             f"device session and so one sector: this one's is "
                             f"{client.sector}, {first.client_id!r}'s ({first_path}) is "
                             f"{first.sector} (set sector_identifier)")


def _other_sector(one: ClientSettings, other: ClientSettings) -> bool:
    """Two known sectors that differ (a client without one is reported by check_sectors)."""
    return None not in (one.sector, other.sector) and one.sector != other.sector


def read_apps(top: Section) -> Apps:
    apps = top.section("apps", ("ios", "android"))
    ios: list[IosApp] = []
    for path, value in apps.items("ios"):
        s = Section(value, path, top.problems, ("app_id", "paths"))
        app_id = s.text("app_id", required=True)
        if app_id and "." not in app_id:
            s.report("app_id", f"must be TEAMID.bundle.id, like ABCDE12345.com.example.app "
                     f"(got {app_id!r})")  # fmt: skip
        ios.append(IosApp(app_id=app_id, paths=s.texts("paths", required=True)))
    android: list[AndroidApp] = []
    for path, value in apps.items("android"):
        s = Section(value, path, top.problems, ("package", "sha256_cert_fingerprints"))
        package = s.text("package", required=True)
        prints = tuple(p.upper() for p in s.texts("sha256_cert_fingerprints", required=True))
        for index, fingerprint in enumerate(prints):
            if not _FINGERPRINT.fullmatch(fingerprint):
                s.problems.add(
                    item(s.at("sha256_cert_fingerprints"), index),
                    "must be 32 hex pairs joined by ':', like 14:6D:E9:...:C5 "
                    f"(got {fingerprint!r})",
                )
        android.append(AndroidApp(package=package, sha256_cert_fingerprints=prints))
    return Apps(ios=tuple(ios), android=tuple(android))
