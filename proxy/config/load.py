"""Read ``config.yaml`` into :class:`proxy.config.settings.Config`, or list every problem."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml

from proxy.config.banks import acr_routes, read_banks
from proxy.config.clients import (
    check_across,
    check_client_ids,
    check_own_apps,
    check_sectors,
    read_apps,
    read_clients,
    read_resource_servers,
)
from proxy.config.env import Protected, RecursiveAlias, substitute
from proxy.config.errors import ConfigError, Problems
from proxy.config.keys import pem_ok, read_signing_keys, read_token_encryption
from proxy.config.limits import read_login_hint_limit, read_rate_limits
from proxy.config.rar import check_types, declared_names, read_types
from proxy.config.reader import Section
from proxy.config.sentinel import SENTINEL_SCHEMES, read_sentinel_url
from proxy.config.settings import (
    Config,
    Keys,
    Lifetimes,
    Listen,
    MetricsSettings,
    StoreSettings,
    Subject,
)
from proxy.config.urls import check_issuer

TOP_KEYS = (
    "issuer", "listen", "store", "keys", "lifetimes", "subject", "banks", "clients", "apps",
    "resource_servers", "rate_limits", "metrics", "login_hint_limit",
    "authorization_details_types",
)  # fmt: skip
STORE_SCHEMES = ("redis", "rediss", "redis+sentinel", "rediss+sentinel", "unix", "memory")
LIFETIMES = tuple(Lifetimes.__dataclass_fields__)
MAX_REQUEST_URI_LIFETIME = 600
SUBJECT_TYPES: tuple[Literal["pairwise", "bank"], ...] = ("pairwise", "bank")


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """The config in the YAML file at ``path``; ``environ`` defaults to ``os.environ``.

    Raises :class:`ConfigError` listing every problem found.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"{file}: cannot read the config file: {reason}"]) from exc
    protected = Protected(text)
    try:
        data = protected.restore(yaml.safe_load(protected.text))
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}: {_yaml_problem(exc)}"]) from exc
    except RecursiveAlias as exc:
        raise ConfigError([f"{file}: {exc}"]) from exc
    env = os.environ if environ is None else environ
    return parse_config(data, file.resolve().parent, env)


def load_or_report(path: str) -> Config | None:
    """For the command line: the config, or None after printing every problem to
    stderr (one per line, each with its key path)."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.errors)} problem(s):", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"invalid YAML: {problem}"
    # (the column may be off on a line holding ${...}: see env.Protected)
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def parse_config(data: object, base_dir: Path, environ: Mapping[str, str]) -> Config:
    """The config from already-parsed YAML; relative paths are taken from ``base_dir``."""
    problems = Problems()
    if data is None:
        raise ConfigError(["config: the file is empty"])
    top = Section(substitute(data, environ, problems), "", problems, TOP_KEYS)
    # read in the order of the file's sections, so the problems come in that order too
    issuer = _issuer(top)
    listen = _listen(top)
    store = _store(top)
    keys = _keys(top, base_dir)
    lifetimes = _lifetimes(top)
    subject = _subject(top)
    bank_paths = read_banks(top, base_dir)
    banks = tuple(bank for _, bank in bank_paths)
    clients = read_clients(top, acr_routes(banks))
    apps = read_apps(top)
    servers = read_resource_servers(top)
    rate_limits = read_rate_limits(top)
    metrics = _metrics(top)
    login_hint_limit = read_login_hint_limit(top)
    detail_types = read_types(top, base_dir)
    check_types(declared_names(top), clients, bank_paths, problems)
    check_client_ids(clients, servers, problems)
    check_across(clients, servers, lifetimes, keys.signing, problems)
    check_sectors(clients, subject, problems)
    check_own_apps(clients, subject, problems)
    problems.raise_if_any()
    return Config(
        issuer=issuer,
        keys=keys,
        listen=listen,
        store=store,
        lifetimes=lifetimes,
        subject=subject,
        banks=banks,
        clients=tuple(client for _, client in clients),
        apps=apps,
        resource_servers=tuple(server for _, server in servers),
        rate_limits=rate_limits,
        metrics=metrics,
        login_hint_limit=login_hint_limit,
        authorization_details_types=detail_types,
    )


def _issuer(top: Section) -> str:
    issuer = top.text("issuer", required=True)
    problem = check_issuer(issuer) if issuer else None
    if problem:
        top.report("issuer", problem)
    return issuer.rstrip("/")


def _listen(top: Section) -> Listen:
    s = top.section("listen", ("host", "port"))
    default = Listen()
    return Listen(
        host=s.text("host", default.host, required=s.has("host")),
        port=s.integer("port", default.port, minimum=1, maximum=65535),
    )


def _store(top: Section) -> StoreSettings:
    s = top.section("store", ("url", "cluster", "prefix"))
    default = StoreSettings()
    url = s.text("url", default.url, required=s.has("url"))
    scheme = url.partition("://")[0] if "://" in url else ""
    if url and scheme not in STORE_SCHEMES:
        # the url may hold a password: show its scheme only
        got = f"scheme {scheme!r}" if scheme else "no scheme://"
        allowed = ", ".join(f"{x}://" for x in STORE_SCHEMES)
        s.report("url", f"must start with one of {allowed} (got {got})")
    if scheme in SENTINEL_SCHEMES:
        _check_sentinel_url(s, url)
    cluster = s.flag("cluster", default.cluster)
    if cluster and scheme not in ("redis", "rediss", ""):
        s.report("cluster", f"Redis Cluster needs a redis:// or rediss:// url (got {scheme}://)")
    return StoreSettings(url=url, cluster=cluster, prefix=s.text("prefix", default.prefix))


def _check_sentinel_url(store: Section, url: str) -> None:
    """Every problem of a Sentinel URL (proxy.config.sentinel), and of the TLS files it
    names, as the store would meet them at start."""
    found, problems = read_sentinel_url(url)
    for problem in problems:
        store.report("url", problem)
    if found is None:
        return
    for option, certificate in (("ssl_ca_certs", True), ("ssl_certfile", True),
                                ("ssl_keyfile", False)):  # fmt: skip
        file = found.ssl.get(option)
        if isinstance(file, str):
            pem_ok(store.problems, f"{store.at('url')}: {option}", Path(file), certificate)


def _keys(top: Section, base_dir: Path) -> Keys:
    keys = top.section("keys", ("signing", "token_encryption"), required=True)
    signing = read_signing_keys(keys, base_dir)
    token_keys = read_token_encryption(keys) or (b"",)  # none: reported, no Config is built
    return Keys(signing=signing, token_encryption=token_keys[0],
                token_decryption=token_keys[1:])


def _lifetimes(top: Section) -> Lifetimes:
    s = top.section("lifetimes", LIFETIMES)
    default = Lifetimes()
    values = {name: s.positive(name, getattr(default, name)) for name in LIFETIMES}
    if values["request_uri"] > MAX_REQUEST_URI_LIFETIME:
        # RFC 9126 §2.2 gives "expires_in": 60 as its example; a request_uri is a bearer
        # reference to the whole authorization request, so it must not live long.
        s.report("request_uri", f"must be at most {MAX_REQUEST_URI_LIFETIME} seconds "
                 f"(got {values['request_uri']})")  # fmt: skip
    if values["gateway_cache"] >= values["gateway_jwt"]:
        # a cached check hands out its JWT until the cache entry ends: it must still be
        # valid then, at the services behind the gateway
        s.report("gateway_cache", f"must be below lifetimes.gateway_jwt "
                 f"({values['gateway_jwt']}; got {values['gateway_cache']})")  # fmt: skip
    return Lifetimes(**values)


def _subject(top: Section) -> Subject:
    s = top.section("subject", ("type", "salt"))
    kind = s.choice("type", SUBJECT_TYPES, "pairwise")
    salt = s.opt_text("salt", secret=True)
    if kind == "pairwise" and salt is None and not s.has("salt"):
        s.report("salt", "is required with type pairwise (a long random secret; keep it "
                 "forever: changing it changes every user's sub)")  # fmt: skip
    return Subject(type=kind or "pairwise", salt=salt)


def _metrics(top: Section) -> MetricsSettings:
    s = top.section("metrics", ("enabled", "bearer_token"))
    default = MetricsSettings()
    return MetricsSettings(
        enabled=s.flag("enabled", default.enabled),
        bearer_token=s.credential("bearer_token"),
    )
