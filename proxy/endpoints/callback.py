"""GET /callback/{bank_id}: the bank's redirect back; finish at the bank, issue a code.

A browser-less login (``Transaction.native``) gets JSON: the merchant app calls this
URL itself, with ``Accept: application/json``, after the bank app opened it
(draft-zehavi-oauth-app2app-browserless §3.7: "Returning a JSON body instructing the
next url to call")."""

from __future__ import annotations

from aiohttp import web

from federation.protocol import BankError, is_redirect
from proxy.login import sessions
from proxy.login.start import callback_uri
from proxy.login.transactions import answer_target, take_transaction
from proxy.oauth.errors import OAuthError, unavailable
from proxy.oauth.grants import issue_code
from proxy.oauth.services import SERVICES
from proxy.observability import audit
from proxy.observability.logs import bind_context
from proxy.store import StoreUnavailable
from proxy.web.errors import authorization_response
from proxy.web.forms import single_values


async def callback(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    bank_id = request.match_info["bank_id"]
    if svc.bank(bank_id) is None:
        raise OAuthError("invalid_request", "no bank is configured at this callback", status=404)
    bind_context(bank_id=bank_id)
    params = single_values(request.query.items())
    state = params.get("state")
    if state is None:
        raise OAuthError("invalid_request", "the bank's response has no state")
    # the transaction is taken once: a second callback with the same state finds a marker
    txn = await take_transaction(svc, state)
    bind_context(client_id=txn.client_id)
    target = answer_target(svc, txn)
    if txn.bank_id != bank_id:
        # dex's rule: the callback's bank is checked against the one remembered with the
        # request before any bank code runs.
        audit.login_failed(audit.LoginFacts.of(txn), "invalid_request", "callback")
        raise OAuthError(
            "invalid_request", "the response came back from another bank than the login used",
            redirect=target, detail=f"transaction bank {txn.bank_id}, callback bank {bank_id}",
        )
    adapter = svc.adapters[bank_id]
    if not is_redirect(adapter):
        raise OAuthError(
            "invalid_request", "this bank does not redirect back here", redirect=target
        )
    try:
        result = await adapter.finish(
            txn.conn_data, params, callback_uri(svc, bank_id)
        )
        code = await issue_code(svc, txn, result)
    except BankError as exc:
        audit.login_failed(audit.LoginFacts.of(txn), exc.error, "callback")
        await sessions.settle(svc, txn, "failed")
        raise OAuthError(exc.error, exc.description, redirect=target, detail=exc.detail) from exc
    except StoreUnavailable as exc:
        audit.login_failed(audit.LoginFacts.of(txn), "temporarily_unavailable", "callback")
        raise unavailable(target) from exc
    await sessions.settle(svc, txn, "complete")
    audit.login_completed(audit.LoginFacts.of(txn))
    return authorization_response(target, {"code": code})
