"""The decoupled adapter for banks of ``kind: ciba``: OpenID Connect Client-Initiated
Backchannel Authentication Core 1.0 (CIBA), poll mode.

``start_decoupled`` sends the backchannel authentication request (CIBA §7) and
returns the bank's ``auth_req_id``; ``poll`` asks the token endpoint once (§10.1)
and answers Pending until the user has approved. BankID's "app-authorize"
App2App extension may add a universal link to the acknowledgement (the field
``settings.deep_link_field``); the proxy sends the user's app there.
The start endpoint is the discovery key ``settings.start_endpoint`` (CIBA's
``backchannel_authentication_endpoint`` by default). RFC 9396 ``authorization_details``
go with the backchannel request ("backchannel authentication requests as defined in
[OID-CIBA]", §3) to a bank whose metadata lists their types.
A bank that wants its logins registered upfront as permissions (BankID with
biometrics) has its own adapter on top of this one: :mod:`federation.bankid`.
Every failure is a BankError; discovery, client authentication, ID token
checks, userinfo and refresh are those of :class:`federation.oidc_base.OidcBankBase`.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Mapping
from typing import Any

from federation.idtoken import DESCRIPTION as ID_TOKEN_DESCRIPTION
from federation.oidc_base import OidcBankBase
from federation.oidc_params import positive_int, usable_deep_link
from federation.protocol import (
    BankError,
    BankResult,
    DecoupledRequest,
    DecoupledStart,
    Pending,
)
from federation.rar import cannot_carry, encoded, granted, listed, types_of

GRANT_TYPE = "urn:openid:params:grant-type:ciba"
AUTH_REQ_ID_CLAIM = "urn:openid:params:jwt:claim:auth_req_id"
# CIBA §7.3, interval: "If no value is provided, clients MUST use 5 as the default value."
DEFAULT_INTERVAL = 5
# CIBA §11, slow_down: "the interval MUST be increased by at least 5 seconds for this
# and all subsequent requests."
SLOW_DOWN_STEP = 5

# CIBA §13 errors that mean "not this user, not now" rather than "misconfigured":
# the merchant may see them as access_denied, naming the bank's code.
DENIED_ERRORS = frozenset(
    {
        "access_denied",
        "unknown_user_id",
        "expired_login_hint_token",
        "invalid_binding_message",
        "missing_user_code",
        "invalid_user_code",
    }
)
# Fields a pass_through value never replaces or adds: ours, the other CIBA hints
# (§7.1: "it is REQUIRED that the Client provides one (and only one) of the hints"),
# and client authentication.
RESERVED_FIELDS = frozenset(
    {
        "scope",
        "acr_values",
        "login_hint",
        "login_hint_token",
        "id_token_hint",
        "binding_message",
        "requested_expiry",
        "app_callback_uri",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "request",
        "request_uri",
        "user_code",
        "client_notification_token",
        "grant_type",
        "auth_req_id",
        "authorization_details",
    }
)
# DecoupledStart.context: the types of the authorization_details sent, to judge the
# bank's answer
DETAILS = "authorization_details"


class CibaAdapter(OidcBankBase):
    async def start_decoupled(self, request: DecoupledRequest) -> DecoupledStart:
        if not request.login_hint and not request.login_hint_token:
            raise BankError(
                "invalid_request",
                "this bank needs login_hint or login_hint_token",
                "backchannel: no login_hint or login_hint_token",
            )
        doc = await self._doc()
        endpoint = self._endpoint(doc, self.settings.start_endpoint)
        form = self._form(request)
        context: dict[str, Any] = {}
        if request.authorization_details:
            if not listed(doc, request.authorization_details):
                raise cannot_carry(self.settings, "metadata does not list the types")
            form["authorization_details"] = encoded(request.authorization_details)
            context[DETAILS] = sorted(types_of(request.authorization_details))
        # CIBA §7.1: "When JWT client assertion based authentication is employed, the
        # Issuer Identifier of the OP SHOULD be used as the value of the audience. To
        # facilitate interoperability, the OP MUST accept its Issuer Identifier, Token
        # Endpoint URL, or Backchannel Authentication Endpoint URL as values that
        # identify it as an intended audience." The issuer alone also satisfies the
        # errata set 1 draft, which makes it the sole accepted audience.
        reply = await self._send(doc, endpoint, form, audience=self.settings.issuer,
                                 operation="backchannel")
        where = f"backchannel: HTTP {reply.status}, error {reply.error_code()}"
        if reply.status != 200:
            raise _backchannel_error(reply.status, reply.error_code(), where)
        body = reply.json_object()
        if body is None:
            raise _malformed("backchannel: HTTP 200, body is not a JSON object")
        return dataclasses.replace(self._acknowledgement(body), context=context)

    async def poll(self, auth_req_id: str, interval: int,
                   context: Mapping[str, Any] | None = None) -> BankResult | Pending:
        doc = await self._doc()
        context = context or {}
        # CIBA §10.1: grant_type "REQUIRED. Value MUST be
        # urn:openid:params:grant-type:ciba"; auth_req_id "REQUIRED".
        reply = await self._token_request(
            doc, {"grant_type": GRANT_TYPE, "auth_req_id": auth_req_id}
        )
        code = reply.error_code()
        where = f"token endpoint: HTTP {reply.status}, error {code}"
        if reply.status == 200:
            body = reply.json_object()
            if body is None:
                raise BankError("server_error", "the bank's token response was unusable", where)
            # CIBA §10.1.1: "the OpenID Provider returns a successful response as
            # specified in Section 3.1.3.3 of [OpenID.Core]" (wording as quoted in
            # openid/mobile issue #163), so the ID token is checked as in the code flow
            # (OIDC Core §3.1.3.7), but without a nonce: the backchannel request has
            # none. That issue also records OPs that answer with an ID token alone;
            # for a login that is complete, so no access token is required here.
            result = await self._login_result(
                doc,
                body,
                nonce=None,
                access_token_required=False,
                check=lambda claims: self._check_claims(claims, auth_req_id, context),
            )
            kinds = context.get(DETAILS)
            if not kinds:
                return result
            return dataclasses.replace(result, authorization_details=granted(body, kinds))
        if reply.status >= 500:
            raise BankError("temporarily_unavailable", "the bank is temporarily unavailable", where)
        # CIBA §11 (Token Error Response)
        if code == "authorization_pending":
            return Pending(interval)
        if code == "slow_down":
            return Pending(interval + SLOW_DOWN_STEP)
        if code == "access_denied":  # "The end-user denied the authorization request."
            raise BankError("access_denied", "the user declined at the bank", where)
        if code == "expired_token":  # "The auth_req_id has expired."
            raise BankError(
                "access_denied",
                "the login at the bank expired before it was approved",
                "expired_token",
            )
        raise BankError("server_error", "the bank could not complete the login", where)

    # -- helpers ---------------------------------------------------------

    def _check_claims(self, claims: Mapping[str, Any], auth_req_id: str,
                      context: Mapping[str, Any]) -> None:  # fmt: skip
        """The flow's own checks of the validated ID token (a subclass adds its own)."""
        _check_auth_req_id(claims, auth_req_id)

    def _form(self, request: DecoupledRequest) -> dict[str, str]:
        """The backchannel authentication request (CIBA §7.1) plus pass_through fields."""
        form = {k: v for k, v in request.extra.items() if k not in RESERVED_FIELDS}
        form["scope"] = " ".join(self.settings.scopes)
        if self.settings.upstream_acr_values:
            form["acr_values"] = " ".join(self.settings.upstream_acr_values)
        # Exactly one hint (§7.1). The token, when the merchant has one, is the more
        # specific and verifiable of the two.
        if request.login_hint_token:
            form["login_hint_token"] = request.login_hint_token
        elif request.login_hint:
            form["login_hint"] = request.login_hint
        if request.binding_message:
            form["binding_message"] = request.binding_message
        if request.requested_expiry > 0:
            # §7.1: "A positive integer allowing the client to request the expires_in
            # value for the auth_req_id the server will return."
            form["requested_expiry"] = str(request.requested_expiry)
        form["app_callback_uri"] = request.return_uri
        return form

    def _acknowledgement(self, body: Mapping[str, Any]) -> DecoupledStart:
        """CIBA §7.3, Successful Authentication Request Acknowledgement."""
        auth_req_id = body.get("auth_req_id")
        if not isinstance(auth_req_id, str) or not auth_req_id:
            raise _malformed("backchannel: auth_req_id missing or not a string")
        # expires_in: "REQUIRED. A JSON number with a positive integer value"
        expires_in = positive_int(body.get("expires_in"))
        if expires_in is None:
            raise _malformed("backchannel: expires_in missing or not a positive integer")
        # interval: "OPTIONAL. A JSON number with a positive integer value"
        raw_interval = body.get("interval")
        interval = DEFAULT_INTERVAL if raw_interval is None else positive_int(raw_interval)
        if interval is None:
            raise _malformed("backchannel: interval is not a positive integer")
        # "Clients MUST ignore unrecognized response parameters." The deep link is an
        # extension of BankID's profile (§3 lets profiles add response parameters);
        # one that is not a safe URL is ignored and the login stays plain decoupled.
        deep_link = usable_deep_link(body.get(self.settings.deep_link_field))
        return DecoupledStart(auth_req_id, expires_in, interval, deep_link)


def _backchannel_error(status: int, code: str, detail: str) -> BankError:
    """CIBA §13, Authentication Error Response: the bank's refusal as our BankError.
    The bank's error_description is not used: it may repeat the hint we sent."""
    if status >= 500:
        return BankError("temporarily_unavailable", "the bank is temporarily unavailable", detail)
    if code in DENIED_ERRORS:  # a fixed set, so safe to name to the merchant
        return BankError("access_denied", f"the bank refused the login: {code}", detail)
    # invalid_request, invalid_scope, invalid_client, unauthorized_client ...: our
    # configuration or the bank's, never the user's
    return BankError("server_error", "the bank refused the login request", detail)


def _malformed(detail: str) -> BankError:
    return BankError("server_error", "the bank's answer could not be used", detail)


def _check_auth_req_id(claims: Mapping[str, Any], auth_req_id: str) -> None:
    """CIBA §10.3.1 requires the claim for push mode only: "In order to bind together
    the ID Token, the Access Token and the auth_req_id, the OP MUST include ... the
    auth_req_id within the ID Token using the ... urn:openid:params:jwt:claim:auth_req_id
    claims". In poll mode the token answers our own request, so the claim is optional;
    one that names another request is still refused."""
    bound = claims.get(AUTH_REQ_ID_CLAIM)
    if bound is None:
        return
    if not isinstance(bound, str) or not hmac.compare_digest(bound.encode(), auth_req_id.encode()):
        raise BankError(
            "server_error", ID_TOKEN_DESCRIPTION, "id_token: auth_req_id claim does not match"
        )
