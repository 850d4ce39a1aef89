"""The merchant's own apps share a login: App2App approval between them (device-key bound)
and OpenID Connect Native SSO for Mobile Apps 1.0 (docs/app2app.md, "The merchant's own
apps").

Both make, from a live login of one client (the *source*), a new grant for another
client of the same sector: the same user (the source's sub, which the other client's
sector gives too), the original bank login's ``acr``, ``authentication_level`` and
``auth_time``, an ``amr`` that says how it came, claims released by the new scope from
those the source holds, and the bank's tokens only where the operator allows it for that
pair (``share_bank_tokens``). It is a grant of its own: revoking the source does not
revoke it; ``revoke --sub`` ends both (they share the sub).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import jwt

from federation.protocol import BankTokens
from proxy.config.settings import ClientSettings
from proxy.model.records import Code, DeviceSession, Grant, RefreshToken
from proxy.model.tokens import fingerprint, new_grant_id
from proxy.oauth.claims import released
from proxy.oauth.device_key import APPROVE, check_device_jwt
from proxy.oauth.errors import OAuthError
from proxy.oauth.grants import (
    check_refresh_binding,
    grant_ttl,
    invalid_grant,
    issued,
    mint,
    new_code,
    refresh_binding,
)
from proxy.oauth.jose import Unreadable
from proxy.oauth.services import Services
from proxy.oauth.subject import subject_space
from proxy.observability.logs import logger

log = logger("proxy.own_apps")

# this project's grant type for an approval (RFC 6749 §4.5: "the client uses an absolute
# URI (defined by the authorization server) as the value of the grant_type")
APP2APP_GRANT = "urn:app2app-proxy:params:oauth:grant-type:app2app"
# RFC 8693 §2.1 and Native SSO §4.1
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
DEVICE_SECRET_TYPE = "urn:openid:params:token-type:device-secret"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
# what the new grant's amr adds to the bank login's (RFC 8176 §1: amr values are
# "identifiers for authentication methods used in the authentication"; these name how
# the login reached this client)
AMR_APP2APP = "app2app"
AMR_NATIVE_SSO = "native_sso"
# RFC 7636 §4.2: code_challenge = BASE64URL(SHA256(code_verifier)): 43 characters
_CHALLENGE_LENGTH = 43
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
NONCE_MAX = 2048  # as at /authorize (proxy.oauth.authorize_checks.PARAMETER_LIMITS)


def _required(form: Mapping[str, str], name: str, description: str) -> str:
    value = form.get(name)
    if value is None:
        raise OAuthError("invalid_request", description)
    return value


def _scope(form: Mapping[str, str], source: Grant, client: ClientSettings) -> tuple[str, ...]:
    """The new grant's scope: the ``scope`` asked for, or what the source login granted
    that this client is registered for. Never more than either (Native SSO §4.3, after
    RFC 6749 §6: no scope "not originally granted by the resource owner")."""
    allowed = [s for s in source.scope if s in client.scopes]
    requested = form.get("scope")
    if requested is None:
        scope = tuple(allowed)
    else:
        scope = tuple(dict.fromkeys(requested.split()))
        if not set(scope) <= set(allowed):
            raise OAuthError("invalid_scope", "scope exceeds what the shared login granted, "
                             "or what this client is registered for")
    if "openid" not in scope:
        raise OAuthError("invalid_scope", "scope must include openid")
    return scope


def _derived(svc: Services, source: Grant, client: ClientSettings, scope: tuple[str, ...],
             via: str, *, sid: str | None = None, ds_hash: str | None = None) -> Grant:
    """A new grant for ``client`` from the live login ``source``."""
    # OIDC Core §8.1: one sub per sector. The source's sub is the right one only for a
    # client that computes subs the same way (the config check links only clients of one
    # sector; a sector changed since the source login is refused here)
    if subject_space(svc.config.subject, client, client.client_id) != source.subject_space:
        raise invalid_grant("this login was made for another sector: it cannot be shared "
                            "with this client; log in")
    if client.acr_values is not None and source.acr not in client.acr_values:
        raise invalid_grant("this login's bank is not one this client may use")
    source_client = svc.clients.get(source.client_id)
    share = source_client is not None and client.client_id in source_client.share_bank_tokens
    try:
        tokens = BankTokens.from_dict(svc.cipher.decrypt(source.bank_tokens))
    except Unreadable as exc:  # sealed with a key since removed
        raise invalid_grant("this login can no longer be shared; log in") from exc
    # a shared copy never refreshes at the bank: the source's refresh there would retire
    # the bank's refresh token under the copy (banks rotate them)
    kept = BankTokens(tokens.access_token, tokens.token_type, tokens.expires_at,
                      scope=tokens.scope) if share else BankTokens(None)
    return Grant(
        grant_id=new_grant_id(),
        client_id=client.client_id,
        sub=source.sub,
        scope=scope,
        acr=source.acr,
        amr=tuple(dict.fromkeys((*source.amr, via))),
        # OIDC Core §2: auth_time is the "Time when the End-User authentication occurred":
        # the bank login's, not this request's
        auth_time=source.auth_time,
        bank_id=source.bank_id,
        authentication_level=source.authentication_level,
        claims=released(source.claims, scope),
        bank_tokens=svc.cipher.encrypt(kept.to_dict()),
        resource=client.default_resource,
        subject_space=source.subject_space,
        sid=sid,
        ds_hash=ds_hash,
    )


# --- App2App approval -----------------------------------------------------------------


async def approve(svc: Services, client: ClientSettings, form: Mapping[str, str], *,
                  jkt: str | None) -> dict[str, Any]:  # fmt: skip
    """``grant_type`` :data:`APP2APP_GRANT`: ``client`` (App A, authenticated) approves,
    with its refresh token and a fresh device-key JWT of the key bound to that login, the
    App2App login request of ``app2app_client_id`` (App B); the answer is an authorization
    code for App B, which App B redeems at /token with its ``code_verifier``."""
    other_id = _required(form, "app2app_client_id", "app2app_client_id is required")
    other = svc.clients.get(other_id)
    if other is None or other_id not in client.approve_for:
        # RFC 6749 §5.2: "The authenticated client is not authorized to use this
        # authorization grant type"
        raise OAuthError("unauthorized_client",
                         "this client may not approve that client's logins (approve_for)")
    redirect_uri = _required(form, "app2app_redirect_uri", "app2app_redirect_uri is required")
    # RFC 9700 §2.1: "authorization servers MUST utilize exact string matching"
    if redirect_uri not in other.redirect_uris:
        raise OAuthError("invalid_request", "app2app_redirect_uri is not a redirect URI "
                         "registered for that client")
    challenge = _required(form, "code_challenge", "code_challenge is required (PKCE S256)")
    # RFC 9700 §2.1.1: "Authorization servers MUST support PKCE"; here S256 only, as at
    # /authorize
    if form.get("code_challenge_method", "S256") != "S256":
        raise OAuthError("invalid_request", "code_challenge_method must be S256")
    if len(challenge) != _CHALLENGE_LENGTH or not set(challenge) <= _B64URL:
        raise OAuthError("invalid_request", "code_challenge must be the S256 challenge: 43 "
                         "base64url characters")
    nonce = form.get("nonce")
    if nonce is not None and len(nonce) > NONCE_MAX:
        raise OAuthError("invalid_request", "nonce is too long")
    token = _required(form, "refresh_token", "refresh_token is required")
    device_jwt = _required(form, "jwt", "jwt (the device-key JWT) is required")
    source = await _source_of(svc, client, token, jkt)
    if source.device_key is None:
        raise invalid_grant("no device key is bound to this login: bind one at its code "
                            "exchange (x_app2app_device_key_jwt)")
    await check_device_jwt(svc, client, device_jwt, action=APPROVE, grant_id=source.grant_id,
                           bound=source.device_key)
    grant = _derived(svc, source, other, _scope(form, source, other), AMR_APP2APP)
    code = await new_code(svc, grant, Code(grant.grant_id, other.client_id, redirect_uri,
                                           challenge, nonce=nonce))
    log.info("app2app_approved", client_id=client.client_id, for_client=other.client_id,
             source_fingerprint=fingerprint(source.grant_id),
             grant_fingerprint=fingerprint(grant.grant_id))
    # RFC 9207 §2: App B checks iss in what App A hands it, as in any authorization response
    query = urlencode({"code": code, "iss": svc.issuer})
    return {
        "code": code,
        "iss": svc.issuer,
        "expires_in": svc.config.lifetimes.authorization_code,
        "redirect_to": f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}",
    }


async def _source_of(svc: Services, client: ClientSettings, token: str,
                     jkt: str | None) -> Grant:  # fmt: skip
    """The live login of ``client`` whose current refresh token is ``token``. A rotated-out
    one (its consume marker), an unknown one and one whose grant was revoked are refused;
    none is used up (an approval does not rotate it)."""
    found = await svc.store.find(RefreshToken.kind, token)
    if found is None:
        raise invalid_grant("the refresh token is unknown, expired or already rotated")
    rt = RefreshToken.of(token, found)
    data = await svc.store.find(Grant.kind, rt.grant_id)
    if data is None:
        raise invalid_grant("the grant was revoked or has expired")
    source = Grant.from_json(data)
    # RFC 6749 §6: "ensure that it was issued to the authenticated client"
    if source.client_id != client.client_id:
        raise invalid_grant("the refresh token was issued to another client")
    check_refresh_binding(rt.jkt, jkt)
    return source


# --- Native SSO: the token exchange ------------------------------------------------------


async def exchange_device_session(svc: Services, client: ClientSettings,
                                  form: Mapping[str, str], *, jkt: str | None
                                  ) -> dict[str, Any]:  # fmt: skip
    """RFC 8693 as OpenID Connect Native SSO for Mobile Apps 1.0 §4 profiles it: the ID
    token of a login with the device_sso scope (``subject_token``) and the device_secret
    of its device session (``actor_token``) get ``client`` tokens of its own, without a
    bank login."""
    if not client.native_sso:
        raise OAuthError("unauthorized_client",
                         "this client does not take part in Native SSO (native_sso)")
    # §4.2: subject_token_type "urn:ietf:params:oauth:token-type:id_token", actor_token_type
    # "urn:openid:params:token-type:device-secret"
    subject_token = _required(form, "subject_token", "subject_token is required")
    if form.get("subject_token_type") != ID_TOKEN_TYPE:
        raise OAuthError("invalid_request", f"subject_token_type must be {ID_TOKEN_TYPE}")
    device_secret = _required(form, "actor_token", "actor_token (the device_secret) is "
                              "required")  # fmt: skip
    if form.get("actor_token_type") != DEVICE_SECRET_TYPE:
        raise OAuthError("invalid_request", f"actor_token_type must be {DEVICE_SECRET_TYPE}")
    if form.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
        raise OAuthError("invalid_request", f"requested_token_type must be {ACCESS_TOKEN_TYPE}")
    # RFC 8693 §2.2.2: invalid_target, "The authorization server is unwilling or unable to
    # issue a token for all the target services indicated by the resource or audience
    # parameters"; the tokens are for this server's client, the audience its issuer
    if "resource" in form or form.get("audience", svc.issuer) != svc.issuer:
        raise OAuthError("invalid_target", "the audience of this exchange is this server's "
                         "issuer, and it takes no resource")
    # §4.3: "If the device_secret is not valid ... the AS MUST return an error of
    # invalid_grant"
    found = await svc.store.find(DeviceSession.kind, device_secret)
    if found is None:
        raise invalid_grant("the device_secret is unknown or its device session has ended")
    session = DeviceSession.from_json(found)
    # the session lives while the login that opened it does (§4.3: "Verify that the session
    # id in the id_token (sid claim) is still valid. If the session is no longer valid, the
    # AS MUST return an error of invalid_grant")
    data = await svc.store.find(Grant.kind, session.grant_id)
    if data is None:
        raise invalid_grant("the device session has ended")
    source = Grant.from_json(data)
    claims = _id_token_claims(svc, subject_token)
    # §4.3: the binding of the ID token to the device_secret (ds_hash), and the session
    if not (_same(claims.get("sid"), session.sid) and _same(claims.get("ds_hash"),
                                                            session.ds_hash)
            and _same(claims.get("sub"), source.sub)):
        raise invalid_grant("the subject_token does not belong to this device session")
    # §4.3: "the AS SHOULD maintain a list of client_ids that can share user
    # authentications": the clients with native_sso, the ID token's and this one
    origin = svc.clients.get(source.client_id)
    holder = svc.clients.get(claims.get("aud") if isinstance(claims.get("aud"), str) else None)
    if origin is None or not origin.native_sso or holder is None or not holder.native_sso:
        raise invalid_grant("the device session belongs to a client that does not take part "
                            "in Native SSO")
    grant = _derived(svc, source, client, _scope(form, source, client), AMR_NATIVE_SSO,
                     sid=session.sid, ds_hash=session.ds_hash)
    await svc.store.upsert(Grant.kind, grant.grant_id, grant.to_json(),
                           grant_ttl(svc, grant.scope))
    response = await mint(svc, grant, grant.scope, nonce=None, jkt=jkt,
                          refresh_jkt=refresh_binding(client, jkt))
    # RFC 8693 §2.2.1: issued_token_type is REQUIRED
    response["issued_token_type"] = ACCESS_TOKEN_TYPE
    issued(grant, response)
    log.info("native_sso_exchanged", client_id=client.client_id, from_client=source.client_id,
             source_fingerprint=fingerprint(source.grant_id),
             grant_fingerprint=fingerprint(grant.grant_id))
    return response


def _same(value: object, expected: str) -> bool:
    return isinstance(value, str) and hmac.compare_digest(value.encode(), expected.encode())


def _id_token_claims(svc: Services, token: str) -> dict[str, Any]:
    """§4.3: the subject_token is an ID token this server signed (its signature checked
    against /jwks) with this issuer. It may have expired: the device session, not the ID
    token's lifetime, decides how long it may be exchanged (apps keep the ID token in the
    shared keychain long after its exp)."""
    try:
        claims = svc.signer.verify(token)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise OAuthError("invalid_grant", "the subject_token is not an ID token of this "
                         "server", detail=f"{type(exc).__name__}: {exc}"[:300]) from exc
    if claims.get("iss") != svc.issuer:
        raise invalid_grant("the subject_token is not an ID token of this server")
    return claims
