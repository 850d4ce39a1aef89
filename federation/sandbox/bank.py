"""The sandbox bank's state: registrations, knobs tests turn, and everything it
has issued. One object, all in memory; the aiohttp handlers only read and write it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import Any

from federation.sandbox.keys import SigningKey, generate_key
from federation.sandbox.models import (
    AccessGrant,
    ApiGrant,
    AuthRequest,
    CibaRequest,
    CibaRequestClosed,
    CodeGrant,
    NativeRequest,
    NoRecordedRequest,
    Permission,
    RecordedRequest,
    RefreshGrant,
    SandboxClient,
    SandboxUser,
    UnknownCibaRequest,
)

CODE_LIFETIME = 60
DEFAULT_ACR = "urn:sandbox:loa:substantial"
ACR_VALUES = (DEFAULT_ACR, "urn:sandbox:loa:high")
AMR = ("pwd", "mfa")
ID_TOKEN_FAULTS = (
    "wrong_key",
    "alg_none",
    "wrong_aud",
    "wrong_iss",
    "expired",
    "wrong_nonce",
    "unknown_kid",
)
DECISIONS = ("approve", "deny")
# how the ID token of a login with a BankID permission names it (permission_digest):
# SHA-256 of the statement as registered, of the JSON it encodes, none, or another's
DIGEST_FORMS = ("statement", "json", "absent", "wrong")


def new_token() -> str:
    return secrets.token_urlsafe(32)


class SandboxBank:
    """A fake upstream OpenID Provider. Set the knobs between requests."""

    def __init__(
        self,
        issuer: str = "",
        clients: Iterable[SandboxClient] = (),
        *,
        user: SandboxUser | None = None,
        auto_approve: bool = True,
        alg: str = "ES256",
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.clients: dict[str, SandboxClient] = {c.client_id: c for c in clients}
        self.user = user if user is not None else SandboxUser()
        self.auto_approve = auto_approve
        self.alg = alg
        # knobs
        self.deny = False
        self.token_delay = 0.0
        self._id_token_fault: str | None = None
        self.refuse_refresh = False
        self.access_token_lifetime = 300
        self.issue_refresh_tokens = True
        self.iss_parameter = True
        # knobs: CIBA poll mode (federation/sandbox/ciba.py); auto_approve does not apply
        self.ciba_deep_link = False  # answer an authorize_uri to the bank app's page
        self.ciba_interval = 5
        self.ciba_expires_in = 120
        self.ciba_refuse: str | None = None  # /bc-authorize answers this error code
        self.ciba_slow_down = 0  # the next N polls of a pending request answer slow_down
        self.ciba_id_token_only = False  # token response: id_token, token_type, expires_in
        self._ciba_decision: str | None = None
        # knobs: browser-less App2App (federation/sandbox/native.py)
        self.native_endpoint = False
        # knobs: BankID with biometrics (federation/sandbox/bankid.py): the permissions API
        # and app-authorize answer these error codes; authorize_uri with this scheme
        # instead of a universal link; how the ID token names the permission
        self.permission_refuse: str | None = None
        self.app_authorize_refuse: str | None = None
        self.app_link_scheme: str | None = None
        self._permission_digest = "statement"
        self.api_token_lifetime = 300
        # knobs: RFC 9396 (federation/sandbox/rar.py): the authorization_details types the
        # bank takes as they are (its metadata lists them; "payment.v1": BankID's
        # permission items, in PAR only); its PAR endpoint; a token-response answer of
        # its own instead of what the user approved
        self.rar_types: tuple[str, ...] = ()
        self.par_endpoint = False
        self.rar_answer: list[Any] | None = None
        # observations
        self.requests: list[RecordedRequest] = []
        # state
        self.key: SigningKey = generate_key(alg)
        self.pending: dict[str, AuthRequest] = {}
        # (client_id, state) of the consent pages answered: shown again without buttons
        self.answered: set[tuple[str, str]] = set()
        self.codes: dict[str, CodeGrant] = {}
        self.access_tokens: dict[str, AccessGrant] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.seen_assertion_ids: set[str] = set()
        self.ciba_requests: dict[str, CibaRequest] = {}  # by auth_req_id
        self.api_tokens: dict[str, ApiGrant] = {}  # client-credentials tokens
        self.permissions: dict[str, Permission] = {}  # by permissionToken
        self.permission_nonces: set[str] = set()
        self.pushed: dict[str, tuple[str, dict[str, str], float]] = {}  # PAR, by request_uri
        self.native_requests: dict[str, NativeRequest] = {}  # by bank app page handle

    @property
    def id_token_fault(self) -> str | None:
        """The defect of the next ID tokens (one of ``ID_TOKEN_FAULTS``), or None."""
        return self._id_token_fault

    @id_token_fault.setter
    def id_token_fault(self, fault: str | None) -> None:
        if fault is not None and fault not in ID_TOKEN_FAULTS:
            raise ValueError(f"unknown id_token_fault {fault!r}; use one of {ID_TOKEN_FAULTS}")
        self._id_token_fault = fault

    @property
    def ciba_decision(self) -> str | None:
        """Decide every new CIBA request at once: "approve", "deny", or None (wait)."""
        return self._ciba_decision

    @ciba_decision.setter
    def ciba_decision(self, decision: str | None) -> None:
        if decision is not None and decision not in DECISIONS:
            raise ValueError(f"unknown ciba_decision {decision!r}; use one of {DECISIONS}")
        self._ciba_decision = decision

    @property
    def permission_digest(self) -> str:
        """How the next ID tokens name the login's permission (one of ``DIGEST_FORMS``)."""
        return self._permission_digest

    @permission_digest.setter
    def permission_digest(self, form: str) -> None:
        if form not in DIGEST_FORMS:
            raise ValueError(f"unknown permission_digest {form!r}; use one of {DIGEST_FORMS}")
        self._permission_digest = form

    def issue_api_token(self, client_id: str, scope: str) -> str:
        token = new_token()
        self.api_tokens[token] = ApiGrant(client_id, scope, time.time() + self.api_token_lifetime)
        return token

    def api_grant(self, token: str | None) -> ApiGrant | None:
        """The client-credentials token ``token``, while it lives."""
        grant = self.api_tokens.get(token or "")
        return grant if grant is not None and grant.expires_at > time.time() else None

    def expire_api_tokens(self) -> None:
        """Every API token lapses at once (a client must fetch a new one)."""
        self.api_tokens.clear()

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    def rotate_keys(self) -> None:
        """A new signing key with a new kid; /jwks serves only the new one from now on."""
        self.key = generate_key(self.alg)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self.key.public_jwk)]}

    def last(self, path: str) -> RecordedRequest:
        """The last request received on ``path`` (e.g. ``"/token"``)."""
        for recorded in reversed(self.requests):
            if recorded.path == path:
                return recorded
        raise NoRecordedRequest(f"the sandbox bank received no request to {path}")

    # -- issuing ---------------------------------------------------------

    def issue_code(self, request: AuthRequest) -> str:
        now = int(time.time())
        code = new_token()
        self.codes[code] = CodeGrant(
            request=request, sub=self.user.sub, auth_time=now, expires_at=now + CODE_LIFETIME
        )
        return code

    def consume_code(self, code: str) -> CodeGrant | None:
        """The code's grant, once: a second call gets None (codes are single use)."""
        grant = self.codes.pop(code, None)
        if grant is None or grant.expires_at <= time.time():
            return None
        return grant

    def issue_access_token(self, client_id: str, sub: str, scope: str) -> str:
        now = int(time.time())
        token = new_token()
        self.access_tokens[token] = AccessGrant(
            client_id=client_id,
            sub=sub,
            scope=scope,
            issued_at=now,
            expires_at=now + self.access_token_lifetime,
        )
        return token

    def active_access_token(self, token: str) -> AccessGrant | None:
        grant = self.access_tokens.get(token)
        if grant is None or grant.expires_at <= time.time():
            return None
        return grant

    def issue_refresh_token(self, grant: RefreshGrant) -> str:
        token = new_token()
        self.refresh_tokens[token] = grant
        return token

    def user_claims(self, scope: str) -> dict[str, Any]:
        """The user's claims the scope asks for: all with ``profile``; email ones with ``email``."""
        scopes = scope.split()
        if "profile" in scopes:
            return dict(self.user.claims)
        if "email" in scopes:
            return {k: v for k, v in self.user.claims.items() if k.startswith("email")}
        return {}

    # -- CIBA decisions ----------------------------------------------------

    def ciba_request(self, auth_req_id: str | None = None) -> CibaRequest:
        """The CIBA request ``auth_req_id``; None: the most recent one."""
        if auth_req_id is None:
            if not self.ciba_requests:
                raise UnknownCibaRequest("the sandbox bank received no CIBA request")
            return next(reversed(self.ciba_requests.values()))
        try:
            return self.ciba_requests[auth_req_id]
        except KeyError:
            raise UnknownCibaRequest("unknown auth_req_id") from None

    def ciba_approve(self, auth_req_id: str | None = None) -> CibaRequest:
        return self.ciba_decide("approve", auth_req_id)

    def ciba_deny(self, auth_req_id: str | None = None) -> CibaRequest:
        return self.ciba_decide("deny", auth_req_id)

    def ciba_decide(self, decision: str, auth_req_id: str | None = None) -> CibaRequest:
        """The user's answer on the bank app; a request is decided once, before it expires."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}")
        req = self.ciba_request(auth_req_id)
        if not req.takes_decision():
            raise CibaRequestClosed(f"the CIBA request is {req.status} or expired")
        req.status = "approved" if decision == "approve" else "denied"
        req.sub = self.user.sub
        req.decided_at = int(time.time())
        return req
