"""GET /authorize and POST /authorize/decide.

One error path (node-oidc-provider): until the client and its exact redirect URI
are known, an error is an HTML page; after that, a redirect with error, state, iss.
``parse_request`` is the one validation of an authorization request: the browser-less
native endpoint (native.py) runs it too, and answers the same outcomes as JSON.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

from aiohttp import web
from yarl import URL

from federation.sandbox.appkeys import BANK
from federation.sandbox.bank import DEFAULT_ACR, SandboxBank
from federation.sandbox.models import AuthRequest
from federation.sandbox.pages import decision_form, error_page, page, sign_in_question

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


def parse_request(bank: SandboxBank, q: Mapping[str, str]) -> AuthRequest:
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
    return AuthRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        state=state,
        nonce=q["nonce"],
        scope=q["scope"],
        code_challenge=challenge,
        acr=acr_values[0] if acr_values else DEFAULT_ACR,
        login_hint=q.get("login_hint"),
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
    return page("Sign in with Sandbox Bank", sign_in_question(bank, req.client_id) + form)


async def authorize(request: web.Request) -> web.Response:
    bank: SandboxBank = request.app[BANK]
    try:
        req = parse_request(bank, request.query)
    except AuthorizeError as exc:
        return error_response(bank, exc)
    if bank.deny:
        return redirect(denied_url(bank, req))
    if bank.auto_approve:
        return redirect(approved_url(bank, req))
    return consent_page(bank, req)


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
