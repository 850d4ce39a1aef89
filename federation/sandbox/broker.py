"""The sandbox session broker: a fake of an identity broker's REST session API (the
shape of Signicat's Authentication REST API, ``flow: headless``) with an "itsme app".

A merchant backend (the proxy) gets an API token (client credentials), creates a
session, sends the user's app to the session's ``authorizationRequestUrl``, validates
the code the app brings back at ``tokenRequestUrl`` and reads the session until it
ends. The broker's state is one object, all in memory; set the knobs between
requests to make each fault the flow must survive.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

from federation.sandbox.models import SandboxClient

TOKEN_PATH = "/auth/open/connect/token"
API_PATH = "/auth/rest"
TOKEN_REQUEST_PATH = "/idps/itsme/login-headless/token"
APP_PATH = "/itsme/app"
FOREIGN_ORIGIN = "https://tokens.elsewhere.example"
FINAL = ("SUCCESS", "ABORT", "ERROR")
Decision = Literal["approve", "abort"]


def _default_subject() -> dict[str, Any]:
    """The seed's example user."""
    return {
        "id": "tXOq9614vLHkXBkENWcZGQO02Fc98IPaHq6iRwK-ytA=",
        "idpId": "rpx5rrbsn4ktvhm3m0q4uh2iepsdat34i9vf",
        "name": "Maxence Legrand",
        "firstName": "Maxence",
        "lastName": "Legrand",
        "dateOfBirth": "1981-04-24",
        "nin": {"value": "81042419835", "issuingCountry": "BE", "type": "PERSON"},
    }


@dataclass(frozen=True)
class BrokerRequest:
    """One request as the broker received it: its JSON body, or its form."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)


@dataclass
class BrokerSession:
    """One authentication session. Identifiers stay out of ``repr``."""

    id: str
    transaction_id: str = field(repr=False)
    state: str = field(repr=False)
    handle: str = field(repr=False)  # the itsme app page's key
    redirect_url: str
    requested_attributes: list[str]
    created_at: float
    expires_at: float
    status: str = "CREATED"
    code: str | None = field(default=None, repr=False)  # issued when the user approves
    validated: bool = False  # the code came back to tokenRequestUrl
    reads_left_pending: int = 0  # after validation: reads that still answer CREATED

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at <= (time.time() if now is None else now)


class SandboxBroker:
    """A fake session broker. ``base`` is its origin (set when served)."""

    def __init__(
        self,
        base: str = "",
        clients: Iterable[SandboxClient] = (),
        *,
        redirect_urls: Iterable[str] = (),
        account_id: str | None = None,
        provider: str = "itsme",
        redirect_parameter: str = "itsme_redirect_url",
        scopes: Iterable[str] = ("signicat-api",),
    ) -> None:
        self.base = base.rstrip("/")
        self.clients: dict[str, SandboxClient] = {c.client_id: c for c in clients}
        self.seen_assertion_ids: set[str] = set()
        # the redirect URLs the merchant configured at the broker (an allowlist)
        self.redirect_urls = list(redirect_urls)
        self.account_id = account_id
        self.provider = provider
        self.redirect_parameter = redirect_parameter
        self.scopes = tuple(scopes)
        # knobs
        self.decision: Decision | None = "approve"  # the app answers at once; None: a page
        self.state_mismatch = False  # the app returns another state than its URL had
        self.wrong_code = False  # the app returns a code the broker never issued
        self.wrong_transaction_id = False  # the created session names another transactionId
        self.end_with = "SUCCESS"  # what a validated session ends as ("ERROR")
        self.session_lifetime = 1200  # seconds
        self.foreign_token_url = False  # tokenRequestUrl on another origin
        self.api_token_lifetime = 3600
        self.delay = 0.0  # seconds every API answer waits (a slow API)
        self.pending_reads = 0  # a validated session answers CREATED to this many reads
        self.subject: dict[str, Any] = _default_subject()
        self.loa: str | None = "high"
        # odd-input tests: each rewrites the JSON the broker would answer (and may return
        # any JSON value, or bytes sent as they are)
        self.create_answer: Callable[[dict[str, Any]], Any] | None = None
        self.read_answer: Callable[[dict[str, Any]], Any] | None = None
        # observations
        self.requests: list[BrokerRequest] = []
        # state
        self.api_tokens: dict[str, float] = {}  # token -> expires at
        self.sessions: dict[str, BrokerSession] = {}  # by id

    # -- URLs ------------------------------------------------------------------

    @property
    def api(self) -> str:
        return f"{self.base}{API_PATH}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base}{TOKEN_PATH}"

    def token_request_url(self) -> str:
        origin = FOREIGN_ORIGIN if self.foreign_token_url else self.base
        return f"{origin}{TOKEN_REQUEST_PATH}"

    # -- API tokens --------------------------------------------------------------

    def issue_api_token(self) -> str:
        token = secrets.token_urlsafe(32)
        self.api_tokens[token] = time.time() + self.api_token_lifetime
        return token

    def api_token_valid(self, token: str) -> bool:
        expires = self.api_tokens.get(token)
        return expires is not None and expires > time.time()

    def expire_api_tokens(self) -> None:
        """Every API token issued so far stops working (the next call gets a 401)."""
        self.api_tokens.clear()

    # -- sessions ------------------------------------------------------------------

    def open_session(self, redirect_url: str, requested: list[str]) -> BrokerSession:
        now = time.time()
        account = self.account_id or "a-sandbox"
        session = BrokerSession(
            id=str(uuid.uuid4()),
            transaction_id=str(uuid.uuid4()),
            state=f"{secrets.token_urlsafe(32)}:{account}",
            handle=secrets.token_urlsafe(32),
            redirect_url=redirect_url,
            requested_attributes=requested,
            created_at=now,
            expires_at=now + self.session_lifetime,
        )
        self.sessions[session.id] = session
        return session

    def session(self, session_id: str | None = None) -> BrokerSession:
        """The session ``session_id``; None: the most recent one."""
        if session_id is None:
            if not self.sessions:
                raise LookupError("the sandbox broker created no session")
            return next(reversed(self.sessions.values()))
        return self.sessions[session_id]

    def by_handle(self, handle: str) -> BrokerSession | None:
        return next((s for s in self.sessions.values() if s.handle == handle), None)

    def authorization_url(self, session: BrokerSession) -> str:
        query = urlencode({"response_type": "code", "client_id": "sandbox-itsme",
                           "redirect_uri": session.redirect_url, "state": session.state})
        return f"{self.base}{APP_PATH}/{session.handle}?{query}"

    def decide(self, session: BrokerSession, decision: Decision) -> str:
        """The user's answer in the itsme app; the URL the app opens next (the
        merchant's redirect URL with ``code`` and ``state``, or ``error``)."""
        state = session.state if not self.state_mismatch else secrets.token_urlsafe(32)
        if decision == "abort":
            session.status = "ABORT"
            query = {"error": "access_denied", "error_description": "the user cancelled",
                     "state": state}
        else:
            session.code = secrets.token_urlsafe(24)
            code = session.code if not self.wrong_code else secrets.token_urlsafe(24)
            query = {"code": code, "state": state}
        separator = "&" if "?" in session.redirect_url else "?"
        return session.redirect_url + separator + urlencode(query)

    def describe(self, session: BrokerSession) -> dict[str, Any]:
        """The session as ``GET {api}/sessions/{id}`` shows it (the seed's shape)."""
        status = session.status
        if session.validated and session.reads_left_pending > 0:
            session.reads_left_pending -= 1
            status = "CREATED"
        body: dict[str, Any] = {
            "id": session.id,
            "accountId": self.account_id or "a-sandbox",
            "status": status,
            "idpData": {
                "authorizationRequestUrl": self.authorization_url(session),
                "tokenRequestUrl": self.token_request_url(),
                "transactionId": session.transaction_id if not self.wrong_transaction_id
                else str(uuid.uuid4()),
            },
            "allowedProviders": [self.provider],
            "flow": "headless",
            "requestedAttributes": session.requested_attributes,
            "sessionLifetime": self.session_lifetime,
            "expiresAt": datetime.fromtimestamp(session.expires_at, UTC).isoformat(),
        }
        if status == "SUCCESS":
            body["provider"] = self.provider
            wanted = set(session.requested_attributes)
            body["subject"] = {k: v for k, v in self.subject.items()
                               if k == "id" or not wanted or k in wanted}
            if self.loa is not None:
                body["loa"] = self.loa
        return body
