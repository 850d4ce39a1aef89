"""GET /authorize, POST /authorize/decide and POST /par (RFC 9126).

One error path (node-oidc-provider): until the client and its exact redirect URI
are known, an error is an HTML page; after that, a redirect with error, state, iss.
``parse_request`` is the one validation of an authorization request: the browser-less
native endpoint (native.py) runs it too, and answers the same outcomes as JSON.
"""

from __future__ import annotations

import html
import re
import secrets
import time
from collections.abc import Mapping

from aiohttp import web
from yarl import URL

from federation.sandbox.appkeys import BANK
from federation.sandbox.bank import DEFAULT_ACR, SandboxBank, new_token
from federation.sandbox.client_auth import authenticate_client
from federation.sandbox.errors import OAuthError
from federation.sandbox.models import AuthRequest
from federation.sandbox.pages import decision_form, error_page, page, sign_in_question
from federation.sandbox.rar import DetailsError, describe, parse
from federation.sandbox.token_response import NO_STORE

REQUEST_URI = "urn:ietf:params:oauth:request_uri:"
PAR_LIFETIME = 60

# RFC 7636 §4.2: code_challenge = BASE64URL(SHA256(verifier)), 43 characters for S256.
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class AuthorizeError(Exception):
    def __init__(
        self,
        error: str,
        description: str,
        redirect_uri: str | None = None,
        state: str | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri  # None: not verified, never redirect
        self.state = state


def response_url(bank: SandboxBank, redirect_uri: str, params: dict[str, str]) -> str:
    """The authorization response: ``redirect_uri`` with ``params`` (and iss) in its query."""
    if bank.iss_parameter:
        params["iss"] = bank.issuer  # RFC 9207 §2
    return str(URL(redirect_uri).update_query(params))


def redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def error_url(bank: SandboxBank, exc: AuthorizeError, redirect_uri: str) -> str:
    params = {"error": exc.error, "error_description": exc.description}
    if exc.state is not None:
        params["state"] = exc.state
    return response_url(bank, redirect_uri, params)


def error_response(bank: SandboxBank, exc: AuthorizeError) -> web.Response:
    if exc.redirect_uri is None:
        return error_page(exc.description, 400)
    return redirect(error_url(bank, exc, exc.redirect_uri))


def parse_request(bank: SandboxBank, q: Mapping[str, str], *, pushed: bool = False
                  ) -> AuthRequest:  # fmt: skip
    client = bank.clients.get(q.get("client_id", ""))
    if client is None:
        raise AuthorizeError("invalid_request", "unknown client_id")
    redirect_uri = q.get("redirect_uri", "")
    if redirect_uri not in client.redirect_uris:  # exact string match
        raise AuthorizeError("invalid_request", "redirect_uri is not registered for this client")
    state = q.get("state")

    def fail(error: str, description: str) -> AuthorizeError:
        return AuthorizeError(error, description, redirect_uri, state)

    if q.get("response_type") != "code":
        raise fail("unsupported_response_type", "response_type must be code")
    if "openid" not in q.get("scope", "").split():
        raise fail("invalid_scope", "scope must contain openid")
    if not state:
        raise fail("invalid_request", "state is required")
    if not q.get("nonce"):
        raise fail("invalid_request", "nonce is required")
    if q.get("code_challenge_method") != "S256":
        raise fail("invalid_request", "code_challenge_method must be S256")
    challenge = q.get("code_challenge", "")
    if not _CHALLENGE.match(challenge):
        raise fail("invalid_request", "code_challenge must be a base64url SHA-256 (43 chars)")
    acr_values = q.get("acr_values", "").split()
    try:
        details = parse(bank, q.get("authorization_details"), pushed=pushed)
    except DetailsError as exc:
        # RFC 9396 §5
        raise fail("invalid_authorization_details", str(exc)) from None
    return AuthRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        state=state,
        nonce=q["nonce"],
        scope=q["scope"],
        code_challenge=challenge,
        acr=acr_values[0] if acr_values else DEFAULT_ACR,
        login_hint=q.get("login_hint"),
        authorization_details=details,
    )


def approved_url(bank: SandboxBank, req: AuthRequest) -> str:
    return response_url(bank, req.redirect_uri, {"code": bank.issue_code(req), "state": req.state})


def denied_url(bank: SandboxBank, req: AuthRequest) -> str:
    exc = AuthorizeError(
        "access_denied", "the user denied the request", req.redirect_uri, req.state
    )
    return error_url(bank, exc, req.redirect_uri)


def decision_url(bank: SandboxBank, req: AuthRequest, decision: str) -> str:
    """What the redirect flow sends back for the user's ``decision`` ("approve" or "deny")."""
    return approved_url(bank, req) if decision == "approve" else denied_url(bank, req)


def consent_page(bank: SandboxBank, req: AuthRequest) -> web.Response:
    if (req.client_id, req.state) in bank.answered:
        # Back from the merchant's page to this one: the request was answered; no live
        # buttons that would send a second answer to a login that has moved on
        return page("You already answered", "<p>You already answered this sign-in request. "
                    "Return to the app or website you came from.</p>")
    handle = secrets.token_urlsafe(32)
    bank.pending[handle] = req
    form = decision_form(f"{bank.issuer}/authorize/decide", {"handle": handle})
    shown = "".join(f"<p><strong>{html.escape(line)}</strong></p>"
                    for line in describe(req.authorization_details))
    return page("Sign in with Sandbox Bank", sign_in_question(bank, req.client_id) + shown + form)


def _pushed(bank: SandboxBank, query: Mapping[str, str]) -> Mapping[str, str] | None:
    """RFC 9126 §4: the pushed request a request_uri names, once, for its client."""
    request_uri = query.get("request_uri")
    if request_uri is None:
        return None
    entry = bank.pushed.pop(request_uri, None)
    if entry is None or entry[0] != query.get("client_id") or entry[2] <= time.time():
        raise AuthorizeError("invalid_request_uri", "unknown, used or expired request_uri")
    return entry[1]


async def authorize(request: web.Request) -> web.Response:
    bank: SandboxBank = request.app[BANK]
    try:
        pushed = _pushed(bank, request.query)
        req = parse_request(bank, pushed if pushed is not None else request.query,
                            pushed=pushed is not None)
    except AuthorizeError as exc:
        return error_response(bank, exc)
    if bank.deny:
        return redirect(denied_url(bank, req))
    if bank.auto_approve:
        return redirect(approved_url(bank, req))
    return consent_page(bank, req)


async def par(request: web.Request) -> web.Response:
    """RFC 9126 §2: an authenticated client pushes its request; 201 with request_uri."""
    bank: SandboxBank = request.app[BANK]
    form = {k: str(v) for k, v in (await request.post()).items()}
    audiences = [bank.issuer, bank.token_endpoint, f"{bank.issuer}/par"]
    try:
        client = authenticate_client(bank, request, form, audiences)
        params = {k: v for k, v in form.items()
                  if k not in ("client_secret", "client_assertion", "client_assertion_type")}
        params.setdefault("client_id", client.client_id)
        if params["client_id"] != client.client_id:
            raise OAuthError("invalid_request", "client_id differs from the client")
        try:
            parse_request(bank, params, pushed=True)
        except AuthorizeError as exc:
            raise OAuthError(exc.error, exc.description) from None
    except OAuthError as exc:
        return exc.response()
    request_uri = REQUEST_URI + new_token()
    bank.pushed[request_uri] = (client.client_id, params, time.time() + PAR_LIFETIME)
    return web.json_response({"request_uri": request_uri, "expires_in": PAR_LIFETIME},
                             status=201, headers=NO_STORE)


async def decide(request: web.Request) -> web.Response:
    bank: SandboxBank = request.app[BANK]
    form = await request.post()
    decision = form.get("decision")
    if decision not in ("approve", "deny"):
        return error_page("decision must be approve or deny", 400)
    req = bank.pending.pop(str(form.get("handle", "")), None)
    if req is None:
        return error_page("unknown or used request handle", 400)
    bank.answered.add((req.client_id, req.state))
    return redirect(decision_url(bank, req, decision))
