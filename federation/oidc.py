"""The redirect adapter for banks of ``kind: oidc``: authorization code + PKCE.

``start`` builds the bank's authorization URL (optionally pushed, RFC 9126), or a
request to its ``native_authorization_endpoint`` for browser-less App2App;
``finish`` checks the callback, exchanges the code and validates the ID token;
``refresh`` uses the bank's refresh token. Every failure is a BankError.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from federation.oidc_base import OidcBankBase
from federation.oidc_params import authorization_url, bank_error, check_callback_iss
from federation.protocol import BankError, BankResult, RedirectStart, StartRequest


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
        if use_par and isinstance(par, str):
            request_uri = await self._push(doc, params)
            params = {"client_id": self.settings.client_id, "request_uri": request_uri}
        url = authorization_url(endpoint, params)
        conn_data = {"nonce": nonce, "code_verifier": verifier}
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
        return await self._login_result(doc, body, nonce=nonce, access_token_required=True)

    # -- helpers ---------------------------------------------------------

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
