"""The keys of a bank that registers its logins upfront as permissions (BankID with
biometrics: a ``kind: ciba`` bank with ``permissions:``, ``start_endpoint``,
``assertion``), and the ``permissions.types`` of an ``oidc`` bank (BankID's OIDC
provider); every problem reported with its key path."""

from __future__ import annotations

import re
from typing import get_args

from federation.permissions import AUTHENTICATION, PAYMENT, TEXT
from federation.settings import Assertion, BankKind, Permissions
from proxy.config.reader import Section
from proxy.config.urls import check_issuer

BANKID_KEYS = ("start_endpoint", "assertion", "permissions")
PERMISSION_KEYS = ("endpoint", "scopes", "token_endpoint", "login_hint_scheme", "intents",
                   "login_type", "types", "loa")
ASSERTIONS: tuple[Assertion, ...] = get_args(Assertion)
# the permission types an authorization_details type may become (their statements are
# written from the details: federation.permissions)
DETAIL_TYPES = (PAYMENT, TEXT)
# a discovery document key
_KEY = re.compile(r"[a-z][a-z0-9_]{0,99}")
DEFAULT_START = "backchannel_authentication_endpoint"


def read_start_endpoint(s: Section, kind: BankKind) -> str:
    if kind != "ciba":
        if s.has("start_endpoint"):
            s.report("start_endpoint", "is only used with kind ciba")
        return DEFAULT_START
    name = s.opt_text("start_endpoint") or DEFAULT_START
    if not _KEY.fullmatch(name):
        s.report("start_endpoint", f"must be a discovery key such as app_authentication_"
                 f"endpoint (got {name!r})")  # fmt: skip
    return name


def read_permissions(s: Section, kind: BankKind) -> tuple[Permissions | None, Assertion | None]:
    """``permissions:`` and ``assertion`` of a bank (None, None when absent)."""
    assertion = s.choice("assertion", ASSERTIONS) if s.has("assertion") else None
    if not s.has("permissions"):
        if assertion is not None:
            s.report("assertion", "needs permissions: (the token sent as client_assertion is "
                     "the permissions API token)")  # fmt: skip
        return None, assertion
    if kind == "session":
        s.report("permissions", "is not used with kind session")
        return None, None
    p = s.section("permissions", PERMISSION_KEYS)
    types = p.text_map("types")
    for name, target in types.items():
        if target not in DETAIL_TYPES:
            p.report(f"types.{name}", f"must be one of {', '.join(DETAIL_TYPES)} (got "
                     f"{target!r})")  # fmt: skip
    if kind == "oidc":
        # BankID's OIDC provider takes the permission in PAR as authorization_details;
        # nothing is registered, so only the types mean anything
        for key in PERMISSION_KEYS:
            if key != "types" and p.has(key):
                p.report(key, "is only used with kind ciba (an oidc bank takes the "
                         "permission in its PAR request: only types applies)")  # fmt: skip
        if assertion is not None:
            s.report("assertion", "is only used with kind ciba")
        return Permissions(types=types), None
    endpoint = _url(p, "endpoint", required=True)
    token_endpoint = _url(p, "token_endpoint", required=False) or None
    login_type = p.opt_text("login_type") or AUTHENTICATION
    if login_type != AUTHENTICATION:
        p.report("login_type", f"must be {AUTHENTICATION} (the permission of a login without "
                 f"details; got {login_type!r})")  # fmt: skip
    if "device_info" not in s.texts("pass_through"):
        s.report("pass_through", "must list device_info with permissions: (BankID's "
                 "app-authorize needs the app's device_info)")  # fmt: skip
    return Permissions(
        endpoint=endpoint,
        scopes=p.texts("scopes"),
        token_endpoint=token_endpoint,
        login_hint_scheme=p.opt_text("login_hint_scheme") or "nnin",
        intents=p.texts("intents", ("app2app",)),
        login_type=login_type,
        types=types,
        loa=p.opt_text("loa") or "sub",
    ), assertion


def _url(s: Section, key: str, *, required: bool) -> str:
    """An https URL (http only on loopback) without fragment; a trailing slash and a
    query are fine here (BankID's endpoint is .../permissions/v1/)."""
    url = s.text(key, required=required, why=" with permissions:")
    if not url:
        return url
    base = url.split("?", 1)[0]
    problem = check_issuer(base) if "#" not in url else "must not have a fragment"
    if problem:
        s.report(key, problem)
    return url
