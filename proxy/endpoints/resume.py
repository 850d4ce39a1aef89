"""GET /resume/{handle} and GET /authorize/status/{handle}: a decoupled login.

Both poll the bank when it is due (see proxy.login.decoupled). /resume is where the
bank app sends the user back: while the bank is pending, a waiting page (with the
code to compare, the request's binding_message) whose link checks again, then the
redirect to the merchant with a code or an error.
A browser-less login (or a caller asking for JSON) gets the draft's JSON actions.
"""

from __future__ import annotations

from aiohttp import web

from proxy.login import decoupled, sessions
from proxy.oauth.errors import OAuthError
from proxy.oauth.services import SERVICES
from proxy.web import pages
from proxy.web.errors import next_step
from proxy.web.responses import json_response


def _wants_json(request: web.Request) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


async def resume(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    handle = request.match_info["handle"]
    try:
        txn = await decoupled.load(svc, handle)
    except OAuthError:
        # Back (or a reload) in the browser after the login finished: a page that says
        # so, not an error; anything else is the error it is
        if not _wants_json(request) and await decoupled.has_ended(svc, handle):
            return pages.ended("your bank", None)
        raise
    txn, status = await decoupled.advance(svc, handle, txn)
    json_mode = txn.native or _wants_json(request)
    if status == "pending" and json_mode:
        txn, status = await decoupled.hold(svc, handle, txn)
    if status == "pending":
        url = decoupled.resume_uri(svc, handle)
        if json_mode:
            return next_step(url, native=True)
        bank = svc.bank(txn.bank_id)
        name = bank.display_name if bank is not None else txn.bank_id
        return pages.waiting(url, name, decoupled.Poll.of(txn).binding_message)
    return await decoupled.finish(svc, handle, txn)


async def status(request: web.Request) -> web.StreamResponse:
    """JSON ``{"status": "pending"|"complete"|"failed", "interval": n}``; no authentication:
    the handle is an unguessable 256-bit value bound to one login (a decoupled one, or a
    session bank's)."""
    svc = request.app[SERVICES]
    handle = request.match_info["handle"]
    session_login = await sessions.status(svc, handle)
    if session_login is not None:
        return json_response(session_login, headers={"Cache-Control": "no-store"})
    txn = await decoupled.load(svc, handle)
    txn, state = await decoupled.advance(svc, handle, txn)
    return json_response(
        {"status": state, "interval": decoupled.Poll.of(txn).interval},
        headers={"Cache-Control": "no-store"},
    )
