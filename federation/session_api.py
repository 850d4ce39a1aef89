"""The proxy as a client of a session broker's REST API: the calls that carry its API
access token.

The token comes from the broker's token endpoint with the client credentials grant
(:class:`federation.api_token.ApiToken`, shared with BankID's permissions API). A 401
from the API fetches a new one once (RFC 6750 §3.1: ``invalid_token``, "The access
token provided is expired, revoked, malformed, or invalid for other reasons") and the
call is sent again. The token is sent only to the API's own origin (the caller checks
the URLs it is given) and never logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from federation.api_token import TIMEOUT_TEXT, ApiToken, unreachable
from federation.bank_http import BankReply, BankUnreachable, call_bank
from federation.client_auth import BankClientAuth
from federation.metrics import Operation
from federation.settings import BankSettings, SessionApi

__all__ = ["TIMEOUT_TEXT", "SessionApiClient", "unreachable"]


class SessionApiClient:
    """Calls to one broker's API with a cached API token."""

    def __init__(self, settings: BankSettings, http: aiohttp.ClientSession,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        assert settings.session is not None  # the registry builds this for kind session only
        self.settings = settings
        self.api: SessionApi = settings.session
        self._http = http
        self._auth = BankClientAuth(settings)
        self._token = ApiToken(settings, http, self.api.api_scopes, self._auth, clock)

    async def call(self, method: str, url: str, *, operation: Operation,
                   body: Mapping[str, Any] | None = None,
                   time_limit: float | None = None) -> BankReply:  # fmt: skip
        """One API call (JSON in, JSON out) with the API token; after a 401, one more
        with a new token. BankError when no token can be had or the API is unreachable."""
        limit = self.settings.timeout if time_limit is None else time_limit
        token = await self.token()
        reply = await self._send(method, url, token, body, operation, limit)
        if reply.status == 401:
            token = await self.token(refused=token)
            reply = await self._send(method, url, token, body, operation, limit)
        return reply

    async def _send(self, method: str, url: str, token: str, body: Mapping[str, Any] | None,
                    operation: Operation, limit: float) -> BankReply:  # fmt: skip
        headers = {"Authorization": f"Bearer {token}"}
        if self.api.account_id is not None:
            headers["Signicat-AccountId"] = self.api.account_id
        try:
            return await call_bank(
                self._http, method, url, time_limit=limit, json_body=body, headers=headers,
                ssl_context=self._auth.ssl_context, bank_id=self.settings.id,
                operation=operation,
            )  # fmt: skip
        except BankUnreachable as exc:
            raise unreachable(exc) from exc

    async def token(self, *, refused: str | None = None) -> str:
        """The API token (see :meth:`federation.api_token.ApiToken.get`)."""
        return await self._token.get(self.api.api_token_endpoint, refused=refused)

    async def status(self) -> dict[str, str]:
        """``{"api": "ok"|"unavailable", "error"?}`` for /readyz: an API token can be had."""
        return await self._token.status(self.api.api_token_endpoint)
