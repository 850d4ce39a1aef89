"""``app2app-proxy``: serve, check-config, keys generate|status|plan, demo, revoke."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from proxy.config import load_or_report
from proxy.ops import keys
from proxy.ops.serving import ServeOptions, run_server
from proxy.web.forms import DEFAULT_BODY_TIMEOUT
from proxy.web.server import KEEPALIVE_TIMEOUT

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
    serve.add_argument(
        "--keepalive-timeout", type=_seconds, default=KEEPALIVE_TIMEOUT, metavar="SECONDS",
        help="close a connection that has sent no complete request header this long after "
        "opening or after its last answer (idle keep-alive, or a header sent slowly); keep "
        "it longer than the load balancer's idle timeout (default %(default)s)",
    )
    serve.add_argument(
        "--body-timeout", type=_seconds, default=DEFAULT_BODY_TIMEOUT, metavar="SECONDS",
        help="refuse (408) a request whose body has not arrived this long after its header "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--workers", type=_positive, default=1, metavar="N",
        help="server processes sharing the port (SO_REUSEPORT), supervised by this one; "
        "SIGTERM, SIGINT and SIGHUP reach every worker (default %(default)s)",
    )
    check = sub.add_parser("check-config", help="validate a config file and list every problem")
    check.add_argument("file")
    keys_parser = sub.add_parser("keys", help="key management")
    keys_sub = keys_parser.add_subparsers(dest="keys_command", required=True)
    keys.add_parsers(keys_sub)  # generate, status, plan
    demo = sub.add_parser("demo", help="proxy + sandbox bank + demo app, embedded store")
    demo.add_argument("--config", default="config.yaml")
    revoke = sub.add_parser(
        "revoke", help="revoke every live token of a subject, a client or one grant"
    )
    revoke.add_argument("--config", required=True, help="path to config.yaml (its store)")
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--sub", help="the merchant-facing sub (ID token, introspection)")
    target.add_argument("--grant", metavar="GRANT_ID", help="one grant id (a2a_gr_...)")
    target.add_argument("--client", metavar="CLIENT_ID", help="every grant of this client")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keys":
        return keys.run(args)
    if args.command == "demo":
        from proxy.ops.demo import run_demo

        return run_demo(args.config)
    if args.command == "revoke":
        from proxy.ops.revoke import run_revoke

        return run_revoke(args.config, sub=args.sub, grant=args.grant, client=args.client)
    path = args.config if args.command == "serve" else args.file
    config = load_or_report(path)
    if config is None:
        return 2
    if args.command == "check-config":
        print(f"{path}: OK ({len(config.banks)} bank(s), {len(config.clients)} client(s))")
        return 0
    options = ServeOptions(
        config_path=os.path.abspath(path), host=args.host, port=args.port,
        drain_delay=args.drain_delay, shutdown_timeout=args.shutdown_timeout,
        log_level=args.log_level, reuse_port=args.workers > 1,
        keepalive_timeout=args.keepalive_timeout, body_timeout=args.body_timeout,
    )
    if args.workers > 1:
        from proxy.ops.workers import run_workers

        return run_workers(options, args.workers)
    return run_server(options, config)


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds (got {value!r})") from None
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds (got {value})")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {number})")
    return number
