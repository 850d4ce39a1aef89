"""``app2app-proxy demo``: the proxy, the sandbox bank (with the sandbox session broker
beside it, for itsme) and a merchant app on localhost, with the embedded store.
Nothing else to install.

The merchant app is a playground for a merchant developer (proxy.ops.playground): it
plays a mobile app and its backend, and shows every hop of a login, the tokens and
what each demo API sees.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from federation.sandbox import SandboxBank, SandboxBroker, SandboxClient, serve_sandbox
from proxy.app import create_app
from proxy.config import load_or_report
from proxy.config.settings import Config
from proxy.observability.logs import configure_logging
from proxy.ops import playground
from proxy.ops.keys import generate_signing_key
from proxy.web.server import ProxyRunner

# Fixed demo values, so a token can be introspected from a shell with a secret printed
# once and for all, and the user's pairwise sub stays the same across restarts. Each is
# used only when its variable is unset; never outside the demo (the banner says so).
DEMO_SECRETS = {
    "TOKEN_ENCRYPTION_KEY": base64.urlsafe_b64encode(
        hashlib.sha256(b"app2app-proxy demo: token encryption").digest()).rstrip(b"=").decode(),
    "SUBJECT_SALT": "demo-subject-salt",
    "SANDBOX_BANK_SECRET": "demo-sandbox-bank-secret",
    "DEMO_API_SECRET": "demo-api-secret-for-the-demo-only-0001",
    "DEMO_API_BASIC_SECRET": "demo-api-basic-secret-for-the-demo-only",
    "DEMO_APP_SECRET": "demo-app-secret-for-the-demo-only-0001",
}
DEMO_ENV = tuple(DEMO_SECRETS)
DEFAULT_PORTS = {"proxy": 8080, "bank": 9090, "app": 8081}


def _prepare(config_path: Path) -> None:
    """Generate what a fresh clone lacks (a signing key file); the fixed demo values for
    the secrets the environment does not set."""
    key_file = config_path.parent / "keys" / "signing.jwk"
    if not key_file.exists():
        key_file.parent.mkdir(exist_ok=True)
        key_file.write_text(generate_signing_key("ES256").export(private_key=True))
        key_file.chmod(0o600)
        print(f"demo: generated a signing key in {key_file}")
    for name, value in DEMO_SECRETS.items():
        os.environ.setdefault(name, value)


def use_ports(proxy: int | None = None, bank: int | None = None, app: int | None = None) -> None:
    """``demo --proxy-port/--bank-port/--app-port``: the environment config.yaml reads."""
    if proxy is not None:
        os.environ["PORT"] = str(proxy)
        os.environ["ISSUER"] = f"http://127.0.0.1:{proxy}"
    if bank is not None:
        os.environ["SANDBOX_ISSUER"] = f"http://127.0.0.1:{bank}"
    if app is not None:
        os.environ["DEMO_APP_REDIRECT"] = f"http://127.0.0.1:{app}/callback"
        os.environ["DEMO_APP_HOME"] = f"http://127.0.0.1:{app}/"
        os.environ["DEMO_SHOP_REDIRECT"] = f"http://127.0.0.1:{app}/shop/callback"


class PortInUse(Exception):
    """One of the demo's servers cannot listen: something else has its port."""

    def __init__(self, server: str, host: str, port: int, flag: str) -> None:
        super().__init__(
            f"demo: {host}:{port} ({server}) is already in use: stop what listens there, or "
            f"give the demo another port ({flag} N; app2app-proxy demo --help)")


def _sandbox_for(config: Config) -> SandboxBank:
    """The sandbox bank every bank of the first bank's issuer logs in at: one client per
    bank client_id, with the callback of each bank that uses it."""
    issuer = config.banks[0].issuer
    banks = [b for b in config.banks if b.issuer == issuer]
    clients: dict[str, SandboxClient] = {}
    for b in banks:
        client = clients.setdefault(b.client_id, SandboxClient(
            client_id=b.client_id, redirect_uris=[], auth_method=b.client_auth,
            secret=b.client_secret,
        ))  # fmt: skip
        client.redirect_uris.append(f"{config.issuer}/callback/{b.id}")
    sandbox = SandboxBank(issuer, clients.values(), auto_approve=False)
    # a decoupled bank shows its "app" page (the deep link) in the demo
    sandbox.ciba_deep_link = any(b.kind == "ciba" for b in banks)
    # a payment that falls back from BankID to the redirect login goes along
    sandbox.rar_types = tuple(t.name for t in config.authorization_details_types)
    return sandbox


def _broker_for(config: Config) -> SandboxBroker | None:
    """The sandbox session broker, beside the sandbox bank, for the session banks whose
    API is there: one client per client_id, every such bank's callback allowed. The
    itsme app shows Approve / Deny."""
    origin = config.banks[0].issuer.rstrip("/")
    banks = [b for b in config.banks
             if b.session is not None and b.session.api.startswith(origin + "/")]
    if not banks:
        return None
    clients = {b.client_id: SandboxClient(b.client_id, [], b.client_auth,
                                          secret=b.client_secret) for b in banks}
    broker = SandboxBroker(origin, clients.values(),
                           redirect_urls=[f"{config.issuer}/callback/{b.id}" for b in banks])
    broker.decision = None
    return broker


def merchant_app(config: Config, bank: SandboxBank | None = None) -> web.Application:
    """The demo merchant app: the playground (proxy.ops.playground)."""
    return playground.merchant_app(config, playground.Playground(config, bank))


@asynccontextmanager
async def demo_servers(config: Config) -> AsyncIterator[str]:
    """Serve the sandbox bank, the proxy and the merchant app at the addresses the config
    names; yields the URL that starts a login. PortInUse if a port is taken."""
    bank_url = urlsplit(config.banks[0].issuer)
    app_url = urlsplit(config.clients[0].redirect_uris[0])
    bank = _sandbox_for(config)
    play = playground.Playground(config, bank)
    proxy = create_app(config)
    # the playground shows the browser's visits to the proxy among a login's hops
    proxy.middlewares.insert(0, play.recorder.middleware)
    async with AsyncExitStack() as stack:
        host, port = bank_url.hostname or "127.0.0.1", bank_url.port or 80
        try:
            await stack.enter_async_context(
                serve_sandbox(bank, host, port, broker=_broker_for(config)))
        except OSError as exc:
            raise PortInUse("the sandbox bank", host, port, "--bank-port") from exc
        for app, host, port, (server, flag) in (
            (proxy, config.listen.host, config.listen.port, ("the proxy", "--proxy-port")),
            (playground.merchant_app(config, play), app_url.hostname or "127.0.0.1",
             app_url.port or 80, ("the demo app", "--app-port")),
        ):
            runner = ProxyRunner(app)  # the timeouts of serve's defaults
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                raise PortInUse(server, host, port, flag) from exc
        yield f"{app_url.scheme}://{app_url.netloc}/"


def banner(config: Config, start_url: str) -> str:
    """What ``demo`` prints once it listens: where to go, and the fixed demo values."""
    bank = config.banks[0].issuer
    lines = [
        "",
        "  app2app-proxy demo: three servers on this machine, the embedded store.",
        "",
        f"    Demo Shop (start here)  {start_url}",
        f"    app2app-proxy           {config.issuer}/.well-known/openid-configuration",
        f"    Sandbox Bank            {bank}/.well-known/openid-configuration",
        "",
        "  Demo values (fixed unless set in the environment; never use them elsewhere):",
    ]
    for client in config.clients:
        if client.client_secret:
            lines.append(f"    client {client.client_id:<22} secret {client.client_secret}")
    for rs in config.resource_servers:
        if rs.client_secret:
            extra = " (gets the bank's token)" if rs.receive_bank_token else ""
            lines.append(f"    API {rs.client_id:<25} secret {rs.client_secret}{extra}")
    if config.subject.salt:
        lines.append(f"    subject salt{'':<19}{config.subject.salt}")
    lines += [
        "",
        f"  Try: curl -u {_rs_credentials(config)} -d token=... {config.issuer}/introspect",
        "  Other ports: app2app-proxy demo --help.  Ctrl-C stops.",
        "",
    ]
    return "\n".join(lines)


def _rs_credentials(config: Config) -> str:
    rs = next((r for r in config.resource_servers if r.client_secret), None)
    return f"{rs.client_id}:{rs.client_secret}" if rs is not None else "API:SECRET"


async def _serve(config: Config) -> None:
    configure_logging("info")
    async with demo_servers(config) as start_url:
        print(banner(config, start_url), flush=True)
        await asyncio.Event().wait()


def run_demo(config_file: str, *, proxy_port: int | None = None, bank_port: int | None = None,
             app_port: int | None = None) -> int:
    path = Path(config_file).resolve()
    use_ports(proxy_port, bank_port, app_port)
    _prepare(path)
    config = load_or_report(str(path))
    if config is None:
        return 2
    try:
        asyncio.run(_serve(config))
    except PortInUse as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
