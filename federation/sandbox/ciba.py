"""CIBA poll mode (OpenID Connect Client-Initiated Backchannel Authentication Core 1.0):
POST /bc-authorize, the ``urn:openid:params:grant-type:ciba`` grant at /token, and
POST /ciba/decide, the sandbox's own way for tests to answer for the user.

The user answers on the bank app (ciba_app.py), or through ``bank.ciba_approve()``;
``auto_approve`` does not apply here, ``ciba_decision`` does.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from federation.sandbox.appkeys import BANK
from federation.sandbox.bank import ACR_VALUES, DECISIONS, DEFAULT_ACR, SandboxBank, new_token
from federation.sandbox.client_auth import authenticate_client
from federation.sandbox.errors import OAuthError
from federation.sandbox.models import (
    CibaRequest,
    CibaRequestClosed,
    RefreshGrant,
    SandboxClient,
    UnknownCibaRequest,
)
from federation.sandbox.token_response import NO_STORE, id_token_only_response, token_response

CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"
HINTS = ("login_hint", "login_hint_token", "id_token_hint")
_CREDENTIALS = ("client_secret", "client_assertion", "client_assertion_type")
_POSITIVE_INT = re.compile(r"[1-9][0-9]*")


def endpoint(bank: SandboxBank) -> str:
    return f"{bank.issuer}/bc-authorize"


# -- POST /bc-authorize ------------------------------------------------------------


def _expires_in(bank: SandboxBank, form: Mapping[str, str]) -> int:
    requested = form.get("requested_expiry")
    if requested is None:
        return bank.ciba_expires_in
    # CIBA §7.1 requested_expiry: "A positive integer allowing the client to request
    # the expires_in value for the auth_req_id the server will return."
    if not _POSITIVE_INT.fullmatch(requested):
        raise OAuthError("invalid_request", "requested_expiry must be a positive integer")
    return min(int(requested), bank.ciba_expires_in)


def _app_callback_ok(uri: str) -> bool:
    """An absolute URI (any scheme: apps return through their own) fit for a Location."""
    printable = all(" " < ch and ch != "\x7f" for ch in uri)
    return printable and bool(urlsplit(uri).scheme)


def _refusal(error: str) -> OAuthError:
    # CIBA §13: access_denied is answered with "HTTP 403 Forbidden", invalid_client with
    # 401, every other authentication error (e.g. unknown_user_id) with 400.
    status = {"access_denied": 403, "invalid_client": 401}.get(error, 400)
    return OAuthError(error, "the bank refuses this request (ciba_refuse)", status)


def open_request(bank: SandboxBank, client: SandboxClient, form: Mapping[str, str]) -> CibaRequest:
    """Validate an authenticated client's request (CIBA §7.2) and start waiting for the user."""
    scope = form.get("scope", "")
    # CIBA §7.1 scope: "The CIBA authentication request MUST contain the openid scope value."
    if "openid" not in scope.split():
        raise OAuthError("invalid_scope", "scope must contain openid")
    # CIBA §7.1: "it is REQUIRED that the Client provides one (and only one) of the hints
    # specified above in the authentication request, that is "login_hint_token",
    # "id_token_hint" or "login_hint"."
    if sum(bool(form.get(hint)) for hint in HINTS) != 1:
        raise OAuthError("invalid_request", f"send exactly one of {', '.join(HINTS)}")
    expires_in = _expires_in(bank, form)
    callback = form.get("app_callback_uri")
    if callback is not None and not _app_callback_ok(callback):
        raise OAuthError("invalid_request", "app_callback_uri must be an absolute URI")
    if bank.ciba_refuse is not None:
        raise _refusal(bank.ciba_refuse)
    acr = next((v for v in form.get("acr_values", "").split() if v in ACR_VALUES), DEFAULT_ACR)
    req = CibaRequest(
        auth_req_id=new_token(),
        handle=secrets.token_urlsafe(32),
        client_id=client.client_id,
        scope=scope,
        acr=acr,
        form={k: v for k, v in form.items() if k not in _CREDENTIALS},
        expires_at=time.time() + expires_in,
        interval=bank.ciba_interval,
    )
    bank.ciba_requests[req.auth_req_id] = req
    if bank.ciba_decision is not None:
        bank.ciba_decide(bank.ciba_decision, req.auth_req_id)
    return req


async def bc_authorize(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    form = {k: str(v) for k, v in (await request.post()).items()}
    # CIBA §7.1: "The OpenID Provider MUST accept its Issuer Identifier, Token Endpoint
    # URL, or Backchannel Authentication Endpoint URL" as the client assertion's audience.
    audiences = [bank.issuer, bank.token_endpoint, endpoint(bank)]
    try:
        client = authenticate_client(bank, request, form, audiences)
        req = open_request(bank, client, form)
    except OAuthError as exc:
        return exc.response()
    body: dict[str, Any] = {
        "auth_req_id": req.auth_req_id,
        "expires_in": round(req.expires_at - time.time()),
        "interval": req.interval,
    }
    if bank.ciba_deep_link:
        body["authorize_uri"] = f"{bank.issuer}/app2app/{req.handle}"
    return web.json_response(body, headers=NO_STORE)


# -- the CIBA grant at /token --------------------------------------------------------


def _still_pending(bank: SandboxBank, req: CibaRequest, now: float) -> OAuthError:
    previous, req.last_poll = req.last_poll, now
    # CIBA §11 slow_down: "A variant of "authorization_pending", the authorization request
    # is still pending and polling should continue" -- so only a pending request slows down.
    if bank.ciba_slow_down > 0:
        bank.ciba_slow_down -= 1
        return OAuthError("slow_down", "poll less often (ciba_slow_down)")
    # CIBA §7.3 interval: "The minimum amount of time in seconds that the Client MUST
    # wait between polling requests to the token endpoint."
    if previous is not None and now - previous < req.interval:
        return OAuthError("slow_down", f"poll at most every {req.interval} seconds")
    return OAuthError("authorization_pending", "the user has not answered yet")


def ciba_grant(bank: SandboxBank, client: SandboxClient, form: Mapping[str, str]) -> dict[str, Any]:
    """CIBA §10.1 token request; the errors of §11, each a 400 (RFC 6749 §5.2: "The
    authorization server responds with an HTTP 400 (Bad Request) status code")."""
    auth_req_id = form.get("auth_req_id")
    if not auth_req_id:
        raise OAuthError("invalid_request", "auth_req_id is required")
    req = bank.ciba_requests.get(auth_req_id)
    # CIBA §11 invalid_grant: "If the auth_req_id is invalid or was issued to another Client".
    if req is None or req.consumed or req.client_id != client.client_id:
        raise OAuthError("invalid_grant", "unknown or used auth_req_id, or another client's")
    now = time.time()
    if req.expired(now):
        # CIBA §11 expired_token: "The auth_req_id has expired."
        raise OAuthError("expired_token", "auth_req_id has expired; start a new request")
    if req.status == "denied":
        # CIBA §11 access_denied: "The end-user denied the authorization request."
        raise OAuthError("access_denied", "the user denied the request")
    if req.status == "pending":
        raise _still_pending(bank, req, now)
    assert req.sub is not None and req.decided_at is not None  # set with status approved
    req.consumed = True
    grant = RefreshGrant(
        client_id=req.client_id, sub=req.sub, scope=req.scope, acr=req.acr,
        auth_time=req.decided_at,
        permission=req.permission.permission if req.permission is not None else None,
    )
    if bank.ciba_id_token_only:
        return id_token_only_response(bank, grant)
    # No urn:openid:params:jwt:claim:auth_req_id claim: CIBA §10.3.1 requires it of the
    # ID token pushed in Push mode only; the poll-mode token response (§10.1.1) has none.
    return token_response(bank, grant, None)


# -- POST /ciba/decide (sandbox only: no client authentication) ------------------------


async def decide(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    form = await request.post()
    decision = str(form.get("decision", ""))
    if decision not in DECISIONS:
        return OAuthError("invalid_request", "decision must be approve or deny").response()
    try:
        req = bank.ciba_decide(decision, str(form.get("auth_req_id", "")))
    except UnknownCibaRequest:
        return OAuthError("not_found", "unknown auth_req_id", status=404).response()
    except CibaRequestClosed:
        return OAuthError("conflict", "already decided or expired", status=409).response()
    return web.json_response({"status": req.status}, headers=NO_STORE)
