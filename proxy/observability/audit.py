"""Audit events: log lines with stable names that operators alert and report on.

One function per event; each writes its line (logger ``proxy.audit``) and counts
it in :mod:`proxy.observability.metrics`, so the two never disagree. The names and fields are
a contract, listed in docs/observability.md. No token, code, handle or secret
goes in: a grant is named by :func:`proxy.model.tokens.fingerprint` of its id.
``request_id`` (and ``client_id``, ``bank_id`` where bound) come with every line
from the request's context.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from proxy.model.records import Transaction
from proxy.model.tokens import fingerprint
from proxy.observability import metrics
from proxy.observability.logs import logger
from proxy.observability.metrics import LoginStage, RevokedBy, RevokedType, TokenType

log = logger("proxy.audit")

# the tokens a token response may hold, by their names in it
RESPONSE_KINDS: tuple[TokenType, ...] = ("access_token", "id_token", "refresh_token")


@dataclass(frozen=True)
class LoginFacts:
    """What every login event says: the bank, the client, and how the login runs."""

    bank_id: str
    client_id: str
    decoupled: bool  # the bank is polled (CIBA), not redirected back from
    native: bool  # browser-less App2App (/native/authorize)

    @classmethod
    def of(cls, txn: Transaction) -> LoginFacts:
        return cls(txn.bank_id, txn.client_id, txn.poll is not None, txn.native)

    def fields(self) -> dict[str, object]:
        """The log line's fields (dataclasses.asdict deep-copies: slow for four scalars)."""
        return {"bank_id": self.bank_id, "client_id": self.client_id,
                "decoupled": self.decoupled, "native": self.native}

    def labels(self) -> tuple[str, str, str, str]:
        flow = "decoupled" if self.decoupled else "redirect"
        return self.bank_id, self.client_id, flow, metrics.flag(self.native)


def login_started(login: LoginFacts, **extra: object) -> None:
    """The login was handed to the bank; ``extra``: e.g. ``deep_link`` (decoupled)."""
    log.info("login.started", **login.fields(), **extra)
    metrics.series(metrics.LOGINS_STARTED, *login.labels()).inc()


def login_completed(login: LoginFacts) -> None:
    """The user goes back to the merchant with a code."""
    log.info("login.completed", **login.fields())
    metrics.series(metrics.LOGINS_COMPLETED, *login.labels()).inc()


def login_failed(login: LoginFacts, reason: str, stage: LoginStage) -> None:
    """A login routed to a bank ends in an error; ``reason`` is the OAuth error code the
    merchant gets. Why is on the request's ``oauth_error`` line (``detail``)."""
    reason = metrics.error_code(reason)
    log.info("login.failed", reason=reason, stage=stage, **login.fields())
    metrics.series(metrics.LOGINS_FAILED, *login.labels(), reason, stage).inc()


def _grant(grant_id: str | None) -> dict[str, str | None]:
    return {"grant_fingerprint": fingerprint(grant_id) if grant_id else None}


def tokens_issued(client_id: str, grant_id: str, kinds: Iterable[TokenType]) -> None:
    issued = list(kinds)
    log.info("token.issued", kinds=issued, client_id=client_id, **_grant(grant_id))
    for kind in issued:
        metrics.series(metrics.TOKENS_ISSUED, kind, client_id).inc()


def token_revoked(kind: RevokedType, by: RevokedBy, grant_id: str | None) -> None:
    """``kind``: what was revoked (a refresh token or a grant takes its whole grant).
    An operator's revocation (``app2app-proxy revoke``) writes its own token.revoked
    line, with ``by: operator``, from the CLI process."""
    log.info("token.revoked", kind=kind, by=by, **_grant(grant_id))
    metrics.series(metrics.TOKENS_REVOKED, kind, by).inc()


def code_replayed(client_id: str, grant_id: str | None) -> None:
    """RFC 6749 §4.1.2: a code used twice; its grant is revoked (token.revoked follows)."""
    log.warning("code.replayed", client_id=client_id, **_grant(grant_id))
    metrics.series(metrics.REPLAYS_DETECTED, "code", client_id).inc()


def refresh_reused(client_id: str, grant_id: str) -> None:
    """RFC 9700 §4.14.2: a rotated refresh token used after refresh_grace; its grant is
    revoked (token.revoked follows)."""
    log.warning("refresh.reused", client_id=client_id, **_grant(grant_id))
    metrics.series(metrics.REPLAYS_DETECTED, "refresh_token", client_id).inc()
