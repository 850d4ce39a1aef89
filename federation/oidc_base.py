"""What every OpenID Connect bank adapter shares, whatever starts the login.

The redirect adapter (``kind: oidc``, :mod:`federation.oidc`) and the decoupled
one (``kind: ciba``, :mod:`federation.ciba`) both talk to the same kind of
OpenID Provider: one discovery document and key set per bank, the same client
authentication, the same token endpoint, the same ID token checks and userinfo
merge, the same refresh. Only how the login begins and how its answer arrives
differ, so only that lives in the subclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from federation.bank_http import BankReply, BankUnreachable, call_bank
from federation.client_auth import BankClientAuth
from federation.idtoken import validate_id_token
from federation.jwks import JwksCache
from federation.metadata import MetadataUnavailable, ProviderMetadata
from federation.metrics import Operation
from federation.oidc_params import identity_from_claims, tokens_from_response
from federation.protocol import BankError, BankResult, BankTokens
from federation.settings import BankSettings

TIMEOUT_TEXT = "the bank did not answer in time"


class OidcBankBase:
    """Metadata and JWKS caches, client authentication and the token endpoint of one bank."""

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

    # -- for the subclasses ------------------------------------------------

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

    async def _send(
        self,
        doc: Mapping[str, Any],
        url: str,
        data: Mapping[str, str],
        *,
        operation: Operation,
        audience: str | None = None,
    ) -> BankReply:
        """POST ``data`` with our client authentication. A client assertion's ``aud`` is
        ``audience``, or the token endpoint URL when None (see BankClientAuth.apply)."""
        token_endpoint = self._endpoint(doc, "token_endpoint")
        algs = doc.get("token_endpoint_auth_signing_alg_values_supported")
        form, headers = self._auth.apply(
            audience or token_endpoint,
            data,
            supported_algs=algs if isinstance(algs, list) else None,
        )
        return await self._post(url, form, headers, operation)

    async def _post(self, url: str, form: Mapping[str, str], headers: Mapping[str, str],
                    operation: Operation) -> BankReply:  # fmt: skip
        """One form POST to the bank, authenticated as ``form`` and ``headers`` say."""
        try:
            return await call_bank(
                self._session,
                "POST",
                url,
                time_limit=self.settings.timeout,
                data=form,
                headers=headers,
                ssl_context=self._auth.ssl_context,
                bank_id=self.settings.id,
                operation=operation,
            )
        except BankUnreachable as exc:
            raise BankError("temporarily_unavailable", TIMEOUT_TEXT, str(exc)) from exc

    async def _token_request(self, doc: Mapping[str, Any], data: Mapping[str, str]) -> BankReply:
        return await self._send(doc, self._endpoint(doc, "token_endpoint"), data, operation="token")

    async def _login_result(
        self,
        doc: Mapping[str, Any],
        body: Mapping[str, Any],
        *,
        nonce: str | None,
        access_token_required: bool = True,
        check: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> BankResult:
        """A successful token response (HTTP 200, JSON object) as a validated BankResult.

        ``nonce``: the one sent with the authentication request, None when none was sent.
        ``access_token_required``: False where an ID token alone is a complete answer.
        ``check``: a flow's own test of the validated ID token claims (raises BankError).
        """
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise BankError(
                "server_error", "the bank sent no ID token", "token response: no id_token"
            )
        tokens = tokens_from_response(body, access_token_required=access_token_required)
        if tokens is None:
            raise BankError(
                "server_error", "the bank sent no tokens", "token response: no access_token"
            )
        claims = await validate_id_token(
            id_token, settings=self.settings, metadata_doc=doc, jwks=self.jwks, nonce=nonce
        )
        if check is not None:
            check(claims)
        if self.settings.userinfo:
            if tokens.access_token is None:
                # OIDC Core §5.3: the Client calls the UserInfo Endpoint "using an Access
                # Token obtained through OpenID Connect Authentication"; without one the
                # claims the operator asked for cannot be had.
                raise BankError(
                    "server_error",
                    "the bank's userinfo failed",
                    "userinfo: no access_token to call it with",
                )
            claims = await self._with_userinfo(doc, claims, tokens.access_token)
        return BankResult(identity_from_claims(claims), tokens)

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
                bank_id=self.settings.id,
                operation="userinfo",
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
