"""POST /token: the authorization_code, refresh_token, CIBA and client_credentials grants."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from federation.sandbox.appkeys import BANK
from federation.sandbox.bank import SandboxBank
from federation.sandbox.bankid import authenticate
from federation.sandbox.ciba import CIBA_GRANT_TYPE, ciba_grant
from federation.sandbox.errors import OAuthError
from federation.sandbox.models import RefreshGrant, SandboxClient
from federation.sandbox.rar import passed, permission_of
from federation.sandbox.token_response import NO_STORE, token_response


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_code(
    bank: SandboxBank, client: SandboxClient, form: Mapping[str, str]
) -> dict[str, Any]:
    code = bank.consume_code(form.get("code", ""))
    # RFC 6749 §5.2 invalid_grant: the code "is invalid, expired, revoked, does not match
    # the redirection URI used in the authorization request, or was issued to another client".
    if code is None:
        raise OAuthError("invalid_grant", "unknown, expired or already used code")
    req = code.request
    if req.client_id != client.client_id:
        raise OAuthError("invalid_grant", "code was issued to another client")
    if form.get("redirect_uri") != req.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
    verifier = form.get("code_verifier")
    if not verifier:
        raise OAuthError("invalid_request", "code_verifier is required")
    # RFC 7636 §4.6: "If the values are not equal, an error response indicating
    # "invalid_grant" as described in Section 4.1.2.1 of [RFC6749] MUST be returned."
    if not verifier.isascii() or not hmac.compare_digest(s256(verifier), req.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match code_challenge")
    grant = RefreshGrant(
        client_id=client.client_id,
        sub=code.sub,
        scope=req.scope,
        acr=req.acr,
        auth_time=code.auth_time,
        authorization_details=passed(req.authorization_details),
        permission=permission_of(req.authorization_details),
    )
    return token_response(bank, grant, req.nonce)


def client_credentials(
    bank: SandboxBank, client: SandboxClient, form: Mapping[str, str]
) -> dict[str, Any]:
    """RFC 6749 §4.4: an access token for the client itself (BankID: the permissions API
    token, also the client_assertion of app-authorize and of the CIBA polls)."""
    scope = form.get("scope", "")
    return {"access_token": bank.issue_api_token(client.client_id, scope),
            "token_type": "Bearer", "expires_in": bank.api_token_lifetime, "scope": scope}


def refresh_token(
    bank: SandboxBank, client: SandboxClient, form: Mapping[str, str]
) -> dict[str, Any]:
    if bank.refuse_refresh:
        raise OAuthError("invalid_grant", "the bank refuses to refresh (refuse_refresh)")
    token = form.get("refresh_token", "")
    grant = bank.refresh_tokens.get(token)
    if grant is None or grant.client_id != client.client_id:
        raise OAuthError("invalid_grant", "unknown or revoked refresh_token")
    if "scope" in form and not set(form["scope"].split()) <= set(grant.scope.split()):
        raise OAuthError("invalid_scope", "scope exceeds the original grant")
    del bank.refresh_tokens[token]  # rotation: the old refresh token is spent
    return token_response(bank, grant, None)


Grant = Callable[[SandboxBank, SandboxClient, Mapping[str, str]], dict[str, Any]]
GRANTS: dict[str, Grant] = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    CIBA_GRANT_TYPE: ciba_grant,
    "client_credentials": client_credentials,
}


async def token(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    if bank.token_delay > 0:
        await asyncio.sleep(bank.token_delay)
    form = {k: str(v) for k, v in (await request.post()).items()}
    try:
        client = authenticate(bank, request, form, [bank.token_endpoint, bank.issuer])
        grant_type = form.get("grant_type", "")
        handler = GRANTS.get(grant_type)
        if handler is None:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} not supported")
        body = handler(bank, client, form)
    except OAuthError as exc:
        return exc.response()
    return web.json_response(body, headers=NO_STORE)
