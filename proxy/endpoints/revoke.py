"""POST /revoke: RFC 7009."""

from __future__ import annotations

from aiohttp import web

from proxy.oauth.errors import OAuthError
from proxy.oauth.grants import revoke
from proxy.oauth.services import SERVICES
from proxy.observability.logs import bind_context
from proxy.web.forms import read_params


async def revoke_endpoint(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    params = await read_params(request)
    client = await svc.clients.authenticate(request, params)
    bind_context(client_id=client.client_id)
    token = params.get("token")
    if token is None:
        raise OAuthError("invalid_request", "token is missing")
    await revoke(svc, client, token, params.get("token_type_hint"))
    # RFC 7009 §2.2: "The authorization server responds with HTTP status code 200 if
    # the token has been revoked successfully or if the client submitted an invalid
    # token."
    return web.Response(status=200, headers={"Cache-Control": "no-store"})
