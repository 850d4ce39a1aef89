"""The body of a successful token response, for every grant the sandbox bank serves."""

from __future__ import annotations

from typing import Any

from federation.sandbox.bank import SandboxBank
from federation.sandbox.id_tokens import ID_TOKEN_LIFETIME, IdTokenRequest, mint_id_token
from federation.sandbox.models import RefreshGrant

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def token_response(bank: SandboxBank, grant: RefreshGrant, nonce: str | None) -> dict[str, Any]:
    """Access token, ID token and (per ``issue_refresh_tokens``) a refresh token for ``grant``."""
    access_token = bank.issue_access_token(grant.client_id, grant.sub, grant.scope)
    id_token = mint_id_token(bank, _id_token_request(grant, access_token, nonce))
    body: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": bank.access_token_lifetime,
        "id_token": id_token,
        "scope": grant.scope,
    }
    if bank.issue_refresh_tokens:
        body["refresh_token"] = bank.issue_refresh_token(grant)
    # RFC 9396 §7: "the authorization server MUST also return the authorization_details as
    # granted by the resource owner and assigned to the respective access token"
    if bank.rar_answer is not None:
        body["authorization_details"] = bank.rar_answer
    elif grant.authorization_details:
        body["authorization_details"] = [dict(d) for d in grant.authorization_details]
    return body


def id_token_only_response(bank: SandboxBank, grant: RefreshGrant) -> dict[str, Any]:
    """An ID token and nothing to call APIs with (BankID app-authorize style)."""
    id_token = mint_id_token(bank, _id_token_request(grant, None, None))
    return {"id_token": id_token, "token_type": "Bearer", "expires_in": ID_TOKEN_LIFETIME}


def _id_token_request(
    grant: RefreshGrant, access_token: str | None, nonce: str | None
) -> IdTokenRequest:
    return IdTokenRequest(
        client_id=grant.client_id,
        sub=grant.sub,
        scope=grant.scope,
        acr=grant.acr,
        auth_time=grant.auth_time,
        access_token=access_token,
        nonce=nonce,
        permission=grant.permission,
    )
