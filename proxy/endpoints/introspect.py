"""POST /introspect: RFC 7662, and RFC 9701 JWT responses."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from proxy.context import SERVICES, Services
from proxy.endpoints.token import NO_STORE
from proxy.errors import OAuthError
from proxy.forms import read_params
from proxy.grants import active_access_token
from proxy.records import AccessToken
from proxy.settings import ResourceServer

JWT_RESPONSE = "application/token-introspection+jwt"


def _introspection(svc: Services, at: AccessToken, server: ResourceServer) -> dict[str, Any]:
    body: dict[str, Any] = {
        "active": True,
        "scope": " ".join(at.scope),
        "client_id": at.client_id,
        "sub": at.sub,
        "exp": at.exp,
        "iat": at.iat,
        "iss": svc.issuer,
        "token_type": "Bearer",
        "acr": at.acr,
        "bank_id": at.bank_id,
    }
    if at.authentication_level:
        body["authentication_level"] = at.authentication_level
    if server.receive_bank_token:
        # a bank that issued only an ID token (BankID's app-authorize) has none to give
        bank_access_token = svc.cipher.decrypt(at.bank_tokens).get("access_token")
        if bank_access_token is not None:
            body["bank_access_token"] = bank_access_token
    return body


async def introspect(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    server = svc.clients.authenticate_resource_server(request)
    structlog.contextvars.bind_contextvars(client_id=server.client_id)
    params = await read_params(request)
    token = params.get("token")
    if token is None:
        raise OAuthError("invalid_request", "token is missing")
    at = await active_access_token(svc, token)
    # RFC 7662 §2.2: for a token that is not active "the authorization server MUST
    # return an introspection response with the "active" field set to "false"" and
    # "SHOULD NOT include any additional information about an inactive token".
    body = {"active": False} if at is None else _introspection(svc, at, server)
    if JWT_RESPONSE in request.headers.get("Accept", ""):
        # RFC 9701 §5: typ "token-introspection+jwt"; iss, aud, iat, token_introspection
        claims = {"iss": svc.issuer, "aud": server.client_id, "iat": svc.now(),
                  "token_introspection": body}
        jws = svc.signer.sign(claims, typ="token-introspection+jwt")
        return web.Response(text=jws, content_type=JWT_RESPONSE, headers=NO_STORE)
    return web.json_response(body, headers=NO_STORE)
