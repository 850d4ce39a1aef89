"""POST /token: the authorization_code and refresh_token grants, and for the merchant's own
apps the App2App approval and the Native SSO token exchange (proxy.oauth.own_apps),
DPoP-bound or not; and POST /challenge, for the device-key JWTs of approvals."""

from __future__ import annotations

from aiohttp import web

from proxy.config.settings import ClientSettings
from proxy.oauth import dpop
from proxy.oauth.device_key import new_challenge
from proxy.oauth.errors import OAuthError
from proxy.oauth.grants import exchange_code, refresh
from proxy.oauth.own_apps import APP2APP_GRANT, TOKEN_EXCHANGE, approve, exchange_device_session
from proxy.oauth.services import SERVICES, Services
from proxy.observability.logs import bind_context
from proxy.web.forms import read_params
from proxy.web.responses import json_response

# RFC 6749 §5.1: "The authorization server MUST include the HTTP "Cache-Control"
# response header field [RFC2616] with a value of "no-store" in any response
# containing tokens, credentials, or other sensitive information"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PATH = "/token"


async def _proof_key(svc: Services, request: web.Request, client: ClientSettings) -> str | None:
    """The jkt of the request's valid DPoP proof, or None without one."""
    jkt = await dpop.verify(svc, request, path=PATH, algs=dpop.algs_for(client))
    if jkt is None and client.dpop_required:
        # RFC 9449 §5.2, dpop_bound_access_tokens: "If the value is true, the
        # authorization server MUST reject token requests from the client that do not
        # contain the DPoP header."
        raise dpop.error(svc, "invalid_dpop_proof", "this client must send a DPoP proof",
                         resource=False)
    return jkt


async def token(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    uses_dpop = "DPoP" in request.headers
    try:
        params = await read_params(request)
        client = await svc.clients.authenticate(request, params)
        bind_context(client_id=client.client_id)
        uses_dpop = uses_dpop or client.dpop_required
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            body = await exchange_code(svc, client, params,
                                       jkt=await _proof_key(svc, request, client))
        elif grant_type == "refresh_token":
            body = await refresh(svc, client, params, jkt=await _proof_key(svc, request, client))
        elif grant_type == APP2APP_GRANT and svc.config.approvals:
            body = await approve(svc, client, params, jkt=await _proof_key(svc, request, client))
        elif grant_type == TOKEN_EXCHANGE and svc.config.native_sso:
            body = await exchange_device_session(svc, client, params,
                                                 jkt=await _proof_key(svc, request, client))
        elif grant_type is None:
            raise OAuthError("invalid_request", "grant_type is missing")
        else:
            raise OAuthError("unsupported_grant_type", "this server does not support that "
                             "grant_type (discovery: grant_types_supported)")
    except OAuthError as err:
        if uses_dpop:
            # RFC 9449 §8: "The rejection response MAY include a DPoP-Nonce HTTP header
            # providing a new nonce value to use for subsequent requests."
            err.headers.setdefault("DPoP-Nonce", dpop.new_nonce(svc))
        raise
    headers = dict(NO_STORE)
    if uses_dpop:
        # RFC 9449 §8.2: "A more efficient manner of supplying a new nonce value is also
        # defined by including a DPoP-Nonce HTTP header in the HTTP 200 (OK) response"
        headers["DPoP-Nonce"] = dpop.new_nonce(svc)
    return json_response(body, headers=headers)


async def challenge(request: web.Request) -> web.StreamResponse:
    """POST /challenge: a single-use challenge for one device-key JWT of the authenticated
    client (proxy.oauth.device_key)."""
    svc = request.app[SERVICES]
    params = await read_params(request)
    client = await svc.clients.authenticate(request, params)
    bind_context(client_id=client.client_id)
    return json_response(await new_challenge(svc, client), headers=NO_STORE)
