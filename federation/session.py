"""The adapter for banks of ``kind: session``: an eID reached through a broker's REST
session API (Signicat's Authentication REST API, ``flow: headless``; itsme App2App).

``start`` creates the session (``POST {api}/sessions``) and hands back the broker's
deep link into the eID app, with the state the broker put into it: the proxy keys the
login by that state. ``finish`` takes the eID app's return to ``/callback/{id}``:
checks the state, validates the code at the session's token-request URL, then reads
the session (``GET {api}/sessions/{id}``) every ``poll_interval`` seconds until it
ends, all within ``timeout`` seconds. ``watch`` reads the session once, for
``/authorize/status``. The broker issues the proxy no tokens for the user: a session
login has no bank access token and nothing to refresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from federation.bank_http import safe_text
from federation.oidc_params import PASSED_ERRORS
from federation.protocol import (
    BankError,
    BankResult,
    BankTokens,
    RedirectStart,
    SessionProgress,
    StartRequest,
)
from federation.session_answers import (
    SUCCESS,
    Created,
    ended,
    expired,
    identity_of,
    parse_created,
    progress,
    same_state,
    session_status,
    unusable,
)
from federation.session_api import TIMEOUT_TEXT, SessionApiClient
from federation.settings import BankSettings

# the seed: "flow": "headless" -- no broker UI; the eID app is opened directly
FLOW = "headless"
# a session that names no lifetime is taken to live as long as this
DEFAULT_LIFETIME = 600.0


class SessionAdapter:
    def __init__(
        self,
        settings: BankSettings,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = SessionApiClient(settings, session)
        self.api = self.client.api
        self._sessions = self.api.api.rstrip("/") + "/sessions"
        self._clock = clock

    async def start(self, request: StartRequest) -> RedirectStart:
        """The seed, "Create a session": allowedProviders, flow headless, the redirect URL
        in additionalParameters, requestedAttributes. ``login_hint`` and the browser-less
        ``native_callback_uri`` have no place in this API: the eID app returns to the
        proxy's callback, which the merchant app claims."""
        body: dict[str, Any] = {
            "allowedProviders": [self.api.provider],
            "flow": FLOW,
            "additionalParameters": {self.api.redirect_parameter: request.redirect_uri},
        }
        if self.api.requested_attributes:
            body["requestedAttributes"] = list(self.api.requested_attributes)
        reply = await self.client.call("POST", self._sessions, body=body, operation="session")
        where = f"create session: HTTP {reply.status}, error {reply.error_code()}"
        if reply.status >= 500:
            raise BankError("temporarily_unavailable", "the bank is temporarily unavailable",
                            where)
        if reply.status not in (200, 201):
            raise BankError("server_error", "the bank refused the login request", where)
        created = parse_created(reply.body, self.api, now=self._clock(),
                                default_lifetime=DEFAULT_LIFETIME)
        return RedirectStart(url=created.authorization_url, conn_data=created.conn_data(),
                             state=created.state)

    async def finish(
        self, conn_data: Mapping[str, Any], params: Mapping[str, str], redirect_uri: str
    ) -> BankResult:
        """The eID app came back to ``/callback/{id}`` with ``code`` and ``state`` (or an
        error). Every failure is a BankError; the whole takes at most ``timeout`` s."""
        deadline = time.monotonic() + self.settings.timeout
        created = _kept(conn_data)
        state = params.get("state", "")
        # The seed: "State verification: Before making the token request, your backend
        # must validate that the state value received from the mobile app matches the
        # state value originally generated in the authorizationRequestUrl. This is a
        # critical security measure to prevent Cross-Site Request Forgery (CSRF) attacks."
        if not same_state(state, conn_data):
            raise BankError("server_error", "the bank's response could not be verified",
                            "callback: state differs from the session's")
        if "error" in params:
            # the eID app's refusal; its text is logged, never shown
            code = safe_text(params["error"], 64)
            raise BankError("access_denied", PASSED_ERRORS["access_denied"],
                            f"eID app error {code}")
        if self._clock() >= created.expires_at:
            raise expired("the session expired before the user came back")
        auth_code = params.get("code")
        if not auth_code:
            raise BankError("server_error", "the bank sent no authorization code", "no code")
        # The seed, "Token validation request": POST to the tokenRequestUrl "passing the
        # code, state and transactionId as part of the request body".
        reply = await self.client.call(
            "POST", created.token_request_url, operation="code",
            body={"code": auth_code, "state": state, "transactionId": created.transaction_id},
            time_limit=_left(deadline),
        )  # fmt: skip
        if reply.status not in (200, 201, 204):
            if self._clock() >= created.expires_at:
                raise expired("the session expired while the code was validated")
            raise BankError("server_error", "the bank refused the login's code",
                            f"token request: HTTP {reply.status}, error {reply.error_code()}")
        body = await self._ended_session(created, deadline)
        return BankResult(identity_of(body, self.api, self.settings.claims),
                          BankTokens(access_token=None))

    async def _ended_session(self, created: Created, deadline: float) -> Mapping[str, Any]:
        """The seed: "If you are polling the endpoint (every 1 to 3 seconds), wait until
        the status value is either SUCCESS, ABORT, or ERROR, at which point the session is
        finalised." Read every ``poll_interval`` seconds until then or the deadline."""
        while True:
            body, status = await self._read(created, _left(deadline))
            if status == SUCCESS:
                return body
            failure = ended(status)
            if failure is not None:
                raise failure
            if self._clock() >= created.expires_at:
                raise expired(f"status {safe_text(status, 32)} at the session's expiry")
            if time.monotonic() + self.api.poll_interval >= deadline:
                raise BankError("temporarily_unavailable", TIMEOUT_TEXT,
                                f"session: still {safe_text(status, 32)} after "
                                f"{self.settings.timeout:g} s")
            await asyncio.sleep(self.api.poll_interval)

    async def _read(self, created: Created, limit: float) -> tuple[dict[str, Any], str]:
        url = f"{self._sessions}/{created.session_id}"
        reply = await self.client.call("GET", url, operation="session", time_limit=limit)
        where = f"read session: HTTP {reply.status}, error {reply.error_code()}"
        if reply.status in (404, 410) and self._clock() >= created.expires_at:
            raise expired("the broker no longer knows the session")
        if reply.status >= 500:
            raise BankError("temporarily_unavailable", "the bank is temporarily unavailable",
                            where)
        if reply.status != 200:
            raise BankError("server_error", "the bank could not complete the login", where)
        status = session_status(reply.body, created.session_id)
        assert isinstance(reply.body, dict)  # session_status checked it
        return reply.body, status

    async def watch(self, conn_data: Mapping[str, Any]) -> SessionProgress:
        """One read of the session, for /authorize/status."""
        created = _kept(conn_data)
        if self._clock() >= created.expires_at:
            return "failed"
        try:
            _, status = await self._read(created, self.settings.timeout)
        except BankError as exc:
            if exc.error == "temporarily_unavailable":
                raise
            return "failed"
        return progress(status)

    async def refresh(self, tokens: BankTokens) -> BankTokens:
        """A session login has no bank tokens to refresh (the proxy never calls this: a
        grant without a bank refresh token is refreshed from the proxy's own grant)."""
        raise BankError("invalid_grant", "the bank gave no refresh token", "no refresh token")

    async def status(self) -> Mapping[str, Any]:
        return await self.client.status()


def _kept(conn_data: Mapping[str, Any]) -> Created:
    """The session as the transaction kept it (see Created.conn_data)."""
    session_id, transaction = conn_data.get("session"), conn_data.get("transaction")
    token_url, expires_at = conn_data.get("token_url"), conn_data.get("expires_at")
    if not (isinstance(session_id, str) and isinstance(transaction, str)
            and isinstance(token_url, str) and isinstance(expires_at, int | float)):
        raise unusable("the login state is damaged")
    return Created(session_id, transaction, token_url, "", "", float(expires_at))


def _left(deadline: float) -> float:
    """Seconds left before ``deadline`` for one call (a little at least, so that a call
    at the very end fails as a timeout, not as a nonsensical limit)."""
    return max(0.05, deadline - time.monotonic())
