"""Reload ``config.yaml`` into a running app (``serve`` does it on SIGHUP, in each worker).

A valid file becomes the new :class:`proxy.oauth.services.State` in one assignment: banks,
clients, resource servers, keys, lifetimes, subject, rate limits, apps, metrics. Requests
in flight finish with the state they started with (see :mod:`proxy.oauth.services`).

An invalid file is refused, every problem logged, and the running config kept. So is a
file that changes ``issuer``: it is in every token, code and redirect already handed
out, and in every instance's discovery document; changing it is a new deployment. And
one whose ``keys.token_encryption`` leaves out the key that encrypts now: everything
sealed until this moment is sealed with it. Adding keys and reordering them (the first
encrypts) reloads; leaving out a key that only decrypted is applied with a warning,
``token_encryption_key_removed``: what is still sealed with it becomes unusable
(docs/key-rotation.md says when that is nothing).
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
from proxy.config.keys import token_key_id
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
    kids = {token_key_id(k) for k in new.keys.token_keys}
    encrypting = token_key_id(old.keys.token_encryption)
    if encrypting not in kids:
        # every grant, rotated pair and transaction sealed until now is sealed with it: a
        # file without it would make every live login unreadable, on this instance first
        return _refused(path, [
            f"keys.token_encryption: the key that encrypts now (kid {encrypting}) is not "
            "in the file; everything sealed until now is sealed with it. Keep it in the "
            "list, after the new key (docs/key-rotation.md)"
        ])  # fmt: skip
    for key in old.keys.token_decryption:
        if token_key_id(key) not in kids:
            log.warning("token_encryption_key_removed", kid=token_key_id(key),
                        detail="values still sealed with this key are unusable from now "
                        "on: their logins must start again (docs/key-rotation.md)")  # fmt: skip
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
        "token_encryption_keys": [token_key_id(k) for k in new.keys.token_keys],
        "banks": sorted(banks[1]),
        "banks_added": sorted(banks[1] - banks[0]),
        "banks_removed": sorted(banks[0] - banks[1]),
        "clients_added": sorted(clients[1] - clients[0]),
        "clients_removed": sorted(clients[0] - clients[1]),
        "signing_keys": kids[1],
        "signing_keys_changed": kids[0] != kids[1],
    }
