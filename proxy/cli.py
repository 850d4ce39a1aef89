"""``app2app-proxy``: serve, check-config, keys generate, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aiohttp import web

from proxy.app import create_app
from proxy.config import ConfigError, load_config
from proxy.keygen import ALGS, generate_signing_key
from proxy.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app2app-proxy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the authorization server")
    serve.add_argument("--config", required=True, help="path to config.yaml")
    serve.add_argument("--host", help="overrides listen.host")
    serve.add_argument("--port", type=int, help="overrides listen.port")
    serve.add_argument("--log-level", default="info")
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
    web.run_app(
        create_app(config),
        host=args.host or config.listen.host,
        port=args.port or config.listen.port,
        access_log=None,
        print=None,
    )
    return 0
