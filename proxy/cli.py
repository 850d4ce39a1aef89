"""``app2app-proxy``: serve, check-config, keys generate, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

import structlog
from aiohttp import web

from proxy.app import LINGERING_TIME, create_app
from proxy.config import ConfigError, load_config
from proxy.endpoints.health import DRAIN, Drain
from proxy.keygen import ALGS, generate_signing_key
from proxy.logs import configure_logging

log = structlog.get_logger("proxy.cli")

# seconds between SIGTERM and closing the listener (/readyz answers 503 meanwhile), then
# what requests in flight get to finish; together under Kubernetes' default 30 s grace
DRAIN_DELAY = 2.0
SHUTDOWN_TIMEOUT = 20.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app2app-proxy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the authorization server")
    serve.add_argument("--config", required=True, help="path to config.yaml")
    serve.add_argument("--host", help="overrides listen.host")
    serve.add_argument("--port", type=int, help="overrides listen.port")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--drain-delay", type=float, default=DRAIN_DELAY, metavar="SECONDS",
        help="after SIGTERM, keep serving this long with /readyz answering 503, so the "
        "load balancer stops sending before the listener closes (default %(default)s)",
    )
    serve.add_argument(
        "--shutdown-timeout", type=float, default=SHUTDOWN_TIMEOUT, metavar="SECONDS",
        help="then how long requests in flight get to finish (default %(default)s)",
    )
    check = sub.add_parser("check-config", help="validate a config file and list every problem")
    check.add_argument("file")
    keys = sub.add_parser("keys", help="key management")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    generate = keys_sub.add_parser("generate", help="print a new private signing JWK")
    generate.add_argument("--alg", choices=ALGS, default="ES256")
    demo = sub.add_parser("demo", help="proxy + sandbox bank + demo app, embedded store")
    demo.add_argument("--config", default="config.yaml")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keys":
        print(generate_signing_key(args.alg).export(private_key=True))
        return 0
    if args.command == "demo":
        from proxy.demo import run_demo

        return run_demo(args.config)
    path = args.config if args.command == "serve" else args.file
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.errors)} problem(s):", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(f"{path}: OK ({len(config.banks)} bank(s), {len(config.clients)} client(s))")
        return 0
    configure_logging(args.log_level)
    asyncio.run(
        serve(
            create_app(config),
            host=args.host or config.listen.host,
            port=args.port or config.listen.port,
            drain_delay=args.drain_delay,
            shutdown_timeout=args.shutdown_timeout,
        )
    )
    return 0


async def serve(
    app: web.Application, *, host: str, port: int, drain_delay: float, shutdown_timeout: float
) -> None:
    """Serve until SIGTERM (or SIGINT), then stop without dropping a request:

    1. /readyz answers 503 at once, so the load balancer takes this instance out;
    2. for ``drain_delay`` seconds every request is still served (those the load
       balancer sends before it notices); a second signal cuts this short;
    3. the listener closes and requests in flight get ``shutdown_timeout`` seconds to
       finish (aiohttp's graceful shutdown), then the store and HTTP session close.
    """
    drain = Drain()
    app[DRAIN] = drain
    stop = asyncio.Event()
    hurry = asyncio.Event()

    def on_signal() -> None:
        if drain.draining:
            hurry.set()
        drain.draining = True
        stop.set()

    runner = web.AppRunner(
        app, access_log=None, shutdown_timeout=shutdown_timeout, lingering_time=LINGERING_TIME
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)
        log.info("serving", host=host, port=port)
        await stop.wait()
        log.info("draining", drain_delay=drain_delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hurry.wait(), drain_delay)
        log.info("shutting_down", shutdown_timeout=shutdown_timeout)
    finally:
        await runner.cleanup()
    log.info("stopped")
