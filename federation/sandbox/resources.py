"""GET/POST /userinfo (RFC 6750 bearer) and POST /introspect (RFC 7662)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from federation.sandbox.appkeys import BANK
from federation.sandbox.client_auth import authenticate_client
from federation.sandbox.errors import OAuthError


def _bearer_error(error: str | None, description: str) -> web.Response:
    # RFC 6750 §3.1: a request without any authentication gets no error code.
    challenge = 'Bearer realm="sandbox"'
    if error is not None:
        challenge += f', error="{error}", error_description="{description}"'
    return web.json_response(
        {"error": error or "invalid_request", "error_description": description},
        status=401 if error != "invalid_request" else 400,
        headers={"WWW-Authenticate": challenge},
    )


async def userinfo(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    header = request.headers.get("Authorization", "")
    form = await request.post() if request.method == "POST" else {}
    body_token = form.get("access_token")
    if header[:7].lower() == "bearer ":
        if body_token is not None:
            # RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token".
            return _bearer_error("invalid_request", "token sent in more than one way")
        token = header[7:].strip()
    elif isinstance(body_token, str):
        token = body_token  # RFC 6750 §2.2, form-encoded body
    else:
        return _bearer_error(None, "no access token")
    grant = bank.active_access_token(token)
    if grant is None:
        return _bearer_error("invalid_token", "unknown or expired access token")
    return web.json_response({**bank.user_claims(grant.scope), "sub": grant.sub})


async def introspect(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    form = {k: str(v) for k, v in (await request.post()).items()}
    audiences = [bank.token_endpoint, bank.issuer, f"{bank.issuer}/introspect"]
    try:
        authenticate_client(bank, request, form, audiences)
        if not form.get("token"):
            raise OAuthError("invalid_request", "token is required")
    except OAuthError as exc:
        return exc.response()
    grant = bank.active_access_token(form["token"])
    if grant is None:
        # RFC 7662 §2.2: unknown, expired or revoked tokens are simply not active.
        return web.json_response({"active": False})
    body: dict[str, Any] = {
        "active": True,
        "scope": grant.scope,
        "client_id": grant.client_id,
        "sub": grant.sub,
        "token_type": "Bearer",
        "exp": grant.expires_at,
        "iat": grant.issued_at,
        "iss": bank.issuer,
    }
    return web.json_response(body)
