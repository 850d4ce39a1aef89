"""GET/POST /userinfo: the claims of the access token's subject (OIDC Core §5.3)."""

from __future__ import annotations

from aiohttp import web

from proxy.context import SERVICES
from proxy.endpoints.token import NO_STORE
from proxy.errors import OAuthError
from proxy.forms import FORM, read_params
from proxy.grants import active_access_token
from proxy.records import Grant

REALM = 'Bearer realm="app2app-proxy"'


async def _bearer_token(request: web.Request) -> str:
    """RFC 6750 §2.1 header, or §2.2 form body on POST; "Clients MUST NOT use more than
    one method to transmit the token in each request." """
    header = request.headers.get("Authorization")
    from_header = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise OAuthError("invalid_request", "use Authorization: Bearer <token>",
                             status=400, headers={"WWW-Authenticate": REALM})
        from_header = value.strip()
    from_body = None
    if request.method == "POST" and request.content_type == FORM:
        from_body = (await read_params(request)).get("access_token")
    if from_header and from_body:
        raise OAuthError("invalid_request", "send the access token once",
                         headers={"WWW-Authenticate": REALM})
    token = from_header or from_body
    if token is None:
        # RFC 6750 §3.1: without authentication information the error code is omitted
        raise OAuthError("invalid_token", "an access token is required", status=401,
                         headers={"WWW-Authenticate": REALM})
    return token


def _invalid_token() -> OAuthError:
    return OAuthError("invalid_token", "the access token is invalid or expired", status=401,
                      headers={"WWW-Authenticate": REALM + ', error="invalid_token"'})


async def userinfo(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    at = await active_access_token(svc, await _bearer_token(request))
    if at is None:
        raise _invalid_token()
    if "openid" not in at.scope:
        raise OAuthError("insufficient_scope", "the token was not granted the openid scope",
                         status=403,
                         headers={"WWW-Authenticate": REALM + ', error="insufficient_scope"'})
    data = await svc.store.find(Grant.kind, at.grant_id)
    if data is None:
        raise _invalid_token()
    grant = Grant.from_json(data)
    return web.json_response({**grant.claims, "sub": grant.sub}, headers=NO_STORE)
