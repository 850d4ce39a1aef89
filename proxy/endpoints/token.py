"""POST /token: the authorization_code and refresh_token grants."""

from __future__ import annotations

import structlog
from aiohttp import web

from proxy.context import SERVICES
from proxy.errors import OAuthError
from proxy.forms import read_params
from proxy.grants import exchange_code, refresh

# RFC 6749 §5.1: "The authorization server MUST include the HTTP "Cache-Control"
# response header field [RFC2616] with a value of "no-store" in any response
# containing tokens, credentials, or other sensitive information"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def token(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    params = await read_params(request)
    client = await svc.clients.authenticate(request, params)
    structlog.contextvars.bind_contextvars(client_id=client.client_id)
    grant_type = params.get("grant_type")
    if grant_type == "authorization_code":
        body = await exchange_code(svc, client, params)
    elif grant_type == "refresh_token":
        body = await refresh(svc, client, params)
    elif grant_type is None:
        raise OAuthError("invalid_request", "grant_type is missing")
    else:
        raise OAuthError("unsupported_grant_type", "use authorization_code or refresh_token")
    return web.json_response(body, headers=NO_STORE)
