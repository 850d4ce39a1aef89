"""Reload ``config.yaml`` into a running app (``serve`` does it on SIGHUP, in each worker).

A valid file becomes the new :class:`proxy.oauth.services.State` in one assignment: banks,
clients, resource servers, keys, lifetimes, subject, rate limits, apps, metrics. Requests
in flight finish with the state they started with (see :mod:`proxy.oauth.services`).

An invalid file is refused, every problem logged, and the running config kept. So is a
file that changes ``issuer``: it is in every token, code and redirect already handed
out, and in every instance's discovery document; changing it is a new deployment.
``listen`` and ``store`` cannot change under a running server: a change is logged as
needing a restart and the running values are kept (the rest of the file is applied).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

from aiohttp import web

from proxy.app import build_state
from proxy.config import ConfigError, load_config
from proxy.config.settings import Config
from proxy.oauth.services import SERVICES
from proxy.observability.logs import logger

log = logger("proxy.reload")

# what a running server cannot take from a new file; a change waits for the next start
RESTART_ONLY = ("listen", "store")


async def reload_config(app: web.Application, path: str | os.PathLike[str]) -> bool:
    """Load ``path`` and swap it in; False (and the old config kept) when it is refused.
    Call one at a time (``serve`` queues SIGHUPs)."""
    try:
        # a file read and key parsing: off the event loop, so requests go on meanwhile
        new = await asyncio.to_thread(load_config, path)
    except ConfigError as exc:
        return _refused(path, exc.errors)
    return apply_config(app, new, path)


def apply_config(app: web.Application, new: Config, path: str | os.PathLike[str] = "") -> bool:
    """Swap the loaded config ``new`` in (what :func:`reload_config` does once the file is
    read); False (and the old config kept) when it is refused."""
    svc = app[SERVICES]
    old = svc.current.config
    if new.issuer != old.issuer:
        return _refused(path, [
            f"issuer: cannot change while running (running {old.issuer!r}, file "
            f"{new.issuer!r}); it is in every token and redirect already issued: deploy "
            "the new issuer as a new instance"
        ])  # fmt: skip
    if new.keys.token_encryption != old.keys.token_encryption:
        # every grant and rotated pair in the store is sealed with the running key: a
        # new one would make every live login unreadable, on this instance first
        return _refused(path, [
            "keys.token_encryption: cannot change while running; every live grant is "
            "encrypted with the current key (rotating it means logging everyone out)"
        ])  # fmt: skip
    pending = [name for name in RESTART_ONLY if getattr(new, name) != getattr(old, name)]
    if pending:
        log.warning("config_needs_restart", path=str(path), settings=pending,
                    detail="kept the running values; restart to apply them")  # fmt: skip
        new = dataclasses.replace(new, **{name: getattr(old, name) for name in pending})
    try:
        state = build_state(new, store=svc.store, http=svc.http)
    except ValueError as exc:
        return _refused(path, [str(exc)])
    svc.swap(state)
    log.info("config_reloaded", path=str(path), **_changes(old, new))
    return True


def _refused(path: str | os.PathLike[str], problems: list[str]) -> bool:
    log.error("config_reload_refused", path=str(Path(path)), problems=problems,
              detail="the running config is kept")  # fmt: skip
    return False


def _changes(old: Config, new: Config) -> dict[str, object]:
    """What an operator checks after a reload (ids and kids only, never a secret)."""
    banks = {b.id for b in old.banks}, {b.id for b in new.banks}
    clients = {c.client_id for c in old.clients}, {c.client_id for c in new.clients}
    kids = [k.kid for k in old.keys.signing], [k.kid for k in new.keys.signing]
    return {
        "banks": sorted(banks[1]),
        "banks_added": sorted(banks[1] - banks[0]),
        "banks_removed": sorted(banks[0] - banks[1]),
        "clients_added": sorted(clients[1] - clients[0]),
        "clients_removed": sorted(clients[0] - clients[1]),
        "signing_keys": kids[1],
        "signing_keys_changed": kids[0] != kids[1],
    }
