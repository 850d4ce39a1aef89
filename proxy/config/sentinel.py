"""A Redis Sentinel ``store.url``, read once: by the config check (every problem listed)
and by the store (:mod:`proxy.store.redis`), so both read it the same way.

``redis+sentinel://[user:password@]host[:port][,host[:port]...]/service_name[/db][?options]``;
``rediss+sentinel://`` is the same over TLS, to the sentinels and to the master. The
credentials before ``@`` are the master's (Redis ``requirepass`` or an ACL user); the
sentinels' own (Sentinel's ``requirepass``, or an ACL user on them) are options, since
Sentinel and the master are secured separately:

- ``sentinel_username``, ``sentinel_password``: what the proxy authenticates with at the
  sentinels (percent-encoded, like every query value);
- with ``rediss+sentinel://`` only: ``ssl_ca_certs`` (a PEM bundle: the CAs that sign the
  servers' certificates; left out, the system's), ``ssl_certfile`` and ``ssl_keyfile``
  (a client certificate, for servers with ``tls-auth-clients yes``), ``ssl_check_hostname``
  (``true``, the default: each server's certificate must name the host the proxy
  connects to, as Sentinel reports it; ``false`` checks the chain only). Files are
  absolute paths.

Nothing in a problem's text quotes a password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from urllib.parse import parse_qs, unquote, urlsplit

from proxy.config.urls import redacted

SENTINEL_SCHEME = "redis+sentinel"
TLS_SENTINEL_SCHEME = "rediss+sentinel"
SENTINEL_SCHEMES = (SENTINEL_SCHEME, TLS_SENTINEL_SCHEME)
DEFAULT_SENTINEL_PORT = 26379
CREDENTIAL_OPTIONS = ("sentinel_username", "sentinel_password")
TLS_FILE_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
TLS_OPTIONS = (*TLS_FILE_OPTIONS, "ssl_check_hostname")
_FORM = "host:port[,host:port]/service_name[/db]"
_BOOLEAN = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    tls: bool = False
    username: str | None = None  # the master's
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    # redis-py's connection options for TLS (ssl_ca_certs, ...), to sentinels and master
    ssl: dict[str, object] = field(default_factory=dict)


def read_sentinel_url(url: str) -> tuple[SentinelUrl | None, list[str]]:
    """The URL read, or None and every problem with it."""
    problems: list[str] = []
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return None, [f"is not a valid URL ({exc})"]
    scheme = parts.scheme.lower()
    userinfo, _, hosts = parts.netloc.rpartition("@")
    sentinels: list[tuple[str, int]] = []
    for text in hosts.split(","):
        host_port = _host_port(text) if text else None
        if host_port is None:
            problems.append(f"{text!r} is not a sentinel's host[:port] (expected {scheme}://"
                            f"{_FORM})")  # fmt: skip
        else:
            sentinels.append(host_port)
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not 1 <= len(path) <= 2 or (len(path) == 2 and not path[1].isdigit()):
        problems.append(f"expected {scheme}://{_FORM} (a service_name, then a db number)")
    username = password = None
    if userinfo:
        name, has_password, secret = userinfo.partition(":")
        username = unquote(name) or None
        password = unquote(secret) if has_password else None
    options = _options(parts.query, scheme == TLS_SENTINEL_SCHEME, problems)
    if problems:
        return None, problems
    ssl: dict[str, object] = {name: options[name] for name in TLS_FILE_OPTIONS
                              if name in options}
    if "ssl_check_hostname" in options:
        ssl["ssl_check_hostname"] = _BOOLEAN[options["ssl_check_hostname"].lower()]
    return SentinelUrl(
        sentinels=tuple(sentinels), service=path[0], db=int(path[1]) if len(path) == 2 else 0,
        tls=scheme == TLS_SENTINEL_SCHEME, username=username, password=password,
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"), ssl=ssl,
    ), []


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The URL read; ValueError naming every problem (never a password)."""
    found, problems = read_sentinel_url(url)
    if found is None:
        raise ValueError(f"store url {redacted(url)!r}: " + "; ".join(problems))
    return found


def _options(query: str, tls: bool, problems: list[str]) -> dict[str, str]:
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        problems.append("its query is not name=value pairs joined by &")
        return {}
    known = CREDENTIAL_OPTIONS + TLS_OPTIONS
    options: dict[str, str] = {}
    for name, values in parsed.items():
        if name not in known:
            problems.append(f"unknown option {name!r} (known: {', '.join(known)})")
        elif len(values) > 1:
            problems.append(f"option {name!r} is given {len(values)} times")
        elif not values[0]:
            problems.append(f"option {name!r} is empty")
        elif name in TLS_OPTIONS and not tls:
            problems.append(f"option {name!r} needs TLS: use {TLS_SENTINEL_SCHEME}://")
        elif name in TLS_FILE_OPTIONS and not PurePath(values[0]).is_absolute():
            problems.append(f"option {name!r} must be an absolute path (got {values[0]!r})")
        elif name == "ssl_check_hostname" and values[0].lower() not in _BOOLEAN:
            problems.append(f"option 'ssl_check_hostname' must be true or false "
                            f"(got {values[0]!r})")  # fmt: skip
        else:
            options[name] = values[0]
    if ("ssl_certfile" in options) != ("ssl_keyfile" in options):
        problems.append("options 'ssl_certfile' and 'ssl_keyfile' go together")
    return options


def _host_port(text: str) -> tuple[str, int] | None:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or not host or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else None
    else:
        host, colon, port_text = text.partition(":")
        port = port_text if colon else None
    if not host or (port is not None and not (port.isdigit() and 0 < int(port) < 65536)):
        return None
    return host, int(port) if port is not None else DEFAULT_SENTINEL_PORT
