"""BankID with biometrics, App2App (the seed's steps 3 to 11): a ``kind: ciba`` bank with
``permissions:``, the proxy playing the merchant backend.

``start_decoupled`` gets the proxy's API token (client credentials, ``permissions.scopes``:
``permissions/app2app permissions/client``), registers the login's permission (its
statement: a plain login, or the payment the user is asked to approve), and starts the
login at app-authorize (``start_endpoint``: the discovery key
``app_authentication_endpoint``) with the ``permissionToken`` as ``login_hint_token``, the
app's ``device_info`` and, with ``assertion: access_token``, the API token as
``client_assertion``. Its ``authorize_uri`` is used only when it is a universal link;
otherwise the login cannot be App2App and fails (the proxy then takes ``fallback_acr``,
as BankID says to do). ``poll`` is CIBA's, authenticated the same way, and checks the ID
token's ``permission_digest`` against the permission registered.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from federation.api_token import ApiToken, unreachable
from federation.bank_http import BankReply, BankUnreachable, call_bank, safe_text
from federation.ciba import DENIED_ERRORS, CibaAdapter, _malformed
from federation.client_auth import ASSERTION_TYPE
from federation.metrics import Operation
from federation.permissions import Statement, check_digest, statement_for
from federation.protocol import BankError, DecoupledRequest, DecoupledStart
from federation.settings import BankSettings, Permissions

# the seed: exp "sets the maximum time by which the permission must be granted and will be
# set just a few minutes into the future"
PERMISSION_LIFETIME = 300
DIGESTS = "permission_digests"  # DecoupledStart.context: what permission_digest may be
# a permissionToken is a JWS (the seed's example): base64url parts and dots
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{1,4096}")
# the seed, step 6: "Device Platform, which is the literal string ios", "Device
# Manufacturer", "Device model", as JSON fields p, ma, mo, URL-safe base64 encoded
DEVICE_FIELDS = ("p", "ma", "mo")
_DEVICE_VALUE = re.compile(r"[\x20-\x7e]{1,64}")


class BankIdAdapter(CibaAdapter):
    def __init__(self, settings: BankSettings, session: aiohttp.ClientSession,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(settings, session, **kwargs)
        assert settings.permissions is not None  # the registry builds this with permissions
        self.permissions: Permissions = settings.permissions
        self._api_token = ApiToken(settings, session, self.permissions.scopes, self._auth)

    async def start_decoupled(self, request: DecoupledRequest) -> DecoupledStart:
        # the seed, "Prerequisites": "we require merchants to supply both: The user's NNIN;
        # Information about the device the merchant's app is installed on."
        if not request.login_hint:
            raise BankError("invalid_request", "this bank needs the user's login_hint",
                            "app-authorize: no login_hint")
        device_info = request.extra.get("device_info")
        if not device_info:
            raise BankError("invalid_request", "this bank needs the app's device_info",
                            "app-authorize: no device_info")
        doc = await self._doc()
        endpoint = self._endpoint(doc, self.settings.start_endpoint)
        statement = statement_for(self.settings, self.permissions, request.authorization_details)
        token = await self._register(doc, statement, request)
        form = {
            "login_hint_token": token,
            "scope": " ".join(self.settings.scopes),
            "device_info": device_info,
        }
        if self.settings.upstream_acr_values:
            form["acr_values"] = " ".join(self.settings.upstream_acr_values)
        if request.requested_expiry > 0:
            form["requested_expiry"] = str(min(request.requested_expiry, PERMISSION_LIFETIME))
        reply = await self._send(doc, endpoint, form, audience=self.settings.issuer,
                                 operation="backchannel")
        where = f"app-authorize: HTTP {reply.status}, error {reply.error_code()}"
        if reply.status != 200:
            raise _app_authorize_error(reply.status, reply.error_code(), where)
        body = reply.json_object()
        if body is None:
            raise _malformed("app-authorize: HTTP 200, body is not a JSON object")
        started = self._acknowledgement(body)
        # the seed, step 8: "If the link you receive is not a universal link you cannot
        # perform an App2App authentication and have to fall back to a different method."
        if started.deep_link is None:
            raise BankError("server_error", "the bank cannot start App2App on this device",
                            f"app-authorize: {self.settings.deep_link_field} is not a "
                            "universal link")  # fmt: skip
        return DecoupledStart(started.auth_req_id, started.expires_in, started.interval,
                              started.deep_link, context={DIGESTS: statement.digests()})

    def _check_claims(self, claims: Mapping[str, Any], auth_req_id: str,
                      context: Mapping[str, Any]) -> None:  # fmt: skip
        super()._check_claims(claims, auth_req_id, context)
        check_digest(claims, [str(d) for d in context.get(DIGESTS) or ()])

    # -- the permissions API (the seed, step 5) ----------------------------------

    async def _register(self, doc: Mapping[str, Any], statement: Statement,
                        request: DecoupledRequest) -> str:  # fmt: skip
        """POST the permission; its ``permissionToken``."""
        now = int(time.time())
        body = {
            "type": statement.type,
            "loa": self.permissions.loa,
            # "iat and exp are timestamps in seconds since the UNIX epoch. iat can be at
            # most 1 minute into the past."
            "iat": now,
            "exp": now + min(PERMISSION_LIFETIME, max(request.requested_expiry, 60)),
            "permission": statement.permission,
            # "For the case of the App2App flow, include app2app as the intent."
            "intents": list(self.permissions.intents),
            "loginHint": [{"scheme": self.permissions.login_hint_scheme,
                           "value": request.login_hint}],
            # "You'll very likely also want to include the app_callback_uri parameter to
            # specify where the user will return after the authentication has completed."
            "app_callback_uri": request.return_uri,
        }
        endpoint = self.permissions.token_endpoint or self._endpoint(doc, "token_endpoint")
        token = await self._api_token.get(endpoint)
        reply = await self._permission_call(body, token)
        if reply.status == 401:  # RFC 6750 §3.1 invalid_token: a new token, once
            token = await self._api_token.get(endpoint, refused=token)
            reply = await self._permission_call(body, token)
        code = _code(reply)
        where = f"permissions: HTTP {reply.status}, error {code}"
        if reply.status >= 500:
            raise BankError("temporarily_unavailable", "the bank is temporarily unavailable",
                            where)
        if reply.status in (401, 403):
            raise BankError("server_error", "the bank refused the proxy's API credentials",
                            where)
        if reply.status not in (200, 201):
            # the user's NNIN unknown or malformed, not enrolled ...: not this user, here
            raise BankError("access_denied", "the bank refused the login", where)
        answer = reply.json_object() or {}
        permission_token = answer.get("permissionToken")
        if not isinstance(permission_token, str) or not _TOKEN.fullmatch(permission_token):
            raise _malformed("permissions: permissionToken missing or not a token")
        return permission_token

    async def _permission_call(self, body: Mapping[str, Any], token: str) -> BankReply:
        try:
            return await call_bank(
                self._session, "POST", self.permissions.endpoint,
                time_limit=self.settings.timeout, json_body=body,
                headers={"Authorization": f"Bearer {token}"},
                ssl_context=self._auth.ssl_context, bank_id=self.settings.id,
                operation="permission",
            )  # fmt: skip
        except BankUnreachable as exc:
            raise unreachable(exc) from exc

    # -- client authentication by the API token (assertion: access_token) ---------

    async def _send(self, doc: Mapping[str, Any], url: str, data: Mapping[str, str], *,
                    operation: Operation, audience: str | None = None) -> BankReply:  # fmt: skip
        """The seed, steps 7 and 10: ``client_assertion=<access token from step 3>`` with
        ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``
        at app-authorize and the token endpoint. A 401 (the token lapsed at the bank)
        gets a new token and one more try."""
        if self.settings.assertion != "access_token":
            return await super()._send(doc, url, data, operation=operation, audience=audience)
        endpoint = self.permissions.token_endpoint or self._endpoint(doc, "token_endpoint")
        token = await self._api_token.get(endpoint)
        reply = await self._post(url, _asserted(data, token), {}, operation)
        if reply.status == 401:
            token = await self._api_token.get(endpoint, refused=token)
            reply = await self._post(url, _asserted(data, token), {}, operation)
        return reply


# app-authorize refusals that say our request or credentials are wrong, not the user
_OUR_FAULT = frozenset({"invalid_request", "invalid_client", "unauthorized_client",
                        "invalid_scope", "invalid_grant"})


def _app_authorize_error(status: int, code: str, detail: str) -> BankError:
    """The seed, step 7: "If the user is not registered for BankID with biometrics, or if
    the device does not match the user's" app-authorize refuses: not this user on this
    device, access_denied (the proxy takes ``fallback_acr`` first). The bank's code is
    named to the merchant only from CIBA's fixed set; it is always in the log line."""
    if status >= 500:
        return BankError("temporarily_unavailable", "the bank is temporarily unavailable", detail)
    if code in _OUR_FAULT or (status in (401, 403) and code not in DENIED_ERRORS):
        return BankError("server_error", "the bank refused the login request", detail)
    if code in DENIED_ERRORS:
        return BankError("access_denied", f"the bank refused the login: {code}", detail)
    return BankError("access_denied", "the bank refused the login", detail)


def _asserted(data: Mapping[str, str], token: str) -> dict[str, str]:
    return {**data, "client_assertion_type": ASSERTION_TYPE, "client_assertion": token}


def _code(reply: BankReply) -> str:
    """The API's error code for the log line: OAuth's ``error``, else a ``code``."""
    code = reply.error_code()
    body = reply.json_object()
    if code == "-" and body is not None and isinstance(body.get("code"), str | int):
        return safe_text(str(body["code"]), 64)
    return code


def device_info_problem(value: str) -> str | None:
    """Why ``value`` is not BankID's device_info (URL-safe base64, no padding needed, of a
    JSON object with exactly the string fields p, ma and mo), or None when it is."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+={0,2}", value):
        return "device_info must be URL-safe base64"
    try:
        raw = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
        info = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):
        return "device_info must encode a JSON object"
    if not isinstance(info, dict) or sorted(info) != sorted(DEVICE_FIELDS):
        return "device_info must be a JSON object with p, ma and mo"
    if not all(isinstance(info[k], str) and _DEVICE_VALUE.fullmatch(info[k])
               for k in DEVICE_FIELDS):
        return "device_info p, ma and mo must be short printable strings"
    return None
