"""BankID with biometrics, App2App, as the seed documents it: POST /permissions/v1/ (the
permissions API: Bearer, a client-credentials token with ``permissions/app2app`` and
``permissions/client``) and POST /oidc/v1/app-authorize (``login_hint_token`` = the
permissionToken, ``device_info``, the API token as ``client_assertion``). The login is
then a CIBA request (ciba.py): its bank app page (ciba_app.py) shows the payment, and
the CIBA grant at /token answers with a ``permission_digest`` in the ID token.

Knobs (SandboxBank): ``permission_refuse`` / ``app_authorize_refuse`` make either answer
an error code; ``app_link_scheme`` makes ``authorize_uri`` a custom-scheme link (not a
universal link); ``permission_digest`` picks how the ID token names the permission.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from federation.sandbox.appkeys import BANK
from federation.sandbox.bank import SandboxBank, new_token
from federation.sandbox.ciba import open_request
from federation.sandbox.client_auth import JWT_BEARER, authenticate_client
from federation.sandbox.errors import OAuthError
from federation.sandbox.models import Permission, SandboxClient
from federation.sandbox.token_response import NO_STORE

PERMISSIONS_PATH = "/permissions/v1/"
APP_AUTHORIZE_PATH = "/oidc/v1/app-authorize"
API_SCOPES = ("permissions/app2app", "permissions/client")
PERMISSION_TYPES = ("authentication.v1", "payment.v1", "text.v1")
_NNIN = re.compile(r"[0-9]{11}")
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")
# the permissions API's refusals, and the HTTP status of each
PERMISSION_ERRORS = {"invalid_request": 400, "invalid_login_hint": 400, "user_not_found": 404,
                     "invalid_token": 401, "insufficient_scope": 403, "server_error": 500}
# app-authorize's refusals (CIBA §13 and BankID's own), and the HTTP status of each
APP_AUTHORIZE_ERRORS = {"invalid_request": 400, "invalid_client": 401, "unknown_user_id": 400,
                        "device_mismatch": 400, "expired_login_hint_token": 400,
                        "access_denied": 403, "server_error": 500}


def app_authorize_endpoint(bank: SandboxBank) -> str:
    return f"{bank.issuer}{APP_AUTHORIZE_PATH}"


def _b64_json(value: Any) -> Any:
    """The JSON value URL-safe base64 ``value`` encodes; OAuthError invalid_request if it
    does not."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise OAuthError("invalid_request", "not URL-safe base64 without padding")
    try:
        return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise OAuthError("invalid_request", "does not encode JSON") from exc


def token_assertion_client(bank: SandboxBank, form: Mapping[str, str]) -> SandboxClient | None:
    """The client whose API token is the ``client_assertion`` (the seed: "client_assertion=
    <access token from step 3>"), or None when the assertion is no live API token."""
    if form.get("client_assertion_type") != JWT_BEARER:
        return None
    grant = bank.api_grant(form.get("client_assertion"))
    if grant is None or not set(API_SCOPES) <= set(grant.scope.split()):
        return None
    return bank.clients.get(grant.client_id)


def _refusal(code: str, errors: Mapping[str, int]) -> OAuthError:
    return OAuthError(code, "the bank refuses this request (sandbox knob)", errors.get(code, 400))


# -- POST /permissions/v1/ -----------------------------------------------------------


def _check_statement(kind: str, statement: Any) -> dict[str, Any]:
    if not isinstance(statement, dict) or not isinstance(statement.get("nonce"), str):
        raise OAuthError("invalid_request", "the permission statement needs a nonce")
    if kind == "payment.v1":
        payments = statement.get("payments")
        if not isinstance(payments, list) or not payments or not all(
            isinstance(p, dict) and isinstance(p.get("amount"), str)
            and _AMOUNT.fullmatch(p["amount"]) and isinstance(p.get("currency"), str)
            and isinstance(p.get("creditorName"), str) for p in payments
        ):
            raise OAuthError("invalid_request", "payments need amount, currency, creditorName")
    if kind == "text.v1" and not isinstance(statement.get("text"), str):
        raise OAuthError("invalid_request", "text.v1 needs a text")
    return statement


def register(bank: SandboxBank, client_id: str, body: Any) -> tuple[str, Permission]:
    """Validate a permission (the seed, step 5) and keep it; its permissionToken."""
    if not isinstance(body, dict):
        raise OAuthError("invalid_request", "the body must be a JSON object")
    kind = body.get("type")
    if kind not in PERMISSION_TYPES:
        raise OAuthError("invalid_request", f"type must be one of {PERMISSION_TYPES}")
    now = time.time()
    iat, exp = body.get("iat"), body.get("exp")
    # "iat can be at most 1 minute into the past."
    if not isinstance(iat, int) or not now - 60 <= iat <= now + 5:
        raise OAuthError("invalid_request", "iat must be now, at most a minute past")
    if not isinstance(exp, int) or not now < exp <= now + 3600:
        raise OAuthError("invalid_request", "exp must be a few minutes ahead")
    if "app2app" not in (body.get("intents") or ()):
        raise OAuthError("invalid_request", "intents must include app2app")
    statement = _check_statement(kind, _b64_json(body.get("permission")))
    # "The nonce must be a unique value for each permission you register."
    if statement["nonce"] in bank.permission_nonces:
        raise OAuthError("invalid_request", "this nonce was used before")
    hints = body.get("loginHint")
    hint = hints[0] if isinstance(hints, list) and len(hints) == 1 else None
    if not isinstance(hint, dict) or hint.get("scheme") != "nnin":
        raise OAuthError("invalid_request", "loginHint must be one nnin")
    if not isinstance(hint.get("value"), str) or not _NNIN.fullmatch(hint["value"]):
        raise OAuthError("invalid_login_hint", "the nnin must be 11 digits")
    if hint["value"] != bank.user.nnin:
        raise OAuthError("user_not_found", "no BankID user has this nnin", 404)
    callback = body.get("app_callback_uri")
    bank.permission_nonces.add(statement["nonce"])
    token = new_token()
    permission = Permission(client_id, kind, body["permission"], statement, hint["value"],
                            callback if isinstance(callback, str) else None, float(exp))
    bank.permissions[token] = permission
    return token, permission


async def permissions(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    header = request.headers.get("Authorization", "")
    grant = bank.api_grant(header[7:].strip() if header[:7].lower() == "bearer " else None)
    try:
        if grant is None:
            raise OAuthError("invalid_token", "no live API token", 401)
        if not set(API_SCOPES) <= set(grant.scope.split()):
            raise OAuthError("insufficient_scope", f"the token needs {' '.join(API_SCOPES)}", 403)
        if bank.permission_refuse is not None:
            raise _refusal(bank.permission_refuse, PERMISSION_ERRORS)
        try:
            body = await request.json()
        except ValueError as exc:
            raise OAuthError("invalid_request", "the body is not JSON") from exc
        token, _ = register(bank, grant.client_id, body)
    except OAuthError as exc:
        return exc.response()
    return web.json_response({"id": f"1.BY.{new_token()}", "permissionToken": token},
                             status=201, headers=NO_STORE)


# -- POST /oidc/v1/app-authorize -------------------------------------------------------


def _check_device(bank: SandboxBank, value: str | None) -> None:
    device = _b64_json(value) if value else None
    if not isinstance(device, dict) or sorted(device) != ["ma", "mo", "p"]:
        raise OAuthError("invalid_request", "device_info must encode {p, ma, mo}")
    if device != bank.user.device:
        raise OAuthError("device_mismatch", "the user's BankID app is on another device")


async def app_authorize(request: web.Request) -> web.Response:
    bank = request.app[BANK]
    form = {k: str(v) for k, v in (await request.post()).items()}
    try:
        client = token_assertion_client(bank, form)
        if client is None:
            raise OAuthError("invalid_client", "client_assertion must be a live API token", 401)
        if bank.app_authorize_refuse is not None:
            raise _refusal(bank.app_authorize_refuse, APP_AUTHORIZE_ERRORS)
        permission = bank.permissions.get(form.get("login_hint_token", ""))
        if permission is None or permission.client_id != client.client_id:
            raise OAuthError("invalid_request", "login_hint_token is no permission of yours")
        if permission.expires_at <= time.time():
            raise OAuthError("expired_login_hint_token", "the permission has expired")
        _check_device(bank, form.get("device_info"))
        # the permission names where the bank app returns (CIBA's app_callback_uri)
        ciba_form = dict(form)
        if permission.app_callback_uri:
            ciba_form["app_callback_uri"] = permission.app_callback_uri
        req = open_request(bank, client, ciba_form)
    except OAuthError as exc:
        return exc.response()
    req.permission = permission
    link = (f"{bank.app_link_scheme}://app2app/{req.handle}" if bank.app_link_scheme
            else f"{bank.issuer}/app2app/{req.handle}")
    body = {"authorize_uri": link, "auth_req_id": req.auth_req_id,
            "expires_in": round(req.expires_at - time.time()), "interval": req.interval}
    return web.json_response(body, headers=NO_STORE)


def authenticate(bank: SandboxBank, request: web.Request, form: Mapping[str, str],
                 audiences: list[str]) -> SandboxClient:  # fmt: skip
    """A client at /token: by its API token as client_assertion (BankID), else as it
    registered (client_auth.py)."""
    if form.get("grant_type") != "client_credentials":
        client = token_assertion_client(bank, form)
        if client is not None and "Authorization" not in request.headers:
            return client
    return authenticate_client(bank, request, form, audiences)
