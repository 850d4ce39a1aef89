"""POST /par: pushed authorization requests (RFC 9126 §2)."""

from __future__ import annotations

from aiohttp import web

from proxy.config.settings import ClientSettings
from proxy.endpoints.token import NO_STORE
from proxy.oauth import dpop, rar
from proxy.oauth.authorize_checks import (
    REDIRECTED_CHECKS,
    check_redirect_uri,
    check_resource_known,
    known_parameters,
    pass_through_names,
)
from proxy.oauth.errors import OAuthError
from proxy.oauth.par import push
from proxy.oauth.services import SERVICES, Services
from proxy.observability.logs import bind_context
from proxy.web.forms import read_params
from proxy.web.responses import json_response

PATH = "/par"


async def par(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    params = await read_params(request)
    # RFC 9126 §2.1: "If applicable, the client also adds its authentication credentials
    # to the request header or the request body using the same rules as for token
    # endpoint requests."
    client = await svc.clients.authenticate(request, params)
    bind_context(client_id=client.client_id)
    if "client_id" not in params:
        # RFC 9126 §2.1: client_id, "as a required authorization request parameter, it
        # is similarly required in a pushed authorization request"
        raise OAuthError("invalid_request", "client_id is missing")
    if params["client_id"] != client.client_id:
        raise OAuthError("invalid_request", "client_id differs from the authenticated client")
    if "request_uri" in params:
        # RFC 9126 §2.1: "The request_uri authorization request parameter is one
        # exception, and it MUST NOT be provided."
        raise OAuthError("invalid_request", "request_uri cannot be pushed")
    # RFC 9126 §2.1: the server MUST "validate the pushed request as it would an
    # authorization request sent to the authorization endpoint"; errors are answered
    # here (§2.3), never redirected. Only the parameters the proxy reads are kept (and
    # stored), each bounded: RFC 6749 §3.1, unrecognized ones are ignored.
    params = known_parameters(params, pass_through_names(svc.config.banks))
    check_redirect_uri(client, params)
    for check in REDIRECTED_CHECKS:
        check(client, params)
    check_resource_known(svc.config.resource_servers, params)
    rar.check_request(svc.config, client, params)
    headers = dict(NO_STORE)
    if "DPoP" in request.headers:
        params = {**params, "dpop_jkt": await _proof_key(svc, request, client, params)}
        headers["DPoP-Nonce"] = dpop.new_nonce(svc)
    request_uri = await push(svc, client, params)
    lifetime = svc.config.lifetimes.request_uri
    # RFC 9126 §2.2: "201 HTTP status code" with request_uri and expires_in
    return json_response(
        {"request_uri": request_uri, "expires_in": lifetime}, status=201, headers=headers
    )


async def _proof_key(
    svc: Services, request: web.Request, client: ClientSettings, params: dict[str, str]
) -> str:
    """RFC 9449 §10.1: "authorization servers that support both PAR and DPoP MUST support
    the DPoP header in PAR requests"; the proof's key binds the code like dpop_jkt, and
    "if both mechanisms are used at the same time, the authorization server MUST reject
    the request if the JWK Thumbprint in dpop_jkt does not match the public key in the
    DPoP header"."""
    try:
        jkt = await dpop.verify(svc, request, path=PATH, algs=dpop.algs_for(client))
        if jkt is None or params.get("dpop_jkt") not in (None, jkt):
            raise dpop.error(svc, "invalid_dpop_proof", "dpop_jkt does not match the DPoP "
                             "proof's key", resource=False)  # fmt: skip
    except OAuthError as err:
        err.headers.setdefault("DPoP-Nonce", dpop.new_nonce(svc))
        raise
    return jkt
