"""``app2app-proxy revoke --config FILE (--sub SUB | --grant GRANT_ID | --client CLIENT_ID)``.

An operator revokes every live grant of a merchant-facing subject, of a client, or
one grant, in the store the config names: each of their codes, access and refresh
tokens stops working at once, on every instance (see :mod:`proxy.ops.revocation`).
Prints the count on stdout (and, for --sub and --client, how many grant records were
read to find them: every grant in the store); the audit line ``token.revoked`` goes to
stderr as JSON.
Exit 0 when done (also when there was nothing to revoke), 1 when the store does not
answer, 2 when the config is wrong or names the embedded store.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any
from urllib.parse import urlsplit

from proxy.config import load_or_report
from proxy.config.settings import StoreSettings
from proxy.model.tokens import fingerprint
from proxy.observability.logs import configure_logging, logger
from proxy.ops.revocation import Revoked, Selector, revoke_grants
from proxy.store import MEMORY_SCHEME, StoreUnavailable, open_store

log = logger("proxy.revoke")


def run_revoke(
    path: str, *, sub: str | None = None, grant: str | None = None, client: str | None = None
) -> int:
    """The command: exactly one of ``sub``, ``grant``, ``client`` (the parser sees to it)."""
    named: dict[Selector, str | None] = {"sub": sub, "grant": grant, "client": client}
    ((selector, value),) = ((s, v) for s, v in named.items() if v is not None)
    if not value.strip():
        print(f"revoke: --{selector} must not be empty", file=sys.stderr)
        return 2
    config = load_or_report(path)
    if config is None:
        return 2
    if urlsplit(config.store.url).scheme.lower() == MEMORY_SCHEME:
        print(
            f"{path}: store.url is memory://, the embedded store that lives inside one "
            "server process; another process cannot reach it. Revoke against Redis (a "
            "restart of a memory:// server drops every token anyway).",
            file=sys.stderr,
        )
        return 2
    configure_logging("info", sys.stderr)
    try:
        result = asyncio.run(revoke(config.store, selector, value))
    except StoreUnavailable as exc:
        print(f"revoke: {exc}", file=sys.stderr)
        return 1
    line = f"revoked {result.grants} grant(s) by {selector}"
    if selector != "grant":
        line += f" ({result.scanned} grant records scanned)"
    print(line)
    return 0


async def revoke(settings: StoreSettings, selector: Selector, value: str) -> Revoked:
    """Revoke in the store ``settings`` names, and write the audit line."""
    store = open_store(settings, max_connections=4)
    try:
        result = await revoke_grants(store, selector, value)
    finally:
        await store.close()
    log.info("token.revoked", by="operator", selector=selector, **_target(selector, value),
             grants=result.grants, scanned=result.scanned)
    return result


def _target(selector: Selector, value: str) -> dict[str, Any]:
    """What the audit line may say of the target: a client_id as it is; a sub (personal
    data) or a grant id only as a fingerprint."""
    if selector == "client":
        return {"client_id": value}
    return {f"{selector}_fingerprint": fingerprint(value)}
