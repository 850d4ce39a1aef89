"""``create_app(config)`` builds everything; resources live in ``cleanup_ctx``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from federation.registry import build_adapters
from proxy.config.settings import Config
from proxy.endpoints import authorize, discovery, gateway, health, resume
from proxy.endpoints.callback import callback
from proxy.endpoints.gateway import gateway_check
from proxy.endpoints.introspect import introspect
from proxy.endpoints.metrics import metrics_endpoint
from proxy.endpoints.par import par
from proxy.endpoints.revoke import revoke_endpoint
from proxy.endpoints.token import challenge, token
from proxy.endpoints.userinfo import userinfo
from proxy.oauth.clients import ClientRegistry
from proxy.oauth.jose import Cipher, Signer
from proxy.oauth.services import SERVICES, Services, State
from proxy.observability.logs import request_done, request_started
from proxy.observability.tracing import TRACING, Tracing
from proxy.store import Store, open_store
from proxy.store.redis import RedisStore
from proxy.web.errors import Handler, error_response
from proxy.web.forms import read_body
from proxy.web.ratelimit import enforce_rate_limits
from proxy.web.responses import default_headers

# OAuth requests are small; refuse large bodies early (answered as a JSON 413). The
# server that runs the app (timeouts, aiohttp's own refusals) is proxy.web.server.
MAX_BODY = 64 * 1024


def create_app(config: Config, *, tracing: Tracing | None = None) -> web.Application:
    """``tracing``: traces to this instead of what the ``OTEL_*`` variables say (tests)."""
    app = web.Application(
        middlewares=[request_middleware],
        client_max_size=MAX_BODY,
    )

    if tracing is None:
        tracing = Tracing.from_environment()
    if tracing is not None:
        app[TRACING] = tracing

    async def resources(app: web.Application) -> AsyncIterator[None]:
        store = open_store(config.store)
        traces = []
        if tracing is not None:
            # traces on (docs/observability.md): spans of bank calls and Redis batches
            traces.append(tracing.client_trace_config(lambda bank_id: _propagates(app, bank_id)))
            if isinstance(store, RedisStore):
                store.trace_batches(tracing.batch_tracer())
        http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30),
            headers={"User-Agent": "app2app-proxy"},
            trace_configs=traces or None,
        )
        app[SERVICES] = Services(build_state(config, store=store, http=http),
                                 store=store, http=http)
        try:
            yield
        finally:
            await http.close()
            await store.close()
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)  # exports what is left

    app.cleanup_ctx.append(resources)
    add_routes(app)
    return app


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one middleware (each layer of middleware costs every request), in order:

    1. pins the request to the state current when it arrived (:mod:`proxy.oauth.services`);
    2. names it in the logs (:func:`proxy.observability.logs.request_started`);
    3. reads the body within the body timeout (:func:`proxy.web.forms.read_body`),
       applies the rate limits (:mod:`proxy.web.ratelimit`) and runs the handler, any
       exception of these turned into its answer by the one error path
       (:func:`proxy.web.errors.error_response`); an answer given before the body was
       read to its end (408, 413) closes the connection;
    4. gives every answer the default headers
       (:func:`proxy.web.responses.default_headers`);
    5. writes the access line and the HTTP metrics (:func:`proxy.observability.logs.request_done`).
    """
    svc = request.app[SERVICES]
    pin = svc.pin()
    request_started()
    start = time.perf_counter()
    status = 500
    # traces on: the request's server span (docs/observability.md); off, one dict read
    tracing = request.app.get(TRACING)
    span = tracing.start_request(request) if tracing is not None else None
    try:
        try:
            await read_body(request)
            if svc.config.rate_limits is not None:
                await enforce_rate_limits(request, svc)
            response = await handler(request)
        except Exception as exc:
            response = error_response(request, exc)
            if not request.content.is_eof():
                # the rest of the body is unread: the connection cannot carry another
                # request (RFC 9110 §15.5.9: "If the current connection is not usable
                # (e.g., as it would be in HTTP/1.1 because request delimitation is
                # lost), a new connection will be used."); say so, aiohttp then drops
                # what still arrives for LINGERING_TIME and closes
                response.force_close()
        status = response.status
        default_headers(response)
        return response
    except web.HTTPException as exc:  # a redirect a handler raised, sent by aiohttp
        status = exc.status
        default_headers(exc)
        raise
    finally:
        if span is not None:
            span.end(status)
        request_done(request, status, time.perf_counter() - start)
        svc.unpin(pin)


def _propagates(app: web.Application, bank_id: str) -> bool:
    """Whether a call to ``bank_id`` carries W3C traceparent: unless the bank's config
    says ``trace_context: false``."""
    bank = app[SERVICES].bank(bank_id)
    return bank is None or bank.trace_context


def build_state(config: Config, *, store: Store, http: aiohttp.ClientSession) -> State:
    """Everything built from the config, at start-up and at each reload (proxy.ops.reload).
    Raises ValueError for what the config check cannot see (it has seen everything else)."""
    return State(
        config=config,
        signer=Signer(config.keys.signing, lifetimes=config.lifetimes),
        cipher=Cipher(*config.keys.token_keys),
        clients=ClientRegistry(config.clients, config.resource_servers,
                               issuer=config.issuer, store=store),
        adapters=build_adapters(config.banks, http),
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/.well-known/openid-configuration", discovery.openid_configuration)
    app.router.add_get("/.well-known/apple-app-site-association",
                       discovery.apple_app_site_association)
    app.router.add_get("/.well-known/assetlinks.json", discovery.assetlinks)
    app.router.add_get("/jwks", discovery.jwks)
    app.router.add_get("/favicon.ico", discovery.favicon)
    app.router.add_route("GET", "/authorize", authorize.authorize)
    app.router.add_route("POST", "/authorize", authorize.authorize)
    # no HEAD: a pick starts a login, once
    app.router.add_get("/authorize/pick/{pick_id}/{bank_id}", authorize.pick, allow_head=False)
    app.router.add_get("/authorize/pick/{pick_id}", authorize.picker)
    app.router.add_get("/authorize/continue/{handle}", authorize.interstitial)
    app.router.add_get("/authorize/status/{handle}", resume.status)
    app.router.add_route("GET", "/native/authorize", authorize.native_authorize)
    app.router.add_route("POST", "/native/authorize", authorize.native_authorize)
    app.router.add_post("/native/authorize/pick", authorize.native_pick)
    app.router.add_post("/par", par)
    app.router.add_get("/resume/{handle}", resume.resume)
    app.router.add_get("/callback/{bank_id}", callback)
    app.router.add_post("/token", token)
    app.router.add_post("/challenge", challenge)
    app.router.add_post("/introspect", introspect)
    app.router.add_post("/revoke", revoke_endpoint)
    app.router.add_route("GET", "/userinfo", userinfo)
    app.router.add_route("POST", "/userinfo", userinfo)
    for method in gateway.METHODS:  # a gateway's check keeps the checked request's method
        app.router.add_route(method, gateway.ROUTE, gateway_check)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", metrics_endpoint)
