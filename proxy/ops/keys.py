"""``app2app-proxy keys``: generate a signing key (a private JWK with a kid), show the
rotation schedule, plan the next step. ``status`` and ``plan`` read the config as
``serve`` does (the same checks, the same environment); neither writes to it. The
runbook: docs/key-rotation.md."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from jwcrypto import jwk

from proxy.config import load_or_report
from proxy.config.keys import KeyFileError, signing_key, token_key_id
from proxy.config.rotation import KeyStatus, iso, key_status, retention, signer_at
from proxy.config.settings import Config

ALGS = ("ES256", "EdDSA", "RS256")


def generate_signing_key(alg: str = "ES256") -> jwk.JWK:
    if alg == "ES256":
        key = jwk.JWK.generate(kty="EC", crv="P-256")
    elif alg == "EdDSA":
        key = jwk.JWK.generate(kty="OKP", crv="Ed25519")
    elif alg == "RS256":
        key = jwk.JWK.generate(kty="RSA", size=3072)
    else:
        raise ValueError(f"unsupported alg {alg!r}; use one of {', '.join(ALGS)}")
    params = key.export(private_key=True, as_dict=True)
    # RFC 7638 thumbprint as kid: stable, and unique per key
    params.update(kid=key.thumbprint(), alg=alg, use="sig")
    return jwk.JWK(**params)


# the time relying parties get by default to fetch a new key before it signs: merchant
# apps and SDKs often cache a JWKS for hours, and our own /jwks says max-age=300
ACTIVATE_IN = 86400
JWKS_MAX_AGE = 300  # proxy.endpoints.discovery.CACHE


def add_parsers(keys_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    generate = keys_sub.add_parser("generate", help="print a new private signing JWK")
    generate.add_argument("--alg", choices=ALGS, default="ES256")
    status = keys_sub.add_parser(
        "status", help="each signing key: published, when it signs, when it may be removed"
    )
    status.add_argument("--config", required=True, help="path to config.yaml")
    plan = keys_sub.add_parser(
        "plan", help="print the keys.signing entries that rotate to a new key (edits nothing)"
    )
    plan.add_argument("--config", required=True, help="path to config.yaml")
    plan.add_argument("--new", required=True, metavar="JWK_FILE",
                      help="the new private key (app2app-proxy keys generate > FILE)")
    plan.add_argument(
        "--activate-in", type=int, default=ACTIVATE_IN, metavar="SECONDS",
        help="publish now, sign from this many seconds on: at least the longest time "
        "merchant apps cache /jwks (default %(default)s)",
    )


def run(args: argparse.Namespace, clock: Callable[[], float] = time.time) -> int:
    if args.keys_command == "generate":
        print(generate_signing_key(args.alg).export(private_key=True))
        return 0
    config = load_or_report(args.config)
    if config is None:
        return 2
    if args.keys_command == "status":
        return _status(args.config, config, clock())
    return _plan(args, config, clock())


def _status(path: str, config: Config, now: float) -> int:
    keys = config.keys.signing
    print(f"{path}: {len(keys)} signing key(s) at {iso(now)}; every one is published in /jwks")
    for status in key_status(keys, config.lifetimes, now):
        print()
        print("\n".join(_describe(status, now)))
    print()
    print("\n".join(_token_encryption(config)))
    return 0


def _token_encryption(config: Config) -> list[str]:
    """keys.token_encryption: which key encrypts, which only decrypt (their ids only)."""
    keys = config.keys.token_keys
    lines = [f"keys.token_encryption: {len(keys)} key(s); the first encrypts, all decrypt"]
    for n, key in enumerate(keys):
        lines.append(f"- kid: {token_key_id(key)}")
        lines.append("  encrypts: yes" if n == 0 else
                     "  encrypts: no (decrypts what it sealed; remove it only as "
                     "docs/key-rotation.md says)")  # fmt: skip
    return lines


def _describe(status: KeyStatus, now: float) -> list[str]:
    key, signs = status.key, status.signs
    lines = [
        f"- file: {key.file}",
        f"  kid: {key.kid}",
        f"  alg: {key.key['alg']}",
        "  published: yes",
        f"  signing now: {'yes' if status.signing else 'no'}",
    ]
    if signs is None:
        lines.append("  signs: never under this config (a newer key always takes precedence)")
    else:
        lines.append(f"  signs from: {_moment(signs.start, now, 'the start')}")
        lines.append(f"  signs until: {_moment(signs.end, now, 'no end (no not_after)')}")
    if status.removable_after is None:
        lines.append("  removable after: - (it signs with no end; set not_after to retire it)")
    else:
        removable = _moment(status.removable_after, now, "")
        if status.removable(now):
            removable += ": remove it from keys.signing now"
        lines.append(f"  removable after: {removable}")
    return lines


def _moment(t: float, now: float, open_end: str) -> str:
    if not math.isfinite(t):
        return open_end
    delta = int(t - now)
    when = f"in {_span(delta)}" if delta > 0 else f"{_span(-delta)} ago" if delta else "now"
    return f"{iso(t)} ({when})"


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s"))
             if n]
    return " ".join(parts[:2]) or "0s"


def _plan(args: argparse.Namespace, config: Config, now: float) -> int:
    if args.activate_in < 0:
        print("--activate-in must not be negative", file=sys.stderr)
        return 2
    try:
        new = signing_key(Path(args.new))
    except KeyFileError as exc:
        print(f"--new: {exc}", file=sys.stderr)
        return 2
    keys = config.keys.signing
    kid = str(new["kid"])
    if any(k.kid == kid for k in keys):
        print(f"--new: kid {kid!r} is already in keys.signing of {args.config}", file=sys.stderr)
        return 2
    if args.activate_in < JWKS_MAX_AGE:
        print(f"warning: --activate-in {args.activate_in} is less than the {JWKS_MAX_AGE} s "
              "relying parties may cache /jwks for: some would meet tokens signed with a key "
              "they have not fetched yet", file=sys.stderr)  # fmt: skip
    # whole minutes, so the operator's file reads well
    not_before = math.ceil((now + args.activate_in) / 60) * 60
    # the key that would sign just before the new one starts (moments are whole seconds)
    current = signer_at(keys, not_before - 1)
    folder = Path(args.config).resolve().parent
    print(f"# Rotation plan for {args.config}, made at {iso(now)}. Nothing was changed.")
    print("# 1. Add the new key to keys.signing, in the config of every instance. It is")
    print("#    published in /jwks as soon as the config is loaded, and signs from")
    print(f"#    not_before, in {_span(not_before - int(now))}: relying parties fetch it first.")
    print(_entry(_relative(Path(args.new), folder), new["alg"], kid, not_before=not_before))
    if current is not None:
        removable = not_before + retention(config.lifetimes)
        print("# 2. End the key that signs until then at the same moment:")
        print(_entry(current.file, current.key["alg"], current.kid,
                     not_before=current.not_before, not_after=not_before))
        print("# 3. Reload every instance (SIGHUP) or restart it, then check with")
        print(f"#    app2app-proxy keys status --config {args.config}")
        print(f"# {current.file} stays published until what it signed has expired: remove its")
        print(f"# entry after {iso(removable)} (not_after + {retention(config.lifetimes)} s).")
    return 0


def _entry(file: str, alg: str, kid: str, *, not_before: int | None = None,
           not_after: int | None = None) -> str:
    lines = [f"    - file: {file}  # kid {kid}, {alg}"]
    if not_before is not None:
        lines.append(f"      not_before: {iso(not_before)}")
    if not_after is not None:
        lines.append(f"      not_after: {iso(not_after)}")
    return "\n".join(lines)


def _relative(path: Path, folder: Path) -> str:
    """``path`` as the config should name it: relative to the config's folder when it
    lies inside it (relative paths in the config are taken from there)."""
    full = path.resolve()
    return str(full.relative_to(folder)) if full.is_relative_to(folder) else str(full)

