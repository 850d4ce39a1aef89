"""The merchant ID token (OIDC Core §2, §3.1.3.6, §12.2)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from proxy.model.records import Grant
from proxy.oauth.claims import released
from proxy.oauth.rar import for_id_token
from proxy.oauth.services import Services


def id_token(svc: Services, grant: Grant, access_token: str, *, nonce: str | None,
             scope: Iterable[str]) -> str:
    """Sign the ID token for ``grant``, with the user claims ``scope`` releases (the scope
    of the access token it comes with: OIDC Core §5.4, :mod:`proxy.oauth.claims`).

    §5.4 has the scope claims "returned from the UserInfo Endpoint ... when a
    response_type value is used that results in an Access Token being issued"; they are
    in the ID token too (as they always were here: apps read them there), never more
    than userinfo gives for the same scope.

    On refresh, OIDC Core §12.2: "its iat Claim MUST represent the time that the new ID
    Token is issued ... if the ID Token contains an auth_time Claim, its value MUST
    represent the time of the original authentication"; it carries no nonce (the
    nonce binds one authentication request), so callers pass ``nonce=None`` there.
    """
    now = svc.now()
    key = svc.signer.active()  # one key for at_hash and signature, even at a rotation
    claims: dict[str, Any] = released(grant.claims, scope)
    claims.update(
        iss=svc.issuer,
        sub=grant.sub,
        aud=grant.client_id,
        iat=now,
        exp=now + svc.config.lifetimes.id_token,
        auth_time=grant.auth_time,
        acr=grant.acr,
        at_hash=key.half_hash(access_token),
    )
    if grant.amr:
        claims["amr"] = list(grant.amr)
    if grant.authentication_level:
        claims["authentication_level"] = grant.authentication_level
    if nonce is not None:
        claims["nonce"] = nonce
    if grant.sid is not None and grant.ds_hash is not None:
        # OpenID Connect Native SSO for Mobile Apps 1.0 §3.4: the ID token of a login with
        # the device_sso scope carries "sid" (the device session) and "ds_hash" (a function
        # of the device_secret), which the token exchange checks (proxy.oauth.own_apps)
        claims["sid"] = grant.sid
        claims["ds_hash"] = grant.ds_hash
    # RFC 9396 in the ID token only where the operator asks (authorization_details_types
    # .<type>.id_token)
    details = for_id_token(svc.config, grant)
    if details:
        claims["authorization_details"] = details
    return key.sign(claims)
