"""Logins at decoupled banks (CIBA poll mode, BankID's app-authorize).

The bank is polled only while someone asks: ``GET /resume/{handle}`` or
``GET /authorize/status/{handle}``, on any instance; never in a background
task. A lock record that lives ``interval`` seconds (one ``SET NX``) keeps the
polls of one login at most one per interval across all instances. What the bank
finally answered is kept, encrypted, in the transaction until the user is sent
back to the merchant, so a slow return never loses a completed login.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from federation.protocol import (
    BankError,
    BankResult,
    DecoupledAdapter,
    DecoupledRequest,
    Pending,
    is_decoupled,
)
from proxy.login.transactions import answer_target, loaded, stored, take_transaction, unknown_login
from proxy.model.records import Transaction
from proxy.model.tokens import new_value
from proxy.oauth.errors import OAuthError, unavailable
from proxy.oauth.grants import issue_code
from proxy.oauth.jose import Unreadable
from proxy.oauth.services import Services
from proxy.observability import audit
from proxy.observability.logs import bind_context, logger
from proxy.store import StoreUnavailable
from proxy.web.errors import authorization_response

log = logger("proxy.decoupled")

Status = Literal["pending", "complete", "failed"]
POLL_LOCK = "poll"
# how long a finished or expired login is kept so the user still hears how it ended
REPORT_GRACE = 60
# a browser-less app that calls /resume while the bank is pending is held at most this
# long before it is told to call again (bounded: never a hang)
MAX_HOLD = 10


@dataclass(frozen=True)
class Poll:
    """The decoupled part of a transaction (``Transaction.poll``)."""

    auth_req_id: str
    interval: int
    expires_at: int
    # JWE of {"result": BankResult.to_dict()} or {"error", "description"}; None: pending
    outcome: str | None = None
    # what the bank's app shows the user (CIBA binding_message): the waiting page shows
    # it too, so the user can compare the two
    binding_message: str | None = None
    # what the bank's adapter keeps for its polls (DecoupledStart.context)
    context: dict[str, Any] | None = None

    @classmethod
    def of(cls, txn: Transaction) -> Poll:
        assert txn.poll is not None  # only decoupled transactions are loaded here
        return cls(**txn.poll)


def resume_uri(svc: Services, handle: str) -> str:
    return f"{svc.issuer}/resume/{handle}"


async def start(
    svc: Services, adapter: DecoupledAdapter, txn: Transaction, params: Mapping[str, str]
) -> tuple[str, str | None]:
    """Send the backchannel request; keep the transaction under a new handle.
    The handle, and the bank's deep link if it sent one."""
    bank = adapter.settings
    handle = new_value()
    lifetime = svc.config.lifetimes.transaction
    started = await adapter.start_decoupled(
        DecoupledRequest(
            return_uri=resume_uri(svc, handle),
            requested_expiry=lifetime,
            login_hint=params.get("login_hint"),
            login_hint_token=params.get("login_hint_token"),
            binding_message=params.get("binding_message"),
            extra={name: params[name] for name in bank.pass_through if name in params},
            authorization_details=tuple(txn.authorization_details or ()),
        )
    )
    expires_in = min(started.expires_in, lifetime)
    poll = Poll(started.auth_req_id, started.interval, svc.now() + expires_in,
                binding_message=params.get("binding_message"),
                context=dict(started.context) or None)
    record = dataclasses.replace(txn, poll=dataclasses.asdict(poll))
    await svc.store.upsert(Transaction.kind, handle, stored(svc, record),
                           expires_in + REPORT_GRACE)
    audit.login_started(audit.LoginFacts.of(record), deep_link=started.deep_link is not None)
    return handle, started.deep_link


async def load(svc: Services, handle: str) -> Transaction:
    data = await svc.store.find(Transaction.kind, handle)
    txn = loaded(svc, data) if data is not None else None
    if txn is None or txn.poll is None:
        raise unknown_login()
    bind_context(client_id=txn.client_id, bank_id=txn.bank_id)
    # a login whose client (or redirect_uri) a reload removed goes no further: the bank
    # is not polled for it and its kept answer is never sent
    answer_target(svc, txn)
    return txn


# what a login whose sealed outcome no configured key opens ends with (logged with its kid)
UNREADABLE = {"error": "server_error",
              "description": "this login can no longer be completed; start again"}


def _opened(svc: Services, outcome: str) -> dict[str, Any]:
    try:
        return svc.cipher.decrypt(outcome)
    except Unreadable:
        return dict(UNREADABLE)


async def has_ended(svc: Services, handle: str) -> bool:
    """Whether ``handle`` named a login that was finished (its transaction taken): the
    consume marker is there. A login still kept (which :func:`load` refused for another
    reason: its client or redirect_uri removed by a reload) has not ended and is left as
    it is: ``consume`` is asked only when no record is there, so it finds a marker (and
    changes nothing) or nothing."""
    if await svc.store.find(Transaction.kind, handle) is not None:
        return False
    consumed = await svc.store.consume(Transaction.kind, handle, now=svc.moment(), marker_ttl=None)
    return consumed is not None and consumed.replay


def status_of(txn: Transaction, svc: Services) -> Status:
    outcome = Poll.of(txn).outcome
    if outcome is None:
        return "pending"
    return "complete" if "result" in _opened(svc, outcome) else "failed"


async def advance(svc: Services, handle: str, txn: Transaction) -> tuple[Transaction, Status]:
    """Poll the bank if this login is pending and nobody polled it within ``interval``."""
    poll = Poll.of(txn)
    if poll.outcome is not None:
        return txn, status_of(txn, svc)
    if svc.now() >= poll.expires_at:
        expired = {"error": "access_denied", "description": "the login at the bank expired"}
        return await _settle(svc, handle, txn, poll, expired)
    adapter = svc.adapters.get(txn.bank_id)
    if not is_decoupled(adapter):
        # a reload removed the bank (or made it a redirect bank) while the user was away
        gone = {"error": "server_error", "description": "this bank is no longer configured"}
        return await _settle(svc, handle, txn, poll, gone)
    # the lock outlives a poll in flight (the bank's timeout), then spaces polls apart
    busy = poll.interval + int(adapter.settings.timeout) + 1
    if not await svc.store.add(POLL_LOCK, handle, {}, busy):
        return txn, "pending"
    try:
        answer = await adapter.poll(poll.auth_req_id, poll.interval, poll.context)
    except BankError as exc:
        if exc.error == "temporarily_unavailable":
            # the bank did not answer: still pending as far as anyone knows
            log.warning("bank_poll_failed", detail=exc.detail)
            await svc.store.upsert(POLL_LOCK, handle, {}, poll.interval)
            return txn, "pending"
        log.info("bank_login_failed", error=exc.error, detail=exc.detail)
        return await _settle(
            svc, handle, txn, poll, {"error": exc.error, "description": exc.description}
        )
    if isinstance(answer, Pending):
        if answer.interval != poll.interval:
            # CIBA slow_down: the new interval holds "for this and all subsequent requests"
            poll = dataclasses.replace(poll, interval=answer.interval)
            txn = await _save(svc, handle, txn, poll)
        await svc.store.upsert(POLL_LOCK, handle, {}, poll.interval)
        return txn, "pending"
    return await _settle(svc, handle, txn, poll, {"result": answer.to_dict()})


async def _settle(
    svc: Services, handle: str, txn: Transaction, poll: Poll, outcome: dict[str, Any]
) -> tuple[Transaction, Status]:
    sealed = dataclasses.replace(poll, outcome=svc.cipher.encrypt(outcome))
    txn = await _save(svc, handle, txn, sealed)
    log.info("bank_login_settled", outcome="complete" if "result" in outcome else "failed")
    return txn, "complete" if "result" in outcome else "failed"


async def _save(svc: Services, handle: str, txn: Transaction, poll: Poll) -> Transaction:
    updated = dataclasses.replace(txn, poll=dataclasses.asdict(poll))
    ttl = max(1, poll.expires_at + REPORT_GRACE - svc.now())
    # replace, never create: a login already taken by /resume stays taken
    await svc.store.replace(Transaction.kind, handle, stored(svc, updated), ttl)
    return updated


async def finish(svc: Services, handle: str, txn: Transaction) -> web.Response:
    """The login is settled: take the transaction once and send the user back to the
    merchant with a code (issued now, so its short lifetime starts now) or the error."""
    txn = await take_transaction(svc, handle)
    target = answer_target(svc, txn)
    outcome = Poll.of(txn).outcome
    assert outcome is not None  # finish is called only once the login is settled
    settled = _opened(svc, outcome)
    if "result" in settled and svc.bank(txn.bank_id) is None:
        settled = {"error": "server_error", "description": "this bank is no longer configured"}
    if "result" not in settled:
        audit.login_failed(audit.LoginFacts.of(txn), settled["error"], "resume")
        raise OAuthError(settled["error"], settled["description"], redirect=target)
    try:
        code = await issue_code(svc, txn, BankResult.from_dict(settled["result"]))
    except StoreUnavailable as exc:
        audit.login_failed(audit.LoginFacts.of(txn), "temporarily_unavailable", "resume")
        raise unavailable(target) from exc
    audit.login_completed(audit.LoginFacts.of(txn))
    return authorization_response(target, {"code": code})


async def hold(svc: Services, handle: str, txn: Transaction) -> tuple[Transaction, Status]:
    """For a browser-less app calling /resume while the bank is pending: wait one
    interval (bounded by MAX_HOLD), poll again, and report."""
    await asyncio.sleep(min(Poll.of(txn).interval, MAX_HOLD))
    return await advance(svc, handle, await load(svc, handle))
