"""``/gateway/check``: a gateway checks its caller's access token for the APIs behind it
(nginx ``auth_request``, Envoy ``ext_authz`` HTTP service; docs/gateways.md).

The gateway sends the caller's ``Authorization`` (Bearer or DPoP) and ``DPoP`` headers,
says which request it checks (``X-Forwarded-Method``, ``-Proto``, ``-Host``, ``-Uri``;
Envoy appends the original path to the check's own instead of ``X-Forwarded-Uri``), and
authenticates as a resource server (``Gateway-Authorization``). The token is checked as
introspection and ``/userinfo`` check it: active, for this resource server's audience,
and a DPoP-bound token only with a valid proof of its key for the original method and
URI, with ``ath``. The answer:

- 200 with ``Gateway-JWT``: a short-lived JWT (``typ: at+jwt``, RFC 9068) signed with a
  key from ``/jwks``, holding the introspection claims (the bank access token only for a
  resource server with ``receive_bank_token``), for the gateway to hand its services
  (the "phantom token"). ``Cache-Control`` says how long the gateway may reuse it: at
  most ``lifetimes.gateway_cache`` and never past the token's or the JWT's end; a check
  of a DPoP proof is never reused (each proof is good for one request).
- 401 or 403 with the challenge of RFC 6750 §3 and RFC 9449 §7.1, which the gateway
  passes on to its caller.
- 400 for what is wrong with the gateway's own request (its credentials, the original
  request it names): a gateway turns any other status into an error of its own (nginx:
  500), never into a verdict on its caller's token.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from proxy.config.settings import ResourceServer
from proxy.endpoints.introspect import introspection_claims
from proxy.endpoints.token import NO_STORE
from proxy.endpoints.userinfo import dpop_bound, header_token, invalid_token, no_token
from proxy.model.records import AccessToken, Grant
from proxy.model.tokens import new_value
from proxy.oauth import dpop
from proxy.oauth.errors import OAuthError
from proxy.oauth.grants import active_access_token
from proxy.oauth.services import SERVICES, Services
from proxy.observability.logs import bind_context

PATH = "/gateway/check"
# what aiohttp routes here: the path itself, and below it the original request's path
# that Envoy's ext_authz HTTP service appends to its path_prefix
ROUTE = PATH + "{tail:(?:/.*)?}"
# every method: nginx's auth_request subrequest and Envoy's check keep the method of the
# request they check
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
JWT_HEADER = "Gateway-JWT"
# RFC 9068 §2.1: "Resource servers receiving a JWT access token MUST validate the typ"
JWT_TYPE = "at+jwt"
# RFC 9110 §5.6.2 token (a method); a host, and an origin-form target (§3.2, RFC 9112)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]+")
_TARGET = re.compile(r"/[\x21-\x7e]*")
_SCHEMES = ("http", "https")


def _original(request: web.Request) -> tuple[str, str]:
    """The method and URI (without its query) of the request the gateway checks, as the
    authenticated gateway states them: a DPoP proof must name these (RFC 9449 §4.3
    checks 8 and 9). ``X-Forwarded-Method`` (else this request's method),
    ``X-Forwarded-Proto`` (else https), ``X-Forwarded-Host`` (else ``Host``) and
    ``X-Forwarded-Uri`` (else the path below /gateway/check)."""
    headers = request.headers
    method = headers.get("X-Forwarded-Method") or request.method
    scheme = (headers.get("X-Forwarded-Proto") or "https").lower()
    host = headers.get("X-Forwarded-Host") or headers.get("Host") or ""
    target = headers.get("X-Forwarded-Uri")
    if target is None:
        target = request.raw_path[len(PATH):].partition("?")[0] or "/"
    if not (_TOKEN.fullmatch(method) and scheme in _SCHEMES and _HOST.fullmatch(host)
            and _TARGET.fullmatch(target)):  # fmt: skip
        raise OAuthError("invalid_request", "the gateway's X-Forwarded-Method, -Proto, -Host "
                         "and -Uri headers do not name the request it checks")
    return method, f"{scheme}://{host}{target.partition('?')[0]}"


async def _checked(svc: Services, request: web.Request, server: ResourceServer
                   ) -> tuple[AccessToken, Grant, str]:  # fmt: skip
    """The caller's token, its grant and its scheme, or the challenge to answer."""
    try:
        presented = header_token(request)
    except OAuthError as exc:
        # RFC 6750 §3.1: a client that "attempted using an unsupported authentication
        # method" gets the challenge without an error code. At /userinfo a malformed
        # header is a 400; a gateway would make that its own error, not its caller's
        raise no_token() from exc
    if presented is None:
        raise no_token()
    scheme, token = presented
    if scheme == "dpop":
        at, grant = await dpop_bound(svc, request, token, path=PATH,
                                     target=_original(request))  # fmt: skip
    else:
        active = await active_access_token(svc, token)
        if active is None:
            raise invalid_token()
        at, grant = active
        if at.jkt is not None:
            # RFC 9449 §7.2: "such a protected resource MUST reject a DPoP-bound access
            # token received as a bearer token per [RFC6750]"
            raise invalid_token("this access token is DPoP-bound: use the DPoP scheme")
    # RFC 8707 §2: a token restricted to another resource is not this server's (as at
    # /introspect); RFC 6750 §3.1: "invalid for other reasons"
    if at.aud != server.audience:
        description = "this access token is for another resource (RFC 8707)"
        if scheme == "dpop":
            raise dpop.error(svc, "invalid_token", description, resource=True,
                             algs=dpop.algs_for(svc.clients.get(grant.client_id)))
        raise invalid_token(description)
    return at, grant, scheme


def _jwt(svc: Services, claims: dict[str, Any], server: ResourceServer, at: AccessToken
         ) -> tuple[str, int]:  # fmt: skip
    """The signed JWT and its exp: the introspection claims in RFC 9068's shape, for the
    resource server (``aud``), never outliving the access token."""
    now = svc.now()
    exp = min(at.exp, now + svc.config.lifetimes.gateway_jwt)
    body = {name: value for name, value in claims.items()
            if name not in ("active", "token_type", "aud", "iat", "exp")}
    # RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti (and scope, cnf, acr ...)
    body.update(iss=svc.issuer, aud=server.client_id, iat=now, exp=exp,
                jti=new_value())
    return svc.signer.sign(body, typ=JWT_TYPE), exp


async def gateway_check(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    server = svc.clients.authenticate_gateway(request)
    bind_context(client_id=server.client_id)
    at, grant, scheme = await _checked(svc, request, server)
    claims = introspection_claims(svc, at, grant, server)
    if not claims.get("active"):
        # its bank tokens are sealed with a key no longer configured (introspection
        # answers active false): of no use to a server that needs the bank's token
        raise invalid_token()
    jws, exp = _jwt(svc, claims, server, at)
    headers = {JWT_HEADER: jws, "Vary": "Authorization, DPoP"}
    # whole seconds, and a cache counts an entry fresh through its last second (nginx):
    # one second short of the end, so no cached answer is served once the token expired
    seconds = min(svc.config.lifetimes.gateway_cache, exp - svc.now() - 1)
    if scheme == "dpop" or seconds <= 0:
        # a DPoP proof is good for one request (its jti, htm, htu): the check of one is
        # never reused
        headers.update(NO_STORE)
    else:
        # RFC 9111 §3.5: a shared cache reuses an answer to a request with an
        # Authorization header only under a directive such as s-maxage. The JWT in it
        # outlives the cache entry (lifetimes.gateway_cache < gateway_jwt) and neither
        # outlives the access token
        headers["Cache-Control"] = f"max-age={seconds}, s-maxage={seconds}"
    if scheme == "dpop":
        # RFC 9449 §9: resource servers "provide the nonce using the DPoP-Nonce header"
        headers["DPoP-Nonce"] = dpop.new_nonce(svc)
    return web.Response(status=200, headers=headers)
