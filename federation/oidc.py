"""The redirect adapter for banks of ``kind: oidc``: authorization code + PKCE.

``start`` builds the bank's authorization URL (optionally pushed, RFC 9126);
``finish`` checks the callback, exchanges the code and validates the ID token;
``refresh`` uses the bank's refresh token. Every failure is a BankError.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import aiohttp
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from federation.bank_http import BankReply, BankUnreachable, call_bank
from federation.client_auth import BankClientAuth
from federation.idtoken import validate_id_token
from federation.jwks import JwksCache
from federation.metadata import MetadataUnavailable, ProviderMetadata
from federation.oidc_params import (
    authorization_url,
    bank_error,
    check_callback_iss,
    identity_from_claims,
    tokens_from_response,
)
from federation.protocol import BankError, BankResult, BankTokens, RedirectStart, StartRequest
from federation.settings import BankSettings

TIMEOUT_TEXT = "the bank did not answer in time"


class OidcRedirectAdapter:
    def __init__(
        self,
        settings: BankSettings,
        session: aiohttp.ClientSession,
        *,
        metadata: ProviderMetadata | None = None,
        jwks: JwksCache | None = None,
    ) -> None:
        self.settings = settings
        self._session = session
        self._auth = BankClientAuth(settings)
        tls = self._auth.ssl_context
        self.metadata = metadata or ProviderMetadata(settings, session, ssl_context=tls)
        self.jwks = jwks or JwksCache(self.metadata, session, ssl_context=tls)

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
        par = doc.get("pushed_authorization_request_endpoint")
        use_par = self.settings.use_par or doc.get("require_pushed_authorization_requests") is True
        if use_par and isinstance(par, str):
            request_uri = await self._push(doc, params)
            params = {"client_id": self.settings.client_id, "request_uri": request_uri}
        url = authorization_url(endpoint, params)
        return RedirectStart(url=url, conn_data={"nonce": nonce, "code_verifier": verifier})

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
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise BankError(
                "server_error", "the bank sent no ID token", "token response: no id_token"
            )
        tokens = tokens_from_response(body)
        if tokens is None:
            raise BankError(
                "server_error", "the bank sent no tokens", "token response: no access_token"
            )
        claims = await validate_id_token(
            id_token, settings=self.settings, metadata_doc=doc, jwks=self.jwks, nonce=nonce
        )
        if self.settings.userinfo:
            claims = await self._with_userinfo(doc, claims, tokens.access_token)
        return BankResult(identity_from_claims(claims), tokens)

    async def refresh(self, tokens: BankTokens) -> BankTokens:
        if not tokens.refresh_token:
            raise BankError("invalid_grant", "the bank gave no refresh token", "no refresh token")
        doc = await self._doc()
        reply = await self._token_request(
            doc, {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        )
        body = reply.json_object()
        fresh = (
            tokens_from_response(body, previous=tokens) if reply.status == 200 and body else None
        )
        if fresh is None:
            raise BankError(
                "invalid_grant",
                "the bank refused to refresh the login",
                f"refresh: HTTP {reply.status}, error {reply.error_code()}",
            )
        return fresh

    async def status(self) -> Mapping[str, Any]:
        try:
            return await self.metadata.status()
        except Exception as exc:  # readiness must never fail because of a bank
            return {"metadata": "unavailable", "error": type(exc).__name__}

    # -- helpers ---------------------------------------------------------

    async def _doc(self) -> Mapping[str, Any]:
        try:
            return await self.metadata.get()
        except MetadataUnavailable as exc:
            raise BankError(
                "temporarily_unavailable", "the bank is not reachable", str(exc)
            ) from exc

    def _endpoint(self, doc: Mapping[str, Any], name: str, *, mtls: bool = True) -> str:
        # RFC 8705 §5: a client using mutual TLS uses the mtls_endpoint_aliases when given.
        aliases = doc.get("mtls_endpoint_aliases")
        if mtls and self.settings.client_auth == "tls_client_auth" and isinstance(aliases, dict):
            alias = aliases.get(name)
            if isinstance(alias, str):
                return alias
        url = doc.get(name)
        if not isinstance(url, str):
            raise BankError("server_error", "the bank is misconfigured", f"metadata has no {name}")
        return url

    async def _send(self, doc: Mapping[str, Any], url: str, data: Mapping[str, str]) -> BankReply:
        token_endpoint = self._endpoint(doc, "token_endpoint")
        algs = doc.get("token_endpoint_auth_signing_alg_values_supported")
        form, headers = self._auth.apply(
            token_endpoint, data, supported_algs=algs if isinstance(algs, list) else None
        )
        try:
            return await call_bank(
                self._session,
                "POST",
                url,
                time_limit=self.settings.timeout,
                data=form,
                headers=headers,
                ssl_context=self._auth.ssl_context,
            )
        except BankUnreachable as exc:
            raise BankError("temporarily_unavailable", TIMEOUT_TEXT, str(exc)) from exc

    async def _token_request(self, doc: Mapping[str, Any], data: Mapping[str, str]) -> BankReply:
        return await self._send(doc, self._endpoint(doc, "token_endpoint"), data)

    async def _push(self, doc: Mapping[str, Any], params: Mapping[str, str]) -> str:
        """RFC 9126 §2: push the request; the answer is 201 with ``request_uri``."""
        reply = await self._send(
            doc, self._endpoint(doc, "pushed_authorization_request_endpoint"), params
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

    async def _with_userinfo(
        self, doc: Mapping[str, Any], claims: dict[str, Any], access_token: str
    ) -> dict[str, Any]:
        url = self._endpoint(doc, "userinfo_endpoint")
        try:
            reply = await call_bank(
                self._session,
                "GET",
                url,
                time_limit=self.settings.timeout,
                headers={"Authorization": f"Bearer {access_token}"},
                ssl_context=self._auth.ssl_context,
            )
        except BankUnreachable as exc:
            raise BankError("temporarily_unavailable", TIMEOUT_TEXT, str(exc)) from exc
        info = reply.json_object()
        if reply.status != 200 or info is None:
            raise BankError(
                "server_error",
                "the bank's userinfo failed",
                f"userinfo: HTTP {reply.status}, error {reply.error_code()}",
            )
        # OIDC Core §5.3.4: "The sub Claim in the UserInfo Response MUST be verified to
        # exactly match the sub Claim in the ID Token; if they do not match, the UserInfo
        # Response values MUST NOT be used." We fail the login rather than carry on
        # with claims the operator expects and will not get.
        if info.get("sub") != claims["sub"]:
            raise BankError("server_error", "the bank's userinfo failed", "userinfo: sub mismatch")
        # The signed ID token wins where both name a claim; userinfo only adds.
        return {**{k: v for k, v in info.items() if isinstance(k, str)}, **claims}
