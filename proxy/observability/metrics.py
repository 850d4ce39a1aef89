"""Every Prometheus metric of the proxy (``GET /metrics`` is proxy.endpoints.metrics).

The metrics are module-level objects in prometheus_client's default registry
(the library's design: one registry per process); the bank-call metrics are in
:mod:`federation.metrics`, in the same registry. Labels are bounded: route
*patterns* (never a raw path, which may hold a handle), bank and client ids
from config, OAuth error codes and the fixed sets named in docs/observability.md;
never a token, a user, a handle or an error description.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve --workers N``) every process
writes its values to files in that folder and /metrics sums all of them
(prometheus_client's MultiProcessCollector), whichever worker answers. The
variable must be in the environment before prometheus_client is imported.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

TokenType = Literal["code", "access_token", "refresh_token", "id_token"]
RevokedType = Literal["access_token", "refresh_token", "grant"]
# who revoked: the client at /revoke; the proxy on a code replay or a refresh token
# reused after refresh_grace; the proxy when the bank refused to refresh its tokens;
# an operator (reserved: no operator command revokes yet)
RevokedBy = Literal["client", "code_replay", "refresh_reuse", "bank_refusal", "operator"]
LoginStage = Literal["start", "callback", "resume"]

HTTP_REQUESTS = Counter(
    "app2app_http_requests",
    "HTTP requests answered, by route pattern, method and status",
    ("route", "method", "status"),
)
HTTP_REQUEST_SECONDS = Histogram(
    "app2app_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern, method and status",
    ("route", "method", "status"),
)

_LOGIN = ("bank", "client", "flow", "native")
LOGINS_STARTED = Counter(
    "app2app_logins_started", "Logins handed to a bank (the user agent sent on to it)", _LOGIN
)
LOGINS_COMPLETED = Counter(
    "app2app_logins_completed", "Logins that ended with a code for the merchant", _LOGIN
)
LOGINS_FAILED = Counter(
    "app2app_logins_failed",
    "Logins routed to a bank that ended in an error, by OAuth error code and stage",
    (*_LOGIN, "reason", "stage"),
)
LOGIN_FALLBACKS = Counter(
    "app2app_login_fallbacks",
    "Logins that could not start at the routed bank and continued at its fallback bank",
    ("from_bank", "to_bank", "reason"),
)

STORE_UNAVAILABLE = Counter(
    "app2app_store_unavailable",
    "Requests answered temporarily_unavailable (503, or an error redirect) because the "
    "store did not answer",
)

TOKENS_ISSUED = Counter(
    "app2app_tokens_issued", "Codes and tokens issued, by type and client", ("type", "client")
)
TOKENS_REVOKED = Counter(
    "app2app_tokens_revoked", "Tokens and grants revoked, by what and by whom", ("type", "by")
)
REPLAYS_DETECTED = Counter(
    "app2app_replays_detected",
    "Authorization codes used twice, refresh tokens reused after refresh_grace",
    ("kind", "client"),
)

RATE_LIMITED = Counter(
    "app2app_rate_limited",
    "Requests refused with 429, by endpoint and by which limit (address or client)",
    ("endpoint", "by"),
)
DPOP_REFUSALS = Counter(
    "app2app_dpop_refusals", "Requests refused for their DPoP proof, by error code", ("error",)
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CODE = re.compile(r"[a-z0-9_]{1,64}")


def error_code(code: str) -> str:
    """An OAuth error code as a label value; anything else (it may come from a bank)
    is ``other``, so no label ever holds free text."""
    return code if _CODE.fullmatch(code) else "other"


def flag(value: bool) -> str:
    return "true" if value else "false"


# (metric, label values) -> the metric's child for them: labels() takes a lock and builds
# its key at every call. The label values are bounded as the metric's are (known clients
# and banks, error codes), and prometheus_client keeps every child anyway.
_SERIES: dict[tuple[object, tuple[str, ...]], Any] = {}


def series(metric: Counter | Histogram, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per label set."""
    key = (metric, labels)
    found = _SERIES.get(key)
    if found is None:
        found = _SERIES[key] = metric.labels(*labels)
    return found


# (route, method, status) -> its request counter and duration histogram: labels() takes
# a lock and builds the key at every call; the label sets are few (route patterns)
_REQUEST_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """``route`` is the route pattern (``/callback/{bank_id}``), never the path."""
    series = _REQUEST_SERIES.get((route, method, status))
    if series is None:
        labels = (route, method if method in _METHODS else "other", str(status))
        series = (HTTP_REQUESTS.labels(*labels), HTTP_REQUEST_SECONDS.labels(*labels))
        if method in _METHODS:  # any other method is "other": not one key per spelling
            _REQUEST_SERIES[(route, method, status)] = series
    series[0].inc()
    series[1].observe(seconds)


def registry() -> Collector:
    """What /metrics shows: this process's registry, or with ``PROMETHEUS_MULTIPROC_DIR``
    the sum over every process that wrote to that folder."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    summed = CollectorRegistry()
    multiprocess.MultiProcessCollector(summed)  # type: ignore[no-untyped-call]
    return summed
