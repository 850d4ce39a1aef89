"""The sandbox bank as an aiohttp application: discovery, JWKS, and the routes."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from federation.sandbox import bankid, ciba, ciba_app, native
from federation.sandbox.appkeys import BANK
from federation.sandbox.authorize import authorize, decide, par
from federation.sandbox.bank import ACR_VALUES, SandboxBank
from federation.sandbox.broker import SandboxBroker
from federation.sandbox.broker_app import add_broker_routes
from federation.sandbox.client_auth import ASSERTION_ALGS
from federation.sandbox.models import RecordedRequest
from federation.sandbox.pages import favicon, html_errors
from federation.sandbox.resources import introspect, userinfo
from federation.sandbox.token_endpoint import token

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
ID_TOKEN_CLAIMS = ("sub", "iss", "aud", "azp", "exp", "iat", "nonce", "acr", "amr", "auth_time")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# RFC 6749 §4.4 (the proxy's API token at BankID) beside the user's grants
GRANT_TYPES = ["authorization_code", "refresh_token", ciba.CIBA_GRANT_TYPE, "client_credentials"]


@web.middleware
async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Keep every request as received, before any handler judges it."""
    form: dict[str, str] = {}
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        form = {k: str(v) for k, v in (await request.post()).items()}
    request.app[BANK].requests.append(
        RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            form=form,
            headers=dict(request.headers),
        )
    )
    return await handler(request)


async def metadata(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    iss = bank.issuer
    body = {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/jwks",
        "introspection_endpoint": f"{iss}/introspect",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "id_token_signing_alg_values_supported": [bank.alg],
        "subject_types_supported": ["public"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": [*ID_TOKEN_CLAIMS, *bank.user.claims],
        "acr_values_supported": list(ACR_VALUES),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "authorization_response_iss_parameter_supported": bank.iss_parameter,
        # CIBA Core §4
        "backchannel_authentication_endpoint": ciba.endpoint(bank),
        "backchannel_token_delivery_modes_supported": ["poll"],
        "backchannel_user_code_parameter_supported": False,
        # BankID with biometrics: "You can find the endpoint in the BankID with
        # biometrics' OIDC-configuration under the app_authentication_endpoint key."
        "app_authentication_endpoint": bankid.app_authorize_endpoint(bank),
    }
    if bank.rar_types:  # RFC 9396 §10
        body["authorization_details_types_supported"] = list(bank.rar_types)
    if bank.par_endpoint:  # RFC 9126 §5
        body["pushed_authorization_request_endpoint"] = f"{iss}/par"
    if bank.native_endpoint:  # draft-zehavi-oauth-app2app-browserless-07 §3.2
        body["native_authorization_endpoint"] = native.endpoint(bank)
    return web.json_response(body)


async def jwks(request: web.Request) -> web.Response:
    return web.json_response(request.app[BANK].jwks())


def create_app(bank: SandboxBank, broker: SandboxBroker | None = None) -> web.Application:
    """The bank's routes; with ``broker``, the session broker's beside them (the demo)."""
    app = web.Application(middlewares=[html_errors, record])
    app[BANK] = bank
    if broker is not None:
        add_broker_routes(app, broker)
    app.router.add_get("/.well-known/openid-configuration", metadata)
    app.router.add_get("/jwks", jwks)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/authorize", authorize)
    app.router.add_post("/authorize/decide", decide)
    app.router.add_post("/token", token)
    app.router.add_route("GET", "/userinfo", userinfo)
    app.router.add_route("POST", "/userinfo", userinfo)
    app.router.add_post("/introspect", introspect)
    app.router.add_post("/bc-authorize", ciba.bc_authorize)
    app.router.add_post("/ciba/decide", ciba.decide)
    app.router.add_post(bankid.PERMISSIONS_PATH, bankid.permissions)
    app.router.add_post(bankid.APP_AUTHORIZE_PATH, bankid.app_authorize)
    app.router.add_post("/par", par)
    app.router.add_get("/native/authorize", native.native_authorize)
    # the bank app: browser-less App2App pages first, then CIBA's (/app2app/{handle})
    app.router.add_get("/app2app/authorize/{handle}", native.app_page)
    app.router.add_post("/app2app/authorize/{handle}/decide", native.app_decide)
    app.router.add_get("/app2app/{handle}", ciba_app.app_page)
    app.router.add_post("/app2app/{handle}/decide", ciba_app.app_decide)
    app.router.add_get("/app2app/{handle}/done", ciba_app.app_done)
    return app
