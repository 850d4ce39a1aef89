"""The sandbox broker's "itsme app" and how the broker is served.

The app is where ``authorizationRequestUrl`` leads: it answers at once per the
broker's ``decision`` knob, or shows Approve / Deny (cancel); then it opens the
merchant's redirect URL with ``code`` and ``state``, or ``error``. The broker's
routes go into an app of their own (:func:`serve_broker`) or beside the sandbox
bank's (the demo serves both on one port).
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from federation.sandbox import broker_api
from federation.sandbox.appkeys import BROKER
from federation.sandbox.authorize import redirect
from federation.sandbox.broker import (
    API_PATH,
    APP_PATH,
    TOKEN_PATH,
    TOKEN_REQUEST_PATH,
    BrokerSession,
    SandboxBroker,
)
from federation.sandbox.pages import decision_form, error_page, favicon, html_errors, page


def _open(broker: SandboxBroker, handle: str) -> BrokerSession | web.Response:
    session = broker.by_handle(handle)
    if session is None:
        return error_page("There is no such itsme request.", 404)
    if session.expired():
        return error_page("This itsme request has expired.", 410)
    if session.code is not None or session.status != "CREATED" or session.validated:
        return error_page("This itsme request was already answered.", 409)
    return session


async def app_page(request: web.Request) -> web.Response:
    broker = request.app[BROKER]
    session = _open(broker, request.match_info["handle"])
    if isinstance(session, web.Response):
        return session
    if broker.decision is not None:
        return redirect(broker.decide(session, broker.decision))
    name = html.escape(str(broker.subject.get("name", "you")))
    body = (f"<p>{name}, confirm your identity with itsme?</p>"
            + decision_form(f"{broker.base}{APP_PATH}/{request.match_info['handle']}/decide"))
    return page("Sandbox itsme app", body, brand="itsme")


async def app_decide(request: web.Request) -> web.Response:
    broker = request.app[BROKER]
    decision = str((await request.post()).get("decision", ""))
    if decision not in ("approve", "deny"):
        return error_page("decision must be approve or deny", 400)
    session = _open(broker, request.match_info["handle"])
    if isinstance(session, web.Response):
        return session
    return redirect(broker.decide(session, "approve" if decision == "approve" else "abort"))


def add_broker_routes(app: web.Application, broker: SandboxBroker) -> None:
    app[BROKER] = broker
    app.router.add_post(TOKEN_PATH, broker_api.api_token)
    app.router.add_post(f"{API_PATH}/sessions", broker_api.create_session)
    app.router.add_get(f"{API_PATH}/sessions/{{session_id}}", broker_api.read_session)
    app.router.add_post(TOKEN_REQUEST_PATH, broker_api.token_request)
    app.router.add_get(f"{APP_PATH}/{{handle}}", app_page)
    app.router.add_post(f"{APP_PATH}/{{handle}}/decide", app_decide)


def create_broker_app(broker: SandboxBroker) -> web.Application:
    app = web.Application(middlewares=[html_errors])
    add_broker_routes(app, broker)
    app.router.add_get("/favicon.ico", favicon)
    return app


@asynccontextmanager
async def serve_broker(
    broker: SandboxBroker, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[SandboxBroker]:
    """Serve ``broker`` on ``host:port`` (0: a free port) until the block ends; an empty
    ``broker.base`` becomes ``http://{host}:{bound port}``."""
    runner = web.AppRunner(create_broker_app(broker), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        if not broker.base:
            netloc = f"[{host}]" if ":" in host else host
            broker.base = f"http://{netloc}:{int(runner.addresses[0][1])}"
        yield broker
    finally:
        await runner.cleanup()
