"""The sandbox broker's HTTP API: the API token endpoint (client credentials), sessions
(create, read) and the token-request URL where the merchant's backend validates the
code the itsme app brought back. Each handler checks what it receives, as the real
broker would, and records it (``SandboxBroker.requests``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from federation.sandbox.appkeys import BROKER
from federation.sandbox.broker import FINAL, BrokerRequest, BrokerSession, SandboxBroker
from federation.sandbox.client_auth import authenticate_client
from federation.sandbox.errors import OAuthError
from federation.sandbox.token_response import NO_STORE

_FORM = "application/x-www-form-urlencoded"


async def _received(request: web.Request) -> tuple[SandboxBroker, Any, dict[str, str]]:
    """The broker, the request's JSON body (None if it had none) and its form; recorded."""
    broker = request.app[BROKER]
    body: Any = None
    form: dict[str, str] = {}
    if request.content_type == _FORM:
        form = {k: str(v) for k, v in (await request.post()).items()}
    elif request.can_read_body:
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
    broker.requests.append(BrokerRequest(request.method, request.path, dict(request.headers),
                                         body, form))
    if broker.delay > 0:
        await asyncio.sleep(broker.delay)
    return broker, body, form


def _problem(status: int, title: str) -> web.Response:
    """An RFC 9457 problem document, as a REST API answers its errors."""
    return web.json_response({"title": title, "status": status}, status=status,
                             content_type="application/problem+json")


def _unauthorized(broker: SandboxBroker, request: web.Request) -> web.Response | None:
    """RFC 6750 §3.1: a request without a valid token is 401 with WWW-Authenticate; the
    account header must name the broker's account when it has one."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not broker.api_token_valid(token):
        error = ', error="invalid_token"' if token else ""
        return web.json_response(
            {"error": "invalid_token", "error_description": "the API token is not valid"},
            status=401, headers={"WWW-Authenticate": f'Bearer realm="sandbox-broker"{error}'},
        )
    if broker.account_id is not None and \
            request.headers.get("Signicat-AccountId") != broker.account_id:
        return _problem(403, "Signicat-AccountId does not name this account")
    return None


def _answer(body: Any, status: int = 200) -> web.Response:
    if isinstance(body, bytes):
        return web.Response(body=body, status=status, content_type="application/json")
    return web.json_response(body, status=status, headers=NO_STORE)


# -- POST /auth/open/connect/token -------------------------------------------------------


async def api_token(request: web.Request) -> web.Response:
    broker, _, form = await _received(request)
    try:
        authenticate_client(broker, request, form, [broker.token_endpoint, broker.base])
        # RFC 6749 §4.4.2: grant_type "Value MUST be set to "client_credentials""
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "only client_credentials is served")
        requested = form.get("scope", " ".join(broker.scopes)).split()
        if not set(requested) <= set(broker.scopes):
            raise OAuthError("invalid_scope", "scope exceeds what this client may have")
    except OAuthError as exc:
        return exc.response()
    return web.json_response(
        {"access_token": broker.issue_api_token(), "token_type": "Bearer",
         "expires_in": broker.api_token_lifetime, "scope": " ".join(requested)},
        headers=NO_STORE,
    )  # fmt: skip


# -- POST /auth/rest/sessions ------------------------------------------------------------


def _session_request(broker: SandboxBroker, body: Any) -> tuple[str, list[str]] | str:
    """(redirect URL, requested attributes) of a create request, or what is wrong."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if body.get("allowedProviders") != [broker.provider]:
        return f"allowedProviders must be [{broker.provider!r}]"
    if body.get("flow") != "headless":
        return "flow must be headless"
    extra = body.get("additionalParameters")
    redirect_url = extra.get(broker.redirect_parameter) if isinstance(extra, dict) else None
    # the seed: "Only the redirect URLs configured in the Signicat Dashboard are allowed"
    if redirect_url not in broker.redirect_urls:
        return f"additionalParameters.{broker.redirect_parameter} is not a configured URL"
    requested = body.get("requestedAttributes", [])
    if not isinstance(requested, list) or not all(isinstance(a, str) for a in requested):
        return "requestedAttributes must be a list of strings"
    assert isinstance(redirect_url, str)
    return redirect_url, requested


async def create_session(request: web.Request) -> web.Response:
    broker, body, _ = await _received(request)
    refused = _unauthorized(broker, request)
    if refused is not None:
        return refused
    checked = _session_request(broker, body)
    if isinstance(checked, str):
        return _problem(400, checked)
    session = broker.open_session(*checked)
    answer = broker.describe(session)
    if broker.create_answer is not None:
        return _answer(broker.create_answer(answer), 201)
    return _answer(answer, 201)


# -- GET /auth/rest/sessions/{id} --------------------------------------------------------


async def read_session(request: web.Request) -> web.Response:
    broker, _, _ = await _received(request)
    refused = _unauthorized(broker, request)
    if refused is not None:
        return refused
    session = broker.sessions.get(request.match_info["session_id"])
    # a session past its lifetime is gone, unless it ended before
    if session is None or (session.expired() and session.status not in FINAL):
        return _problem(404, "no such session")
    answer = broker.describe(session)
    if broker.read_answer is not None:
        return _answer(broker.read_answer(answer))
    return _answer(answer)


# -- POST /idps/itsme/login-headless/token ---------------------------------------------


def _validate(broker: SandboxBroker, body: Any) -> BrokerSession | str:
    """The seed's token validation request: code, state and transactionId."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    code, state, transaction = body.get("code"), body.get("state"), body.get("transactionId")
    session = next((s for s in broker.sessions.values() if s.transaction_id == transaction),
                   None)
    if session is None:
        return "unknown transactionId"
    if session.expired():
        return "the session has expired"
    if state != session.state:
        return "state does not match the session's"
    if session.code is None or code != session.code:
        return "unknown or used code"
    return session


async def token_request(request: web.Request) -> web.Response:
    broker, body, _ = await _received(request)
    refused = _unauthorized(broker, request)
    if refused is not None:
        return refused
    checked = _validate(broker, body)
    if isinstance(checked, str):
        return web.json_response({"error": "invalid_grant", "error_description": checked},
                                 status=400, headers=NO_STORE)
    checked.code = None  # single use
    checked.validated = True
    checked.status = broker.end_with
    checked.reads_left_pending = broker.pending_reads
    return web.json_response({"status": "validated"}, headers=NO_STORE)
