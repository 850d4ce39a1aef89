"""Prometheus metrics of the calls to banks (:func:`federation.bank_http.call_bank`).

They live in prometheus_client's default registry, where the proxy's own metrics
are too, and the proxy serves them all at ``GET /metrics``; federation only
records them (it never imports proxy). Labels are bounded: bank ids come from
config, operations and error kinds are the fixed sets below.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter, Histogram

# session and code: a session bank's REST API (creating and reading sessions; validating
# the code its app brought back at the session's token-request URL); permission: BankID's
# permissions API (registering a login's permission)
Operation = Literal[
    "metadata", "jwks", "token", "par", "userinfo", "backchannel", "session", "code",
    "permission", "other",
]
# timeout / connection / body_too_large: call_bank raised BankUnreachable;
# http_5xx: the bank answered, with a server error. A 4xx is an OAuth answer
# (authorization_pending on every CIBA poll, invalid_grant ...) that the adapter
# judges; it is not counted as an error here.
CallError = Literal["timeout", "connection", "body_too_large", "http_5xx"]

# a bank's timeout is 10 s by default
BANK_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

BANK_REQUEST_SECONDS = Histogram(
    "app2app_bank_request_duration_seconds",
    "Time of one HTTP call to a bank, until its answer was read or the call failed",
    ("bank", "operation"),
    buckets=BANK_BUCKETS,
)
BANK_REQUEST_ERRORS = Counter(
    "app2app_bank_request_errors",
    "HTTP calls to a bank that failed: no answer in time, no connection, an oversized "
    "body, or a 5xx",
    ("bank", "operation", "error"),
)


def observe_bank_call(
    bank: str, operation: Operation, seconds: float, error: CallError | None
) -> None:
    BANK_REQUEST_SECONDS.labels(bank, operation).observe(seconds)
    if error is not None:
        BANK_REQUEST_ERRORS.labels(bank, operation, error).inc()
