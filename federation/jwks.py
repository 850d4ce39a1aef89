"""The bank's signing keys (its ``jwks_uri``), cached by ``kid``.

Contract (DESIGN.md): an unknown ``kid`` triggers one refresh at once, shared
by every concurrent lookup (single-flight); refreshes happen at most once per
``jwks_cooldown`` seconds; the last good key set is kept when a fetch fails.
Only asymmetric signature keys are kept: the bank has no business signing
ID tokens with a shared secret.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import aiohttp
import jwt

from federation.bank_http import BankUnreachable, call_bank
from federation.metadata import Clock, MetadataUnavailable, ProviderMetadata

# alg -> (kty, crv or None for any)
ALG_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),
}


class JwksError(Exception):
    """No key to verify with (unknown kid, ambiguous key, or no key set at all)."""


class JwksCache:
    def __init__(
        self,
        metadata: ProviderMetadata,
        session: aiohttp.ClientSession,
        *,
        cooldown: float | None = None,
        max_age: float = 3600.0,
        clock: Clock = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._metadata = metadata
        self._session = session
        self._cooldown = metadata.settings.jwks_cooldown if cooldown is None else cooldown
        self._max_age = max_age
        self._clock = clock
        self._ssl = ssl_context
        self._lock = asyncio.Lock()
        self._keys: list[dict[str, Any]] = []  # usable public JWKs, each with "_key" (PyJWK)
        self._loaded_at: float | None = None
        self._last_try: float | None = None
        self._attempts = 0
        self.error: str | None = None  # why the last fetch failed (None: it worked)

    async def get_key(self, kid: str | None, alg: str) -> Any:
        """The public key (a ``cryptography`` object) to verify a JWS with ``alg`` and ``kid``.

        Without ``kid``, the set must hold exactly one key usable for ``alg``.
        """
        if alg not in ALG_KEY_TYPES:
            raise JwksError(f"alg {alg} is not an accepted signature algorithm")
        stale = self._loaded_at is None or self._clock() - self._loaded_at >= self._max_age
        candidates = self._candidates(kid, alg)
        if not candidates or stale:
            await self.refresh()
            candidates = self._candidates(kid, alg)
        if not candidates:
            what = f"kid {kid[:64]!r}" if kid is not None else "no kid"
            reason = f" (last fetch: {self.error})" if self.error else ""
            raise JwksError(f"no key for {what} usable with {alg}{reason}")
        if len(candidates) > 1:
            raise JwksError(f"no kid and {len(candidates)} keys usable with {alg}")
        return candidates[0]["_key"].key

    async def refresh(self) -> None:
        """Fetch the key set unless someone just did or the cooldown forbids it."""
        seen = self._attempts
        async with self._lock:
            if self._attempts != seen:  # another lookup fetched while we waited: use its result
                return
            now = self._clock()
            if self._last_try is not None and now - self._last_try < self._cooldown:
                return
            self._last_try = now
            try:
                self._keys = await self._download()
                self._loaded_at = self._clock()
                self.error = None
            except (BankUnreachable, MetadataUnavailable, JwksError) as exc:
                self.error = str(exc)  # keep the last good key set
            self._attempts += 1

    def _candidates(self, kid: str | None, alg: str) -> list[dict[str, Any]]:
        kty, crv = ALG_KEY_TYPES[alg]
        found = []
        for jwk in self._keys:
            if kid is not None and jwk.get("kid") != kid:
                continue
            if jwk["kty"] != kty or (crv is not None and jwk.get("crv") != crv):
                continue
            if "alg" in jwk and jwk["alg"] != alg:
                continue
            found.append(jwk)
        return found

    async def _download(self) -> list[dict[str, Any]]:
        doc = await self._metadata.get()
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str):
            raise JwksError("the discovery document has no jwks_uri")
        limit = self._metadata.settings.timeout
        reply = await call_bank(self._session, "GET", uri, time_limit=limit, ssl_context=self._ssl,
                                bank_id=self._metadata.settings.id, operation="jwks")
        body = reply.json_object()
        if reply.status != 200 or body is None or not isinstance(body.get("keys"), list):
            raise JwksError(f"jwks_uri answered HTTP {reply.status} without a key set")
        keys = [k for k in (_usable(jwk) for jwk in body["keys"]) if k is not None]
        if not keys:
            raise JwksError("the bank's key set holds no usable signature key")
        return keys


def _usable(jwk: Any) -> dict[str, Any] | None:
    """The JWK with its parsed key under ``_key``, or None if it cannot verify signatures."""
    if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC", "OKP"):
        return None
    if jwk.get("use", "sig") != "sig" or "d" in jwk:
        return None
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    try:
        parsed = jwt.PyJWK(jwk)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        return None
    return {**jwk, "_key": parsed}
