"""The proxy's own API access token at a bank: the client credentials grant (RFC 6749
§4.4), authenticated with the bank's ``client_auth`` as at any bank.

A session broker's REST API (``kind: session``) and BankID's permissions API (a ``kind:
ciba`` bank with ``permissions:``) both want one. The token is kept until shortly before
it expires; concurrent callers share one fetch; a caller whose call was refused with 401
(RFC 6750 §3.1, ``invalid_token``: "The access token provided is expired, revoked,
malformed, or invalid for other reasons") asks again naming the refused token, and gets
a new one. The token is never logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from federation.bank_http import BankUnreachable, call_bank
from federation.client_auth import BankClientAuth
from federation.oidc_params import positive_int
from federation.protocol import BankError
from federation.settings import BankSettings

# a token is renewed this long before the bank said it expires (at most a tenth of
# its life), so no call carries a token that lapses on the way
RENEW_MARGIN = 30.0
# RFC 6749 §5.1 expires_in is RECOMMENDED only; a token without one is kept this long
DEFAULT_LIFETIME = 60.0
# readiness reads the token; after a failed fetch it waits this long before the next
RETRY_AFTER = 30.0
TIMEOUT_TEXT = "the bank did not answer in time"


def unreachable(exc: BankUnreachable) -> BankError:
    """No answer in time or no connection: try again later. A body over the size limit
    is a broken answer, not a busy bank."""
    if exc.reason == "body_too_large":
        return BankError("server_error", "the bank's answer could not be used", str(exc))
    return BankError("temporarily_unavailable", TIMEOUT_TEXT, str(exc))


class ApiToken:
    """One bank's client-credentials token for ``scopes``, cached."""

    def __init__(self, settings: BankSettings, http: aiohttp.ClientSession,
                 scopes: tuple[str, ...], auth: BankClientAuth,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.settings = settings
        self.scopes = scopes
        self._http = http
        self._auth = auth
        self._clock = clock
        self._token: str | None = None
        self._fresh_until = 0.0
        self._lock = asyncio.Lock()
        self._error: str | None = None
        self._retry_at = 0.0

    async def get(self, endpoint: str, *, refused: str | None = None) -> str:
        """The token: the cached one while it is fresh (and is not ``refused``, the one a
        401 just turned away), else a new one from ``endpoint``, fetched once for all."""
        if self._usable(refused):
            assert self._token is not None
            return self._token
        async with self._lock:
            if not self._usable(refused):  # nobody fetched one while we waited
                self._token, self._fresh_until = await self._fetch(endpoint)
            assert self._token is not None
            return self._token

    def _usable(self, refused: str | None) -> bool:
        return (self._token is not None and self._token != refused
                and self._clock() < self._fresh_until)

    async def _fetch(self, endpoint: str) -> tuple[str, float]:
        # RFC 6749 §4.4.2: grant_type "REQUIRED. Value MUST be set to "client_credentials"";
        # scope "OPTIONAL".
        form = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        data, headers = self._auth.apply(endpoint, form)
        try:
            reply = await call_bank(
                self._http, "POST", endpoint, time_limit=self.settings.timeout, data=data,
                headers=headers, ssl_context=self._auth.ssl_context, bank_id=self.settings.id,
                operation="token",
            )  # fmt: skip
        except BankUnreachable as exc:
            self._failed(str(exc))
            raise unreachable(exc) from exc
        where = f"API token: HTTP {reply.status}, error {reply.error_code()}"
        body = reply.json_object()
        if reply.status >= 500:
            self._failed(where)
            raise BankError("temporarily_unavailable", "the bank is temporarily unavailable",
                            where)
        access_token = body.get("access_token") if body else None
        token_type = body.get("token_type", "Bearer") if body else None
        # RFC 6749 §5.1: access_token and token_type are REQUIRED; the APIs take Bearer
        # tokens (RFC 6750), and §7.1 says the client "MUST NOT use an access token if it
        # does not understand the token type".
        if reply.status != 200 or not isinstance(access_token, str) or not access_token \
                or not isinstance(token_type, str) or token_type.lower() != "bearer":
            self._failed(where)
            raise BankError("server_error", "the bank refused the proxy's API credentials",
                            where)
        lifetime = positive_int(body.get("expires_in")) if body else None
        life = float(lifetime) if lifetime is not None else DEFAULT_LIFETIME
        self._error = None
        return access_token, self._clock() + life - min(RENEW_MARGIN, life / 10)

    def _failed(self, detail: str) -> None:
        self._error = detail
        self._retry_at = self._clock() + RETRY_AFTER

    async def status(self, endpoint: str) -> dict[str, str]:
        """``{"api": "ok"|"unavailable", "error"?}`` for /readyz: a token can be had.
        Never raises; after a failure the next attempt waits RETRY_AFTER seconds."""
        if not self._usable(None) and self._clock() >= self._retry_at:
            try:
                await self.get(endpoint)
            except Exception as exc:  # readiness must never fail because of a bank
                if self._error is None:
                    self._failed(type(exc).__name__)
        if self._usable(None):
            return {"api": "ok"}
        return {"api": "unavailable", "error": self._error or "no API token yet"}
