"""``banks:``, each bank an upstream authorization server that some acr values route to."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple, get_args

from federation.ciba import RESERVED_FIELDS
from federation.registry import ADAPTERS
from federation.settings import BankKind, BankSettings, ClientAuth, TlsSettings
from proxy.config.errors import Problems
from proxy.config.keys import KeyFileError, check_tls_files, read_private_key, resolve
from proxy.config.permissions import BANKID_KEYS, read_permissions, read_start_endpoint
from proxy.config.reader import Section
from proxy.config.session_banks import SESSION_KEYS, read_session_api
from proxy.config.urls import check_issuer

BANK_KEYS = (
    "id", "acr_values", "upstream_acr_values", "kind", "issuer", "timeout", "client_id",
    "client_auth", "client_secret", "private_key", "tls", "userinfo", "scopes", "use_par",
    "authentication_level", "claims", "interstitial", "fallback_acr", "jwks_cooldown",
    "native", "leeway", "name", "description", "deep_link_field", "pass_through",
    "trace_context", *SESSION_KEYS, *BANKID_KEYS,
)  # fmt: skip
# only the kinds that have an adapter (federation.registry.ADAPTERS)
KINDS: tuple[BankKind, ...] = tuple(k for k in get_args(BankKind) if k in ADAPTERS)
CLIENT_AUTHS: tuple[ClientAuth, ...] = get_args(ClientAuth)
SECRET_AUTHS = ("client_secret_basic", "client_secret_post")
# the id is a path segment: /callback/{id}
_BANK_ID = re.compile(r"[a-z0-9-]+")


def read_banks(top: Section, base_dir: Path) -> list[tuple[str, BankSettings]]:
    """Each bank with its key path."""
    entries = top.items("banks")
    if not entries and top.raw("banks") in (None, []) and not top.broken:
        top.report("banks", "at least one bank is needed (without one no client can log in)")
    banks: list[_Read] = []
    for path, value in entries:
        read = _read_bank(Section(value, path, top.problems, BANK_KEYS), base_dir)
        if read is not None:
            banks.append(read)
    _check_across(banks, top.problems)
    return [(read.path, read.bank) for read in banks]


class _Read(NamedTuple):
    path: str
    bank: BankSettings
    acr_paths: list[tuple[str, str]]  # (key path, acr value)


def _read_bank(s: Section, base_dir: Path) -> _Read | None:
    bank_id = s.text("id", required=True)
    if bank_id and not _BANK_ID.fullmatch(bank_id):
        s.report("id", f"must be lowercase letters, digits and '-' only; it is used in "
                 f"/callback/{{id}} (got {bank_id!r})")  # fmt: skip
    kind = s.choice("kind", KINDS) or "oidc"
    # a session bank has no issuer: its API is named by the session keys
    issuer = "" if kind == "session" else s.text("issuer", required=True)
    problem = check_issuer(issuer) if issuer else None
    if problem:
        s.report("issuer", problem)
    auth = s.choice("client_auth", CLIENT_AUTHS)
    client_secret = _client_secret(s, auth)
    private_key = _private_key(s, auth, base_dir)
    tls = _tls(s, auth, base_dir)
    acr_paths = s.text_items("acr_values", required=True)
    scopes = s.texts("scopes", ("openid",))
    if kind != "session" and isinstance(s.raw("scopes"), list) and "openid" not in scopes:
        s.report("scopes", f"must contain openid (got {list(scopes)})")
    timeout = s.number("timeout", 10.0, exclusive=True)
    claims = s.text_map("claims")
    permissions, assertion = read_permissions(s, kind)
    bank = BankSettings(
        id=bank_id,
        kind=kind,
        issuer=issuer,
        client_id=s.text("client_id", required=True),
        client_auth=auth or "client_secret_basic",
        acr_values=tuple(acr for _, acr in acr_paths),
        upstream_acr_values=s.texts("upstream_acr_values"),
        timeout=timeout,
        client_secret=client_secret,
        private_key=private_key,
        tls=tls,
        userinfo=s.flag("userinfo", False),
        scopes=scopes,
        use_par=s.flag("use_par", False),
        authentication_level=s.opt_text("authentication_level"),
        claims=claims,
        interstitial=s.flag("interstitial", False),
        fallback_acr=s.opt_text("fallback_acr"),
        jwks_cooldown=s.number("jwks_cooldown", 5.0),
        native=s.flag("native", True),
        leeway=s.number("leeway", 30.0),
        name=s.opt_text("name"),
        description=s.opt_text("description"),
        deep_link_field=s.opt_text("deep_link_field") or "authorize_uri",
        pass_through=s.texts("pass_through"),
        trace_context=s.flag("trace_context", True),
        session=read_session_api(s, kind, timeout, claims),
        start_endpoint=read_start_endpoint(s, kind),
        assertion=assertion,
        permissions=permissions,
    )
    _check_decoupled(s, bank)
    return None if s.broken else _Read(s.path, bank, acr_paths)


def _check_decoupled(s: Section, bank: BankSettings) -> None:
    if bank.kind != "ciba":
        for key in ("deep_link_field", "pass_through"):
            if s.has(key):
                s.report(key, "is only used with kind ciba")
        return
    for name in bank.pass_through:
        if name in RESERVED_FIELDS:  # the adapter would drop it
            s.report("pass_through", f"{name!r} is set by the proxy itself; remove it")


def _client_secret(s: Section, auth: ClientAuth | None) -> str | None:
    if auth in SECRET_AUTHS:
        return s.text("client_secret", required=True, secret=True, why=f" with client_auth {auth}")
    if auth is not None and s.has("client_secret"):
        s.report("client_secret", f"is only used with client_auth {' or '.join(SECRET_AUTHS)}")
    return None


def _private_key(s: Section, auth: ClientAuth | None, base_dir: Path) -> str | None:
    if auth != "private_key_jwt":
        if auth is not None and s.has("private_key"):
            s.report("private_key", "is only used with client_auth private_key_jwt")
        return None
    why = " with client_auth private_key_jwt (a file holding a private JWK or PEM key)"
    name = s.text("private_key", required=True, why=why)
    if not name:
        return None
    try:
        _, text = read_private_key(resolve(base_dir, name))
    except KeyFileError as exc:
        s.report("private_key", str(exc))
        return None
    return text


def _tls(s: Section, auth: ClientAuth | None, base_dir: Path) -> TlsSettings | None:
    # tls may come with another client_auth too: mTLS-bound tokens (RFC 8705 §3)
    required = auth == "tls_client_auth"
    if not required and not s.has("tls"):
        return None
    why = " with client_auth tls_client_auth ({cert: file, key: file})"
    tls = s.section("tls", ("cert", "key"), required=required, why=why)
    files = check_tls_files(tls, base_dir)
    return TlsSettings(cert=files[0], key=files[1]) if files else None


def _check_across(banks: list[_Read], problems: Problems) -> None:
    """Ids unique; every acr value routes to one bank; fallbacks route elsewhere."""
    ids: dict[str, str] = {}
    routes: dict[str, str] = {}
    for path, bank, acr_paths in banks:
        if bank.id in ids:
            problems.add(f"{path}.id", f"{bank.id!r} is already the id of {ids[bank.id]}")
        elif bank.id:
            ids[bank.id] = path
        for acr_path, acr in acr_paths:
            if acr in routes:
                problems.add(
                    acr_path,
                    f"{acr!r} already routes to bank {routes[acr]!r}; "
                    "an acr value must route to one bank",
                )
            else:
                routes[acr] = bank.id
    for path, bank, _ in banks:
        fallback = bank.fallback_acr
        if fallback is None:
            continue
        if fallback not in routes:
            problems.add(
                f"{path}.fallback_acr",
                f"{fallback!r} is not an acr value of any bank (known: {', '.join(routes)})",
            )
        elif routes[fallback] == bank.id:
            problems.add(
                f"{path}.fallback_acr",
                f"{fallback!r} routes back to this bank; name another bank's acr value",
            )


def acr_routes(banks: tuple[BankSettings, ...]) -> dict[str, str]:
    """Merchant acr value -> the id of the bank it routes to."""
    return {acr: bank.id for bank in banks for acr in bank.acr_values}
