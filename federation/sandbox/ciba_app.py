"""The bank app for CIBA with the BankID App2App extension: GET /app2app/{handle} shows
the binding message, or what the BankID permission asks (the payment: amount, currency,
creditor), with Approve / Deny; POST /app2app/{handle}/decide records the
answer, then returns to the client's app (its ``app_callback_uri``) if it sent one."""

from __future__ import annotations

import html

from aiohttp import web

from federation.sandbox.appkeys import BANK
from federation.sandbox.authorize import redirect
from federation.sandbox.bank import DECISIONS, SandboxBank
from federation.sandbox.models import CibaRequest, CibaRequestClosed
from federation.sandbox.pages import decision_form, error_page, page, sign_in_question


def _by_handle(bank: SandboxBank, handle: str) -> CibaRequest | None:
    return next((r for r in bank.ciba_requests.values() if r.handle == handle), None)


async def app_page(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    handle = request.match_info["handle"]
    req = _by_handle(bank, handle)
    if req is None:
        return error_page("There is no such sign-in request.", 404)
    if req.status != "pending":
        # Back from the merchant's page to this one: answered, no live buttons
        return page("You already answered", "<p>You already answered this sign-in request. "
                    "Return to the app you came from.</p>")
    if not req.takes_decision():
        return error_page("This sign-in request has expired.", 410)
    body = sign_in_question(bank, req.client_id)
    if req.permission is not None and req.permission.describe():
        body += f"<p><strong>{html.escape(req.permission.describe())}</strong></p>"
    if req.binding_message:
        body += (
            "<p>Go on only if the other device shows this message: "
            f"<strong>{html.escape(req.binding_message)}</strong></p>"
        )
    body += decision_form(f"{bank.issuer}/app2app/{handle}/decide")
    return page("Sandbox Bank app", body)


async def app_decide(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    decision = str((await request.post()).get("decision", ""))
    if decision not in DECISIONS:
        return error_page("decision must be approve or deny", 400)
    req = _by_handle(bank, request.match_info["handle"])
    if req is None:
        return error_page("There is no such sign-in request.", 404)
    try:
        bank.ciba_decide(decision, req.auth_req_id)
    except CibaRequestClosed:
        return error_page("This sign-in request was already answered or has expired.", 409)
    if req.app_callback_uri:
        return redirect(req.app_callback_uri)
    # post/redirect/get: a reload of the answer page never posts the decision again
    return web.Response(status=303, headers={
        "Location": f"{bank.issuer}/app2app/{request.match_info['handle']}/done"})


async def app_done(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    req = _by_handle(bank, request.match_info["handle"])
    if req is None:
        return error_page("There is no such sign-in request.", 404)
    answered = {"approved": "approved", "denied": "denied"}.get(req.status)
    if answered is None:
        return error_page("This sign-in request was not answered.", 409)
    return page("Return to the app",
                f"<p>Done: you {answered} the sign-in. Return to the app you came from.</p>")
