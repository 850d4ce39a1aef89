"""POST /introspect: RFC 7662, and RFC 9701 JWT responses."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from proxy.config.settings import ResourceServer
from proxy.endpoints.token import NO_STORE
from proxy.model.records import AccessToken, Grant
from proxy.oauth import rar
from proxy.oauth.errors import OAuthError
from proxy.oauth.grants import active_access_token
from proxy.oauth.jose import Unreadable
from proxy.oauth.services import SERVICES, Services
from proxy.observability.logs import bind_context
from proxy.web.forms import FORM, read_params
from proxy.web.responses import json_response

JWT_RESPONSE = "application/token-introspection+jwt"


def introspection_claims(svc: Services, at: AccessToken, grant: Grant,
                         server: ResourceServer) -> dict[str, Any]:  # fmt: skip
    """The RFC 7662 answer for an active token, as ``server`` may see it (also the claims
    of /gateway/check's JWT); ``{"active": false}`` when its bank token cannot be read."""
    body: dict[str, Any] = {
        "active": True,
        "scope": " ".join(at.scope or grant.scope),
        "client_id": grant.client_id,
        "sub": grant.sub,
        "exp": at.exp,
        "iat": at.iat,
        "iss": svc.issuer,
        "token_type": "Bearer",
        "acr": grant.acr,
        "bank_id": grant.bank_id,
    }
    if at.aud is not None:
        # RFC 8707 §2: "the top-level member of the same name provides the audience
        # restriction information in a Token Introspection [RFC7662] response"
        body["aud"] = at.aud
    if at.jkt is not None:
        # RFC 9449 §6.2: the hash of the key "is conveyed using the same cnf content with
        # jkt member structure ... as a top-level member of the introspection response
        # JSON"; "If the token_type member is included in the introspection response, it
        # MUST contain the value DPoP."
        body["cnf"] = {"jkt": at.jkt}
        body["token_type"] = "DPoP"
    if grant.authentication_level:
        body["authentication_level"] = grant.authentication_level
    if server.receive_bank_token:
        # a bank that issued only an ID token (BankID's app-authorize) has none to give
        try:
            bank_access_token = svc.cipher.decrypt(grant.bank_tokens).get("access_token")
        except Unreadable:
            # sealed with a key no longer configured (logged with its kid): the token is
            # of no use to a server that needs the bank's token (RFC 7662 §2.2 leaves why
            # a token is inactive to the server)
            return {"active": False}
        if bank_access_token is not None:
            body["bank_access_token"] = bank_access_token
    body.update(_authorization_details(at, grant, server))
    return body


def _authorization_details(at: AccessToken, grant: Grant, server: ResourceServer
                           ) -> dict[str, Any]:  # fmt: skip
    """RFC 9396 §9.2: "If the AS includes authorization detail information for the token
    in its response, the information MUST be conveyed with authorization_details as a
    top-level member of the introspection response JSON object", the token's (fewer
    than the grant's after a narrowing token request), filtered for this server."""
    details = at.authorization_details or grant.authorization_details
    if details is None:
        return {}
    return {"authorization_details": rar.for_server(details, server)}


async def introspect(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    # a request without a form body is still told 401 first when it has no credentials
    params = await read_params(request) if request.content_type == FORM else {}
    server = await svc.clients.authenticate_resource_server(request, params)
    bind_context(client_id=server.client_id)
    token = params.get("token")
    if token is None:
        raise OAuthError("invalid_request", "token is missing")
    active = await active_access_token(svc, token)
    # RFC 8707 §2: "The authorization server SHOULD audience-restrict issued access tokens
    # to the resource(s) indicated by the resource parameter": a token is active only for
    # the resource server whose audience it names (no resource: those with no audience)
    if active is not None and active[0].aud != server.audience:
        active = None
    # RFC 7662 §2.2: for a token that is not active "the authorization server MUST
    # return an introspection response with the "active" field set to "false"" and
    # "SHOULD NOT include any additional information about an inactive token".
    body = {"active": False} if active is None else introspection_claims(svc, *active, server)
    if JWT_RESPONSE in request.headers.get("Accept", ""):
        # RFC 9701 §5: typ "token-introspection+jwt"; iss, aud, iat, token_introspection
        claims = {"iss": svc.issuer, "aud": server.client_id, "iat": svc.now(),
                  "token_introspection": body}
        jws = svc.signer.sign(claims, typ="token-introspection+jwt")
        return web.Response(text=jws, content_type=JWT_RESPONSE, headers=NO_STORE)
    return json_response(body, headers=NO_STORE)
