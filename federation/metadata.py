"""A bank's discovery document, fetched once and cached.

The document comes from ``{issuer}/.well-known/openid-configuration`` and is
trusted only when its ``issuer`` is exactly the configured one:
"The issuer value returned MUST be identical to the Issuer URL that was used
as the prefix to /.well-known/openid-configuration to retrieve the
configuration information." (OIDC Discovery 1.0 §4.3; RFC 8414 §3.3 says the
same). The last good document is kept when a later fetch fails.

The bank's signing keys live in :mod:`federation.jwks` (``JwksCache``).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from federation.bank_http import BankUnreachable, call_bank
from federation.settings import BankSettings

Clock = Callable[[], float]


class MetadataUnavailable(Exception):
    """No usable discovery document: never fetched successfully."""


class ProviderMetadata:
    """The bank's discovery document, cached for ``max_age`` seconds.

    Concurrent callers share one fetch (single-flight); after a failed
    re-fetch the last good document is served and the next try waits
    ``retry_after`` seconds.
    """

    def __init__(
        self,
        settings: BankSettings,
        session: aiohttp.ClientSession,
        *,
        max_age: float = 3600.0,
        retry_after: float = 10.0,
        clock: Clock = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self._session = session
        self._max_age = max_age
        self._retry_after = retry_after
        self._clock = clock
        self._ssl = ssl_context
        self._lock = asyncio.Lock()
        self._doc: dict[str, Any] | None = None
        self._next_fetch = 0.0
        self._error: str | None = None
        self._attempts = 0  # finished fetches; tells a waiter that someone else just fetched

    @property
    def url(self) -> str:
        # OIDC Discovery §4: a trailing "/" of the issuer is removed before appending.
        return self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"

    async def get(self) -> Mapping[str, Any]:
        """The discovery document; raises MetadataUnavailable if none was ever fetched."""
        if self._doc is None or self._clock() >= self._next_fetch:
            seen = self._attempts
            async with self._lock:
                if self._attempts == seen:  # nobody fetched while we waited for the lock
                    await self._fetch()
        if self._doc is None:
            raise MetadataUnavailable(self._error or "discovery document not fetched")
        return self._doc

    async def status(self) -> dict[str, str]:
        """``{"metadata": "ok"|"unavailable", "error"?: short text}``; never raises."""
        try:
            await self.get()
        except Exception as exc:  # readiness must never fail because of one bank
            if self._error is None:
                self._error = type(exc).__name__
        result = {"metadata": "ok" if self._doc is not None else "unavailable"}
        if self._error:
            result["error"] = self._error
        return result

    async def _fetch(self) -> None:
        try:
            self._doc = await self._download()
            self._error = None
            self._next_fetch = self._clock() + self._max_age
        except (BankUnreachable, MetadataUnavailable) as exc:
            self._error = str(exc)
            self._next_fetch = self._clock() + self._retry_after
        self._attempts += 1

    async def _download(self) -> dict[str, Any]:
        reply = await call_bank(
            self._session, "GET", self.url, time_limit=self.settings.timeout, ssl_context=self._ssl,
            bank_id=self.settings.id, operation="metadata",
        )
        if reply.status != 200:
            raise MetadataUnavailable(f"discovery answered HTTP {reply.status}")
        doc = reply.json_object()
        if doc is None:
            raise MetadataUnavailable("discovery document is not a JSON object")
        # RFC 8414 §3.3: "The "issuer" value returned MUST be identical to the
        # authorization server's issuer identifier value into which the
        # well-known URI string was inserted ... If these values are not
        # identical, the data contained in the response MUST NOT be used."
        if doc.get("issuer") != self.settings.issuer:
            raise MetadataUnavailable("discovery issuer does not match the configured issuer")
        return doc
