"""Records taken once: a picker's choice, a pushed request, a login's transaction.

The store's ``consume`` takes a record atomically and leaves a marker, so of two takes,
however close together and on whichever instances, exactly one gets the record; the
other finds the marker. (Codes, refresh tokens and challenges read more of what the
marker says: proxy.oauth.grants and device_key consume for themselves.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.oauth.errors import OAuthError
from proxy.oauth.services import Services


async def take_once(svc: Services, kind: str, key: str | None, *, marker_ttl: int | None,
                    unknown: OAuthError, used: OAuthError) -> Mapping[str, Any]:  # fmt: skip
    """The record of ``kind`` under ``key``, consumed. ``unknown`` is raised when there is
    none (or no key), ``used`` when it was taken before."""
    consumed = None
    if key:
        consumed = await svc.store.consume(kind, key, now=svc.moment(), marker_ttl=marker_ttl)
    if consumed is None:
        raise unknown
    if consumed.replay:
        raise used
    return consumed.payload
