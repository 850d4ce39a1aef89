"""The one store interface, and the factory that picks Redis or the embedded store.

Knows no HTTP: may import its settings (:mod:`proxy.config`) and :mod:`proxy.model`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from proxy.config.settings import StoreSettings
from proxy.store.base import Consumed, Store, StoreUnavailable

__all__ = ["Consumed", "Store", "StoreUnavailable", "open_store"]

MEMORY_SCHEME = "memory"
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")


def open_store(settings: StoreSettings, *, max_connections: int = 64) -> Store:
    """``memory://``: the embedded one-process store; otherwise Redis.

    Nothing connects here: a Redis that is down shows up on first use (and in
    ``/readyz``) as :class:`StoreUnavailable`.
    """
    scheme = urlsplit(settings.url).scheme.lower()
    if scheme == MEMORY_SCHEME:
        from proxy.store.memory import MemoryStore

        return MemoryStore(settings.prefix)
    if scheme in REDIS_SCHEMES:
        from proxy.store.redis import RedisStore

        return RedisStore.from_settings(settings, max_connections=max_connections)
    accepted = ", ".join(f"{s}://" for s in (MEMORY_SCHEME, *REDIS_SCHEMES))
    raise ValueError(f"store.url: unknown scheme {scheme + '://'!r}; accepted: {accepted}")
