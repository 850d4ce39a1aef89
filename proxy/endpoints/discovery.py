"""Discovery (OIDC Discovery §3, RFC 8414 §2), /jwks, the app association files, and
/favicon.ico."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from proxy.oauth.client_assertion import ALGS as ASSERTION_ALGS
from proxy.oauth.dpop import ALGS as DPOP_ALGS
from proxy.oauth.own_apps import APP2APP_GRANT, TOKEN_EXCHANGE
from proxy.oauth.services import SERVICES, Services
from proxy.web.responses import json_response

CACHE = {"Cache-Control": "public, max-age=300"}
# what ClientRegistry.authenticate takes (/token, /revoke, /par): RFC 8414 §2
# token_endpoint_auth_methods_supported, "a list of client authentication methods supported
# by this token endpoint"; client_secret_jwt (an HMAC assertion) and mTLS are not
CLIENT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
# what ClientRegistry.authenticate_resource_server takes (/introspect): HTTP Basic or an
# assertion; never none, never the secret in the body
RESOURCE_SERVER_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]


def metadata(svc: Services) -> dict[str, Any]:
    issuer = svc.issuer
    banks = svc.config.banks
    scopes = sorted({s for c in svc.config.clients for s in c.scopes})
    claims = sorted({"sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr",
                     "authentication_level"} | {m for b in banks for m in b.claims})
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        # draft-zehavi-oauth-app2app-browserless §3.2
        "native_authorization_endpoint": f"{issuer}/native/authorize",
        # RFC 9126 §5
        "pushed_authorization_request_endpoint": f"{issuer}/par",
        # RFC 9126 §5: "whether the authorization server accepts authorization request
        # data only via PAR": so it does when every client is a fapi2 one
        "require_pushed_authorization_requests": bool(svc.config.clients) and all(
            c.profile == "fapi2" for c in svc.config.clients),
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "introspection_endpoint": f"{issuer}/introspect",
        "revocation_endpoint": f"{issuer}/revoke",
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types(svc),
        # POST /challenge: single-use challenges for the device-key JWTs of App2App
        # approvals between the merchant's own apps (docs/app2app.md)
        "app2app_challenge_endpoint": f"{issuer}/challenge",
        # OpenID Connect Native SSO for Mobile Apps 1.0: the device_sso scope (in
        # scopes_supported when a client may ask for it) and the token exchange
        "native_sso_supported": svc.config.native_sso,
        # OIDC Core §8: "public: This provides the same sub (subject) value to all
        # Clients"; "pairwise: This provides a different sub value to each Client", and
        # §8.1: the pairwise value is calculated per sector. subject.type pairwise gives
        # one sub per user per sector (proxy.oauth.subject); bank passes the bank's sub
        # to every client.
        "subject_types_supported": [
            "pairwise" if svc.config.subject.type == "pairwise" else "public"],
        "id_token_signing_alg_values_supported": svc.signer.algs,
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "introspection_endpoint_auth_methods_supported": RESOURCE_SERVER_AUTH_METHODS,
        # RFC 8414 §2: "MUST be present if either of these authentication methods
        # [private_key_jwt, client_secret_jwt] are specified"
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "introspection_signing_alg_values_supported": svc.signer.algs,
        "code_challenge_methods_supported": ["S256"],
        # RFC 9449 §5.1: "the JWS alg values ... supported by the authorization server for
        # DPoP proof JWTs" (a fapi2 client may not use RS256)
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),
        "claims_supported": claims,
        "acr_values_supported": [acr for b in banks for acr in b.acr_values],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        # request objects by reference (OIDC Core §6.2) are not fetched; RFC 9126 §5: "A
        # request_uri value obtained from the PAR endpoint is usable at the authorization
        # endpoint regardless of other authorization server metadata such as
        # request_uri_parameter_supported"
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        **_authorization_details(svc),
    }


def grant_types(svc: Services) -> list[str]:
    """What /token takes: an approval's and the Native SSO exchange only where some client
    may use them (they answer unsupported_grant_type otherwise)."""
    types = ["authorization_code", "refresh_token"]
    if svc.config.approvals:
        types.append(APP2APP_GRANT)
    if svc.config.native_sso:
        types.append(TOKEN_EXCHANGE)
    return types


def _authorization_details(svc: Services) -> dict[str, Any]:
    """RFC 9396 §10: "the supported list of authorization details types is included in
    the AS metadata response [RFC8414] using the metadata parameter
    authorization_details_types_supported, which is a JSON array"."""
    types = [t.name for t in svc.config.authorization_details_types]
    return {"authorization_details_types_supported": types} if types else {}


async def openid_configuration(request: web.Request) -> web.StreamResponse:
    return json_response(metadata(request.app[SERVICES]), headers=CACHE)


async def jwks(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[SERVICES].signer.jwks, headers=CACHE)


async def apple_app_site_association(request: web.Request) -> web.StreamResponse:
    apps = request.app[SERVICES].config.apps
    details = [{"appIDs": [a.app_id], "components": [{"/": p} for p in a.paths]}
               for a in apps.ios]
    return json_response({"applinks": {"details": details}}, headers=CACHE)


async def assetlinks(request: web.Request) -> web.StreamResponse:
    apps = request.app[SERVICES].config.apps
    statements = [
        {
            "relation": ["delegate_permission/common.handle_all_urls"],
            "target": {
                "namespace": "android_app",
                "package_name": a.package,
                "sha256_cert_fingerprints": list(a.sha256_cert_fingerprints),
            },
        }
        for a in apps.android
    ]
    return json_response(statements, headers=CACHE)


async def favicon(request: web.Request) -> web.StreamResponse:
    """Browsers ask every origin for /favicon.ico; a 404 would be an error in the console
    of each page the proxy shows. No icon: 204, cached for a day."""
    return web.Response(status=204, headers={"Cache-Control": "public, max-age=86400"})
