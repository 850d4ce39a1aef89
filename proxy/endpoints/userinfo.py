"""GET/POST /userinfo: the claims of the access token's subject (OIDC Core §5.3).

Bearer tokens (RFC 6750) and DPoP-bound tokens (RFC 9449 §7) are both accepted, each
only in its own scheme."""

from __future__ import annotations

from aiohttp import web

from proxy.endpoints.token import NO_STORE
from proxy.model.records import AccessToken, Grant
from proxy.oauth import dpop
from proxy.oauth.claims import released
from proxy.oauth.errors import OAuthError
from proxy.oauth.grants import active_access_token
from proxy.oauth.services import SERVICES, Services
from proxy.web.forms import FORM, read_params
from proxy.web.responses import json_response

PATH = "/userinfo"
REALM = 'Bearer realm="app2app-proxy"'
# RFC 9449 §7.2: a resource supporting both schemes may challenge with both; "An algs
# parameter SHOULD be included to signal to the client the JWS algorithms that are
# acceptable for the DPoP proof JWT."
DPOP_CHALLENGE = f'DPoP algs="{" ".join(dpop.ALGS)}"'
CHALLENGES = f"{REALM}, {DPOP_CHALLENGE}"


def header_token(request: web.Request) -> tuple[str, str] | None:
    """The scheme ("bearer" or "dpop") and the token of the ``Authorization`` header, or
    None without one. RFC 6750 §2.1; RFC 9449 §7.1: a DPoP-bound token is sent "using the
    Authorization request header field ... with an authentication scheme of DPoP"."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme not in ("bearer", "dpop") or not value.strip():
        raise OAuthError("invalid_request", "use Authorization: Bearer or DPoP <token>",
                         status=400, headers={"WWW-Authenticate": CHALLENGES})
    return scheme, value.strip()


async def _access_token(request: web.Request) -> tuple[str, str]:
    """The scheme ("bearer" or "dpop") and the token. RFC 6750 §2.1 header, or §2.2 form
    body on POST; "Clients MUST NOT use more than one method to transmit the token in
    each request." """
    presented = header_token(request)
    scheme, from_header = presented if presented is not None else ("bearer", None)
    from_body = None
    if request.method == "POST" and request.content_type == FORM:
        try:
            from_body = (await read_params(request)).get("access_token")
        except OAuthError as err:
            # RFC 6750 §3: the resource server answers with its challenge, here too
            err.headers.setdefault("WWW-Authenticate", CHALLENGES)
            raise
    if from_header and from_body:
        raise OAuthError("invalid_request", "send the access token once",
                         headers={"WWW-Authenticate": CHALLENGES})
    token = from_header or from_body
    if token is None:
        raise no_token()
    return scheme, token


def no_token() -> OAuthError:
    """RFC 6750 §3.1: "If the request lacks any authentication information (e.g., the
    client was unaware that authentication is necessary ...), the resource server SHOULD
    NOT include an error code or other error information" in the challenge."""
    return OAuthError("invalid_token", "an access token is required", status=401,
                      headers={"WWW-Authenticate": CHALLENGES})


def invalid_token(description: str = "the access token is invalid or expired") -> OAuthError:
    return OAuthError("invalid_token", description, status=401,
                      headers={"WWW-Authenticate": REALM + ', error="invalid_token", '
                               + DPOP_CHALLENGE})



async def dpop_bound(svc: Services, request: web.Request, token: str, *, path: str = PATH,
                     target: tuple[str, str] | None = None) -> tuple[AccessToken, Grant]:
    """RFC 9449 §7.1: "a resource server MUST check that a DPoP proof was also received in
    the DPoP header field of the HTTP request, check the DPoP proof according to the
    rules in Section 4.3, and check that the public key of the DPoP proof matches the
    public key to which the access token is bound". ``target``: the method and URL the
    proof must name, when they are not this request's (:func:`proxy.oauth.dpop.verify`)."""
    active = await active_access_token(svc, token)
    algs = dpop.algs_for(svc.clients.get(active[1].client_id) if active else None)
    if active is None:
        raise dpop.error(svc, "invalid_token", "the access token is invalid or expired",
                         resource=True, algs=algs)
    jkt = await dpop.verify(svc, request, path=path, algs=algs, access_token=token,
                            resource=True, target=target)
    if jkt is None:
        raise dpop.error(svc, "invalid_dpop_proof", "a DPoP proof is required",
                         resource=True, algs=algs)
    if active[0].jkt is None or active[0].jkt != jkt:
        raise dpop.error(svc, "invalid_token", "Invalid DPoP key binding",
                         resource=True, algs=algs)
    return active


def serves(svc: Services, at: AccessToken) -> bool:
    """Whether the userinfo endpoint is in the token's audience. RFC 8707 §2: the
    authorization server "SHOULD audience-restrict issued access tokens to the
    resource(s) indicated by the resource parameter"; a token restricted to an API is
    that API's alone (introspection likewise shows it active to that API only). A token
    issued without a resource (aud None) is for this server, whose userinfo endpoint
    serves it; so does one whose audience names the userinfo endpoint itself. RFC 6750
    §3.1: any other is "invalid for other reasons": invalid_token."""
    return at.aud is None or at.aud in (svc.issuer, svc.issuer + PATH)


async def userinfo(request: web.Request) -> web.StreamResponse:
    svc = request.app[SERVICES]
    scheme, token = await _access_token(request)
    headers = dict(NO_STORE)
    if scheme == "dpop":
        active: tuple[AccessToken, Grant] | None = await dpop_bound(svc, request, token)
        # RFC 9449 §9: resource servers "provide the nonce using the DPoP-Nonce header in
        # the same way that authorization servers do as described in Sections 8 and 8.2"
        headers["DPoP-Nonce"] = dpop.new_nonce(svc)
    else:
        active = await active_access_token(svc, token)
        if active is not None and active[0].jkt is not None:
            # RFC 9449 §7.2: "such a protected resource MUST reject a DPoP-bound access
            # token received as a bearer token per [RFC6750]"
            raise invalid_token("this access token is DPoP-bound: use the DPoP scheme")
    if active is None:
        raise invalid_token()
    at, grant = active
    if not serves(svc, at):
        description = "this access token is for another resource (RFC 8707)"
        if scheme == "dpop":
            raise dpop.error(svc, "invalid_token", description, resource=True,
                             algs=dpop.algs_for(svc.clients.get(grant.client_id)))
        raise invalid_token(description)
    scope = at.scope or grant.scope
    if "openid" not in scope:
        challenge = "DPoP" if scheme == "dpop" else REALM + ","
        raise OAuthError("insufficient_scope", "the token was not granted the openid scope",
                         status=403, headers={
                             "WWW-Authenticate": f'{challenge} error="insufficient_scope"'})
    # OIDC Core §5.3.2: "The sub (subject) Claim MUST always be returned in the UserInfo
    # Response"; the others as the token's scope releases them (§5.4)
    return json_response({**released(grant.claims, scope), "sub": grant.sub}, headers=headers)
