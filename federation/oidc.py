"""The redirect adapter for banks of ``kind: oidc``: authorization code + PKCE.

``start`` builds the bank's authorization URL (optionally pushed, RFC 9126), or a
request to its ``native_authorization_endpoint`` for browser-less App2App;
``finish`` checks the callback, exchanges the code and validates the ID token;
``refresh`` uses the bank's refresh token. Every failure is a BankError.

RFC 9396 ``authorization_details`` go to a bank whose metadata lists their types, as
they are (pushed when the bank takes PAR); to a bank that names a permission type for
them (``permissions.types``: BankID's OIDC provider) as its ``[{type, permission}]``,
always pushed (BankID takes it "only in PAR requests"); to no other bank.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from typing import Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from federation.oidc_base import OidcBankBase
from federation.oidc_params import authorization_url, bank_error, check_callback_iss
from federation.permissions import check_digest, statement_of
from federation.protocol import BankError, BankResult, Details, RedirectStart, StartRequest
from federation.rar import cannot_carry, encoded, granted, listed, types_of

# conn_data: the types of the details sent as they are (to judge the bank's answer), or
# the digests of the permission sent (to check the ID token's permission_digest)
DETAILS = "authorization_details_types"
DIGESTS = "permission_digests"


class OidcRedirectAdapter(OidcBankBase):
    async def start(self, request: StartRequest) -> RedirectStart:
        doc = await self._doc()
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(32)
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": request.redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": request.state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if self.settings.upstream_acr_values:
            params["acr_values"] = " ".join(self.settings.upstream_acr_values)
        if request.login_hint:
            params["login_hint"] = request.login_hint
        endpoint = self._endpoint(doc, "authorization_endpoint", mtls=False)
        native = self._native_endpoint(doc, request)
        if native is not None:
            # draft-zehavi-oauth-app2app-browserless-07 §3.4: authorization servers
            # processing a native authorization request "MUST also: Forward the
            # native_callback_uri in their requests to Downstream Authorization Servers".
            assert request.native_callback_uri is not None
            params["native_callback_uri"] = request.native_callback_uri
            endpoint = native
        par = doc.get("pushed_authorization_request_endpoint")
        use_par = self.settings.use_par or doc.get("require_pushed_authorization_requests") is True
        conn_data: dict[str, Any] = {"nonce": nonce, "code_verifier": verifier}
        if request.authorization_details:
            # a permission goes in PAR only; details as they are wherever the rest goes
            use_par |= self._details(doc, request.authorization_details, params, conn_data)
            if use_par and not isinstance(par, str):
                raise cannot_carry(self.settings, "permission: the bank has no PAR endpoint")
        if use_par and isinstance(par, str):
            request_uri = await self._push(doc, params)
            params = {"client_id": self.settings.client_id, "request_uri": request_uri}
        url = authorization_url(endpoint, params)
        return RedirectStart(url=url, conn_data=conn_data, native=native is not None)

    async def finish(
        self, conn_data: Mapping[str, Any], params: Mapping[str, str], redirect_uri: str
    ) -> BankResult:
        doc = await self._doc()
        check_callback_iss(doc, params, self.settings.issuer)
        if "error" in params:
            raise bank_error(params)
        code = params.get("code")
        nonce, verifier = conn_data.get("nonce"), conn_data.get("code_verifier")
        if not code:
            raise BankError("server_error", "the bank sent no authorization code", "no code")
        if not isinstance(nonce, str) or not isinstance(verifier, str):
            raise BankError("server_error", "the login state is damaged", "conn_data incomplete")
        reply = await self._token_request(
            doc,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
        )
        body = reply.json_object()
        if reply.status != 200 or body is None:
            raise BankError(
                "server_error",
                "the bank refused the code exchange",
                f"token endpoint: HTTP {reply.status}, error {reply.error_code()}",
            )
        # RFC 6749 §5.1: access_token is REQUIRED in the token response of the code flow.
        digests = [str(d) for d in conn_data.get(DIGESTS) or ()]
        result = await self._login_result(
            doc, body, nonce=nonce, access_token_required=True,
            check=(lambda claims: check_digest(claims, digests)) if digests else None,
        )  # fmt: skip
        kinds = conn_data.get(DETAILS)
        if not kinds:
            return result
        return dataclasses.replace(result, authorization_details=granted(body, kinds))

    # -- helpers ---------------------------------------------------------

    def _details(self, doc: Mapping[str, Any], details: Details, params: dict[str, str],
                 conn_data: dict[str, Any]) -> bool:  # fmt: skip
        """Add ``details`` to the request as this bank takes them; True when they must be
        pushed. BankError invalid_authorization_details when it takes them in no form."""
        if listed(doc, details):
            params["authorization_details"] = encoded(details)
            conn_data[DETAILS] = sorted(types_of(details))
            return False
        mapping = self.settings.permissions.types if self.settings.permissions else {}
        kinds = {mapping.get(str(d["type"])) for d in details}
        kind = kinds.pop() if len(kinds) == 1 else None
        if kind is None:
            raise cannot_carry(self.settings, "metadata does not list the types, and no "
                               "permission type takes them")  # fmt: skip
        statement = statement_of(self.settings, kind, details)
        # BankID's OIDC provider: "a URL-encoded JSON array containing a single permission
        # item: [{"type": "payment.v1", "permission": "<base64url-encoded permission
        # statement>"}]"; the ID token then has "a permission_digest claim, a SHA-256 hash
        # of the permission statement".
        params["authorization_details"] = encoded(
            ({"type": statement.type, "permission": statement.permission},))
        conn_data[DIGESTS] = statement.digests()
        return True

    def _native_endpoint(self, doc: Mapping[str, Any], request: StartRequest) -> str | None:
        """The bank's ``native_authorization_endpoint`` when this login goes browser-less:
        the merchant app sent a native_callback_uri, the operator allows native logins for
        this bank, and the bank advertises the endpoint. None: a plain redirect."""
        if not request.native_callback_uri or not self.settings.native:
            return None
        url = doc.get("native_authorization_endpoint")
        return url if isinstance(url, str) and url else None

    async def _push(self, doc: Mapping[str, Any], params: Mapping[str, str]) -> str:
        """RFC 9126 §2: push the request; the answer is 201 with ``request_uri``."""
        reply = await self._send(
            doc, self._endpoint(doc, "pushed_authorization_request_endpoint"), params,
            operation="par",
        )
        body = reply.json_object() or {}
        request_uri = body.get("request_uri")
        if reply.status not in (200, 201) or not isinstance(request_uri, str):
            raise BankError(
                "server_error",
                "the bank refused the authorization request",
                f"PAR: HTTP {reply.status}, error {reply.error_code()}",
            )
        return request_uri
