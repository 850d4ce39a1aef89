"""Logins at session banks (``kind: session``, an eID app reached through a broker's
REST session API): what the proxy keeps while the user is in the eID app, and the
answer of ``GET /authorize/status/{handle}`` for them.

The transaction is kept under the state the broker chose: the eID app brings it back
to ``/callback/{bank_id}``, where it is taken once as for any redirect bank. Beside
it, under a handle of the proxy's own, a :class:`SessionWatch` lets a browser-less
app ask how the login goes while the user is away (its ``deep_link`` answer names the
status URL). The broker is read only when someone asks, at most once per interval
across instances (the poll lock of decoupled logins, whose record also keeps what the
last read found); once the callback has finished the login, its outcome is the answer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

from federation.protocol import BankError, SessionProgress, SessionWatcher, is_session
from proxy.login.decoupled import POLL_LOCK, REPORT_GRACE
from proxy.login.transactions import SEALED, stored
from proxy.model.records import SessionWatch, Transaction
from proxy.model.tokens import new_value
from proxy.oauth.jose import Unreadable
from proxy.oauth.services import Services
from proxy.observability.logs import bind_context, logger
from proxy.store import StoreUnavailable

log = logger("proxy.sessions")

UNUSABLE = "the bank's answer could not be used"


def status_uri(svc: Services, handle: str) -> str:
    return f"{svc.issuer}/authorize/status/{handle}"


async def keep(svc: Services, adapter: SessionWatcher, txn: Transaction, state: str) -> str | None:
    """Store the transaction under the broker's ``state`` and, for a browser-less login
    (the only kind that is told a status URL), its SessionWatch under a new handle; the
    handle, or None. BankError if the state is already in use."""
    lifetime = svc.config.lifetimes.transaction
    handle = new_value() if txn.native else None
    record = dataclasses.replace(txn, watch=handle)
    # The broker chose the state, so it is not ours to trust to be unique: a state that
    # already keys a login is refused, never written over (SET NX), so one user's return
    # can never finish another's login.
    if not await svc.store.add(Transaction.kind, state, stored(svc, record), lifetime):
        raise BankError("server_error", UNUSABLE, "session: the broker's state is already in use")
    if handle is None:
        return None
    api = adapter.settings.session
    interval = math.ceil(api.poll_interval) if api is not None else 1
    # the session as the adapter keeps it, sealed like the transaction's own conn_data
    # (proxy.login.transactions): a Redis dump names no session to read
    sealed = {SEALED: svc.cipher.encrypt(dict(txn.conn_data))}
    watch = SessionWatch(txn.bank_id, txn.client_id, sealed, interval)
    await svc.store.upsert(SessionWatch.kind, handle, watch.to_json(), lifetime)
    return handle


async def status(svc: Services, handle: str) -> dict[str, object] | None:
    """``{"status": "pending"|"complete"|"failed", "interval": n}`` of the session login
    ``handle``; None when no session login has this handle."""
    data = await svc.store.find(SessionWatch.kind, handle)
    if data is None:
        return None
    watch = SessionWatch.from_json(data)
    bind_context(client_id=watch.client_id, bank_id=watch.bank_id)
    found = watch.outcome or await _read(svc, handle, watch)
    return {"status": found, "interval": watch.interval}


async def _read(svc: Services, handle: str, watch: SessionWatch) -> SessionProgress:
    """The session's progress at the broker, read at most once per interval."""
    adapter = svc.adapters.get(watch.bank_id)
    if not is_session(adapter):
        return "failed"  # a reload removed the bank while the user was away
    # the lock outlives a read in flight (the bank's timeout), then spaces reads apart
    busy = watch.interval + math.ceil(adapter.settings.timeout) + 1
    if not await svc.store.add(POLL_LOCK, handle, {}, busy):
        last = await svc.store.find(POLL_LOCK, handle)
        kept = last.get("progress") if last else None
        return "complete" if kept == "complete" else "failed" if kept == "failed" else "pending"
    found: SessionProgress
    try:
        found = await adapter.watch(_opened(svc, watch.conn_data))
    except Unreadable:  # sealed with a key no longer configured
        found = "failed"
    except BankError as exc:
        log.warning("session_read_failed", error=exc.error, detail=exc.detail)
        found = "pending" if exc.error == "temporarily_unavailable" else "failed"
    await svc.store.upsert(POLL_LOCK, handle, {"progress": found}, watch.interval)
    return found


def _opened(svc: Services, conn_data: Mapping[str, Any]) -> dict[str, Any]:
    sealed = conn_data.get(SEALED)
    return svc.cipher.decrypt(str(sealed)) if sealed is not None else dict(conn_data)


async def settle(svc: Services, txn: Transaction,
                 outcome: Literal["complete", "failed"]) -> None:  # fmt: skip
    """The callback finished a session login: /authorize/status tells that from now on
    (for REPORT_GRACE seconds). The login's own answer never waits on this: a store
    that fails here is logged and the status falls back to reading the broker."""
    if txn.watch is None:
        return
    try:
        data = await svc.store.find(SessionWatch.kind, txn.watch)
        if data is not None:
            settled = dataclasses.replace(SessionWatch.from_json(data), outcome=outcome)
            await svc.store.replace(SessionWatch.kind, txn.watch, settled.to_json(),
                                    REPORT_GRACE)
    except StoreUnavailable as exc:
        log.warning("session_watch_not_settled", detail=str(exc))
