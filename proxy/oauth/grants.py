"""Grants and the tokens minted from them: code exchange, refresh rotation, revocation.

A grant is one login. Every code and token names its grant and is valid only
while the grant record exists, so revoking a grant is deleting one key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from federation.protocol import BankError, BankResult, BankTokens, Details
from proxy.config.settings import ClientSettings
from proxy.model.records import (
    AccessToken,
    Code,
    DeviceSession,
    Grant,
    RefreshToken,
    RotatedPair,
    Transaction,
)
from proxy.model.tokens import (
    ACCESS_TOKEN,
    AUTHORIZATION_CODE,
    DEVICE_SECRET,
    REFRESH_TOKEN,
    b64url,
    fingerprint,
    grant_of,
    new_grant_id,
    new_grant_value,
    new_values,
)
from proxy.oauth import rar
from proxy.oauth.claims import released
from proxy.oauth.device_key import DEVICE_KEY_JWT, SETUP, DeviceProof, check_device_jwt
from proxy.oauth.errors import OAuthError
from proxy.oauth.idtoken import id_token
from proxy.oauth.jose import Unreadable
from proxy.oauth.services import Services
from proxy.oauth.subject import merchant_subject, subject_space
from proxy.observability import audit
from proxy.observability.logs import logger
from proxy.observability.tracing import continue_trace, current_traceparent
from proxy.store import Consumed

log = logger("proxy.grants")

OFFLINE_ACCESS = "offline_access"
# OpenID Connect Native SSO for Mobile Apps 1.0 §3.1: "device_sso: the client is
# requesting a device_secret"
DEVICE_SSO = "device_sso"
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def grant_ttl(svc: Services, scope: tuple[str, ...]) -> int:
    lifetimes = svc.config.lifetimes
    if OFFLINE_ACCESS in scope:
        return lifetimes.refresh_token
    return lifetimes.authorization_code + lifetimes.access_token


async def issue_code(svc: Services, txn: Transaction, result: BankResult) -> str:
    """After a successful bank login: create the grant and a single-use code for it."""
    bank = svc.bank(txn.bank_id)
    assert bank is not None  # the callback checked it
    identity = result.identity
    # only what the granted scope releases is kept (OIDC Core §5.4): a grant holds no
    # claim its client may not see
    claims = released({
        merchant: identity.claims[bank_claim]
        for merchant, bank_claim in bank.claims.items()
        if bank_claim in identity.claims
    }, txn.scope)
    client = svc.clients.get(txn.client_id)
    grant = Grant(
        grant_id=new_grant_id(),
        client_id=txn.client_id,
        sub=merchant_subject(svc.config.subject, client, txn.client_id, bank.id, identity.sub),
        scope=txn.scope,
        acr=txn.acr,
        amr=identity.amr,
        auth_time=identity.auth_time or svc.now(),
        bank_id=bank.id,
        # a session bank's login says its own level (its loa through the bank's loa:)
        authentication_level=identity.authentication_level or bank.authentication_level,
        claims=claims,
        bank_tokens=svc.cipher.encrypt(result.tokens.to_dict()),
        resource=txn.resource,
        subject_space=subject_space(svc.config.subject, client, txn.client_id),
        authorization_details=rar.granted(txn, result),
    )
    return await new_code(svc, grant, Code(grant.grant_id, txn.client_id, txn.redirect_uri,
                                           txn.code_challenge, dpop_jkt=txn.dpop_jkt,
                                           nonce=txn.nonce))


async def new_code(svc: Services, grant: Grant, record: Code) -> str:
    """Store a new ``grant`` and a single-use code for it (``record``, which names it): the
    end of a bank login, or of an App2App approval (proxy.oauth.own_apps)."""
    # the code names its grant: the exchange consumes it and reads the grant together
    code = new_grant_value(AUTHORIZATION_CODE, grant.grant_id)
    # traces on: the exchange continues the login's trace
    record = dataclasses.replace(record, trace=current_traceparent())
    await svc.store.upsert_many([
        (Grant.kind, grant.grant_id, grant.to_json(), grant_ttl(svc, grant.scope)),
        (Code.kind, code, record.to_json(), svc.config.lifetimes.authorization_code),
    ])
    audit.tokens_issued(record.client_id, grant.grant_id, ["code"])
    return code


def _check_pkce(verifier: str | None, challenge: str) -> None:
    """RFC 7636 §4.6: "If the values are equal, the token endpoint MUST continue processing
    as normal (as defined by OAuth 2.0 [RFC6749]). If the values are not equal, an error
    response indicating "invalid_grant" as described in Section 5.2 of [RFC6749] MUST be
    returned." """
    if not verifier:
        raise OAuthError("invalid_request", "code_verifier is required (PKCE)")
    # RFC 7636 §4.1: code-verifier = 43*128unreserved, unreserved = ALPHA / DIGIT /
    # "-" / "." / "_" / "~"
    if not _VERIFIER.fullmatch(verifier):
        raise invalid_grant("code_verifier must be 43 to 128 unreserved characters")
    if create_s256_code_challenge(verifier) != challenge:
        raise invalid_grant("code_verifier does not match the code_challenge")


def _check_resource(form: Mapping[str, str], grant: Grant) -> None:
    """RFC 8707 §2.2: "The resource value(s) that is acceptable to an authorization server
    in fulfilling an access token request is at its sole discretion ... such policy may
    limit the acceptable resources to those that were originally granted": here exactly
    the one granted; anything else is invalid_target ("The requested resource is invalid,
    missing, unknown, or malformed")."""
    if "resource" in form and form["resource"] != grant.resource:
        raise OAuthError("invalid_target", "resource differs from the one authorized")


def refresh_binding(client: ClientSettings, jkt: str | None) -> str | None:
    """RFC 9449 §5: "When an authorization server supporting DPoP issues a refresh token
    to a public client that presents a valid DPoP proof at the token endpoint, the refresh
    token MUST be bound to the respective public key." "Refresh tokens issued to
    confidential clients ... are not bound to the DPoP proof public key"."""
    return jkt if client.type == "public" else None


def check_refresh_binding(bound: str | None, jkt: str | None) -> None:
    """RFC 9449 §5: "The binding MUST be validated when the refresh token is later
    presented ... such a client MUST present a DPoP proof for the same key that was used
    to obtain the refresh token". The RFC names no error code; a refresh token presented
    without its key is one this client cannot use: invalid_grant (RFC 6749 §5.2)."""
    if bound is not None and bound != jkt:
        raise invalid_grant("the refresh token is bound to another DPoP key")


# A consumed code's marker (proxy.store) keeps a note of how far its exchange went: the
# tokens it chose, sealed, until it has issued them; then that it did.
PENDING = "pending"
ISSUED = "issued"
# The longest an exchange holds a consumed code before it settles it: three store calls
# (the consume, the token writes, the settle), each ended within about a second by the
# Redis store's timeouts (proxy.store.redis). A retry that finds the code pending sooner
# waits for the first exchange to settle or to be surely over.
IN_FLIGHT = 3.0
_POLL = 0.05


@dataclass(frozen=True)
class Chosen:
    """The tokens a code exchange will issue, chosen before it consumes the code and kept
    (sealed) in the code's marker: an exchange that Redis interrupted is finished by the
    client's retry with these same values, each written once."""

    access_token: str
    refresh_token: str
    iat: int
    # OpenID Connect Native SSO: the device_secret and the session id (sid) of the device
    # session the exchange opens when the login has the device_sso scope (it is not known
    # before the grant is read, so every exchange chooses them)
    device_secret: str | None = None
    sid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # (dataclasses.asdict recurses and copies: a visible cost on every exchange)
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "iat": self.iat, "device_secret": self.device_secret, "sid": self.sid}

    @classmethod
    def new(cls, grant_id: str, now: int, *, device: bool = False) -> Chosen:
        """``device``: also a device_secret and a sid (a code exchange). All drawn at once."""
        if not device:
            access, refresh = new_values(2)
            return cls(new_grant_value(ACCESS_TOKEN, grant_id, access),
                       new_grant_value(REFRESH_TOKEN, grant_id, refresh), now)
        access, refresh, device_secret, sid = new_values(4)
        return cls(new_grant_value(ACCESS_TOKEN, grant_id, access),
                   new_grant_value(REFRESH_TOKEN, grant_id, refresh), now,
                   DEVICE_SECRET + device_secret, sid)


def _check_code(record: Code, client: ClientSettings, form: Mapping[str, str],
                jkt: str | None) -> None:  # fmt: skip
    """Everything the token request must match of the code it presents."""
    # RFC 6749 §4.1.3: "ensure that the authorization code was issued to the
    # authenticated confidential client, or if the client is public, ensure that the
    # code was issued to "client_id" in the request"
    if record.client_id != client.client_id:
        raise invalid_grant("the authorization code was issued to another client")
    # "ensure that the "redirect_uri" parameter is present if the "redirect_uri"
    # parameter was included in the initial authorization request ..., and if
    # included ensure that their values are identical."
    if form.get("redirect_uri") != record.redirect_uri:
        raise invalid_grant("redirect_uri differs from the one in the authorization request")
    _check_pkce(form.get("code_verifier"), record.code_challenge)
    # RFC 9449 §10: "the authorization server computes the JWK Thumbprint of the
    # proof-of-possession public key in the DPoP proof and verifies that it matches the
    # dpop_jkt parameter value in the authorization request. If they do not match, it MUST
    # reject the request."
    if record.dpop_jkt is not None and record.dpop_jkt != jkt:
        raise invalid_grant("the authorization code is bound to another DPoP key (dpop_jkt)")


async def exchange_code(
    svc: Services, client: ClientSettings, form: Mapping[str, str], *, jkt: str | None = None
) -> dict[str, Any]:
    """``jkt``: the thumbprint of the request's valid DPoP proof key, if it had one."""
    code = form.get("code")
    if not code:
        raise OAuthError("invalid_request", "code is required")
    grant_id = grant_of(AUTHORIZATION_CODE, code)
    if grant_id is None:
        raise invalid_grant("the authorization code is unknown or expired")
    # checked before the code is consumed: a wrong device-key JWT does not use the code up
    device = None
    if DEVICE_KEY_JWT in form:
        device = await check_device_jwt(svc, client, form[DEVICE_KEY_JWT], action=SETUP,
                                        grant_id=grant_id)
    lifetimes = svc.config.lifetimes
    chosen = Chosen.new(grant_id, svc.now(), device=True)
    # the consume and the grant's read in one round trip (one batch: proxy.store.redis);
    # the grant is used only once the consumed code's own record names it
    consumed, grant_data = await asyncio.gather(
        svc.store.consume(Code.kind, code, now=svc.moment(),
                          marker_ttl=max(lifetimes.authorization_code, lifetimes.access_token),
                          note={PENDING: svc.cipher.encrypt(chosen.to_dict())}),
        svc.store.find(Grant.kind, grant_id),
    )
    if consumed is None:
        raise invalid_grant("the authorization code is unknown or expired")
    if consumed.replay:
        record, chosen = await _resume_exchange(svc, client, form, code, consumed.payload,
                                                grant_id, jkt)  # fmt: skip
    else:
        record = Code.from_json(consumed.payload)
        if record.grant_id != grant_id:  # cannot be: the store's key hashes the whole code
            raise invalid_grant("the authorization code is unknown or expired")
        _check_code(record, client, form, jkt)
    continue_trace(record.trace)  # traces on: the exchange is a step of the login's trace
    grant = _alive(grant_data)
    _check_resource(form, grant)
    grant = await _bind(svc, grant, chosen, device)
    response = await mint(svc, grant, grant.scope, nonce=record.nonce, jkt=jkt,
                           refresh_jkt=refresh_binding(client, jkt), chosen=chosen,
                          details=rar.for_token(form, grant))
    if grant.sid is not None:
        # Native SSO §3.4: "If the authorization request included the device_sso scope
        # then the authorization server MUST return a device_secret in the response."
        response["device_secret"] = chosen.device_secret
    # From here on the code is used: a later exchange of it is a replay. If this write
    # fails the client gets a 503 instead of the tokens, and its retry finishes the exchange.
    await svc.store.settle(Code.kind, code, {ISSUED: True})
    issued(grant, response)
    return response


async def _bind(svc: Services, grant: Grant, chosen: Chosen, device: DeviceProof | None
                ) -> Grant:  # fmt: skip
    """What a code exchange adds to its grant: the device key a device-key JWT bound
    (App2App approvals, proxy.oauth.own_apps), and under the device_sso scope the device
    session (Native SSO §3.2, stored under the device_secret's hash). A retry of an
    interrupted exchange writes the same values again (they were chosen before it)."""
    changes: dict[str, Any] = {}
    if device is not None:
        if OFFLINE_ACCESS not in grant.scope:
            raise OAuthError("invalid_request", "a device key is bound only to a login with "
                             "offline_access: its refresh token approves")
        changes["device_key"] = device.jwk
    if DEVICE_SSO in grant.scope and chosen.device_secret and chosen.sid:
        changes["sid"] = chosen.sid
        changes["ds_hash"] = ds_hash(chosen.device_secret)
    if not changes:
        return grant
    grant = dataclasses.replace(grant, **changes)
    ttl = grant_ttl(svc, grant.scope)
    if not await svc.store.replace(Grant.kind, grant.grant_id, grant.to_json(), ttl):
        raise invalid_grant("the grant was revoked or has expired")
    if grant.sid is not None and grant.ds_hash is not None and chosen.device_secret:
        session = DeviceSession(grant.sid, grant.grant_id, grant.ds_hash)
        await svc.store.upsert(DeviceSession.kind, chosen.device_secret, session.to_json(), ttl)
    return grant


def ds_hash(device_secret: str) -> str:
    """Native SSO §3.4, ds_hash: "The exact binding between the ds_hash and device_secret
    is not specified by this profile. As this binding is managed solely by the
    Authorization Server, the AS can choose how to protect the relationship between the
    id_token and device_secret." Here as at_hash is made (OIDC Core §3.1.3.6): the left
    half of the SHA-256 of the value, base64url; it reveals nothing of the secret."""
    digest = hashlib.sha256(device_secret.encode("ascii")).digest()
    return b64url(digest[:16])


async def _resume_exchange(
    svc: Services, client: ClientSettings, form: Mapping[str, str], code: str,
    marker: Mapping[str, Any], grant_id: str, jkt: str | None,
) -> tuple[Code, Chosen]:
    """A code whose consume marker is found: a replay, or the retry of an exchange that
    never issued its tokens.

    RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than once. If
    an authorization code is used more than once, the authorization server MUST deny the
    request and SHOULD revoke (when possible) all tokens previously issued based on that
    authorization code." §10.5: "Authorization codes MUST be short lived and single-use.
    If the authorization server observes multiple attempts to exchange an authorization
    code for an access token, the authorization server SHOULD attempt to revoke all access
    tokens already granted based on the compromised authorization code."

    A code is used once its exchange has issued tokens. An exchange that the store
    interrupted (its client got 503 ``temporarily_unavailable``, which invites the retry)
    issued none: its marker still holds the tokens it chose. The same request again (same
    client, redirect_uri, code_verifier and DPoP key) finishes that exchange with those
    tokens, once the first can no longer be running (``IN_FLIGHT``) and up to
    ``refresh_grace`` after that; no second set of tokens exists. Later it is refused
    without revoking: nothing was issued. Anything else is a replay and revokes the grant,
    as the RFC has it: a code whose exchange issued tokens (a duplicate sent alongside the
    first waits for it, and is one), or another client, verifier or DPoP key (the code
    leaked, not the verifier)."""
    started = time.monotonic()
    data = marker.get("record")
    if not isinstance(data, Mapping) or PENDING not in (marker.get("note") or {}):
        await _replayed(svc, client, grant_id)  # issued (or a marker of an older version)
    record = Code.from_json(data)
    try:
        _check_code(record, client, form, jkt)
    except OAuthError:
        await _replayed(svc, client, grant_id)
    consumed_at = float(marker.get("consumed_at") or 0)
    while svc.moment() - consumed_at <= IN_FLIGHT and time.monotonic() - started <= IN_FLIGHT:
        # the first exchange may still be running: wait until it settles or surely ended
        await asyncio.sleep(_POLL)
        again = await svc.store.consume(Code.kind, code, now=svc.moment(), marker_ttl=None)
        if again is None:
            raise invalid_grant("the authorization code is unknown or expired")
        marker = again.payload
        if PENDING not in (marker.get("note") or {}):
            await _replayed(svc, client, grant_id)
    elapsed = svc.moment() - consumed_at
    if elapsed > IN_FLIGHT + svc.config.lifetimes.refresh_grace:
        raise invalid_grant("the authorization code is unknown or expired")
    chosen = _sealed(svc, marker, "the authorization code is unknown or expired")
    log.info("code_exchange_resumed", grant_fingerprint=fingerprint(grant_id),
             after_ms=round(elapsed * 1000))  # fmt: skip
    return record, chosen


def _sealed(svc: Services, marker: Mapping[str, Any], refusal: str) -> Chosen:
    """The tokens a consume marker's note holds, sealed (``refusal``: the invalid_grant's
    description when they were sealed with a key since removed)."""
    try:
        return Chosen(**svc.cipher.decrypt(str(marker["note"][PENDING])))
    except Unreadable as exc:
        raise invalid_grant(refusal) from exc


async def _replayed(svc: Services, client: ClientSettings, grant_id: str) -> NoReturn:
    audit.code_replayed(client.client_id, grant_id)
    await svc.store.revoke_grant(grant_id)
    audit.token_revoked("grant", "code_replay", grant_id)
    raise invalid_grant("the authorization code was already used")


def _alive(data: dict[str, Any] | None) -> Grant:
    if data is None:
        raise invalid_grant("the grant was revoked or has expired")
    return Grant.from_json(data)


async def _live_grant(svc: Services, grant_id: str) -> Grant:
    return _alive(await svc.store.find(Grant.kind, grant_id))


async def mint(
    svc: Services,
    grant: Grant,
    scope: tuple[str, ...],
    *,
    nonce: str | None,
    jkt: str | None,
    refresh_jkt: str | None,
    chosen: Chosen | None = None,
    details: Details | None = None,
) -> dict[str, Any]:
    """Mint an access token (and a refresh token under offline_access) for ``grant``; the
    access token is DPoP-bound to ``jkt``, the refresh token to ``refresh_jkt``; it carries
    ``details`` of the grant's authorization_details (None: all of them).

    ``chosen``: the values (and issue time) a code exchange chose before it consumed the
    code. Each is written only where nothing is (SET NX): the retry that finishes an
    interrupted exchange never overwrites what the first attempt wrote, nor the marker a
    refresh token leaves once used. (Until the exchange settles, no answer has carried
    these tokens, so none can have been revoked.)"""
    details = grant.authorization_details if details is None else details
    lifetimes = svc.config.lifetimes
    now = svc.now()
    if chosen is None:
        chosen = Chosen.new(grant.grant_id, now)
        write_once = False
    else:
        write_once = True
    access_token, iat = chosen.access_token, chosen.iat
    # The access token's record holds what is its own; who logged in, how, and the bank's
    # tokens are read from its grant, which introspection reads in the same round trip.
    at = AccessToken(
        # RFC 6749 §6: a refresh may narrow the scope; only a narrower one is stored
        scope=None if scope == grant.scope else scope,
        iat=iat,
        exp=iat + lifetimes.access_token,
        aud=grant.resource,
        jkt=jkt,
        authorization_details=None if details == grant.authorization_details else details,
    )
    writes: list[tuple[str, str, dict[str, Any], int]] = [
        (AccessToken.kind, access_token, at.to_json(), max(1, at.exp - now))]
    response: dict[str, Any] = {
        "access_token": access_token,
        # RFC 9449 §5: "A token_type of DPoP MUST be included in the access token response
        # to signal to the client that the access token was bound to its DPoP key"
        "token_type": "DPoP" if jkt is not None else "Bearer",
        "expires_in": max(1, at.exp - now),
        "scope": " ".join(scope),
    }
    if details is not None:
        # RFC 9396 §7: "the authorization server MUST also return the
        # authorization_details as granted by the resource owner and assigned to the
        # respective access token"
        response["authorization_details"] = [dict(d) for d in details]
    if "openid" in grant.scope:
        response["id_token"] = id_token(svc, grant, access_token, nonce=nonce, scope=scope)
    if OFFLINE_ACCESS in grant.scope:
        rt = RefreshToken(grant.grant_id, iat, iat + lifetimes.refresh_token, jkt=refresh_jkt)
        writes.append((RefreshToken.kind, chosen.refresh_token, rt.stored(chosen.refresh_token),
                       max(1, rt.exp - now)))  # fmt: skip
        response["refresh_token"] = chosen.refresh_token
    if write_once:  # one round trip either way
        await svc.store.add_many(writes)
    else:
        await svc.store.upsert_many(writes)
    return response


def issued(grant: Grant, response: Mapping[str, Any]) -> None:
    audit.tokens_issued(grant.client_id, grant.grant_id,
                        [kind for kind in audit.RESPONSE_KINDS if kind in response])


def _check_refresh(form: Mapping[str, str], client: ClientSettings, grant: Grant,
                   bound: str | None, jkt: str | None) -> tuple[str, ...]:  # fmt: skip
    """A refresh token of ``grant`` (bound to the key ``bound``) presented by ``client``
    with the proof key ``jkt``: refused unless it is that client's, with that key, for no
    more than granted; the scope the new access token gets."""
    # RFC 6749 §6: "validate the refresh token and ensure that it was issued to the
    # authenticated client"
    if grant.client_id != client.client_id:
        raise invalid_grant("the refresh token was issued to another client")
    check_refresh_binding(bound, jkt)
    scope = _requested_scope(form, grant.scope)
    _check_resource(form, grant)
    rar.for_token(form, grant)  # RFC 9396 §6: never more than granted
    return scope


def _requested_scope(form: Mapping[str, str], granted: tuple[str, ...]) -> tuple[str, ...]:
    """RFC 6749 §6: "The requested scope MUST NOT include any scope not originally
    granted by the resource owner, and if omitted is treated as equal to the scope
    originally granted by the resource owner." """
    requested = form.get("scope")
    if requested is None:
        return granted
    scope = tuple(dict.fromkeys(requested.split()))
    if not set(scope) <= set(granted):
        raise OAuthError("invalid_scope", "scope exceeds the scope originally granted")
    return scope


async def refresh(
    svc: Services, client: ClientSettings, form: Mapping[str, str], *, jkt: str | None = None
) -> dict[str, Any]:
    """``jkt``: the thumbprint of the request's valid DPoP proof key, if it had one."""
    token = form.get("refresh_token")
    if not token:
        raise OAuthError("invalid_request", "refresh_token is required")
    # Checked before the token is consumed, so that a request the token's client would
    # not make (a thief's without the DPoP key, another client's, a wider scope) does
    # not use it up; checked again on what the consume took.
    grant: Grant | None = None
    opened: BankTokens | None = None  # the bank tokens of ``grant``, once decrypted
    chosen: Chosen | None = None
    named = grant_of(REFRESH_TOKEN, token)
    if named is not None:  # the token names its grant: both records in one round trip
        data, found = await svc.store.find_many(
            [(RefreshToken.kind, token), (Grant.kind, named)])
    else:  # a token of the older form: its record names the grant
        data, found = await svc.store.find(RefreshToken.kind, token), None
    existing = None if data is None else RefreshToken.of(token, data)
    if existing is not None:
        if named is None:
            found = await svc.store.find(Grant.kind, existing.grant_id)
        if found is not None:
            grant = Grant.from_json(found)
            _check_refresh(form, client, grant, existing.jkt, jkt)
            opened = _bank_tokens(svc, grant)  # sealed with a key since removed: refused
        # the tokens this rotation issues, chosen before the consume and sealed in its
        # marker (as a code exchange's): a rotation the store interrupts is finished by
        # the client's retry with these same tokens (_refresh_again)
        chosen = Chosen.new(existing.grant_id, svc.now())
    consumed = await _consume_refresh(svc, token, chosen)
    if consumed is None:
        raise invalid_grant("the refresh token is unknown or expired")
    if consumed.replay:
        return await _refresh_again(svc, client, form, token, consumed.payload, jkt)
    rt = RefreshToken.of(token, consumed.payload)
    if chosen is None or existing is None or existing.grant_id != rt.grant_id:
        # the token was given back (a rotation the bank did not answer) between the find
        # and the consume: nothing was sealed, so a retry is told apart as before it was
        chosen = Chosen.new(rt.grant_id, svc.now())
    if grant is None or grant.grant_id != rt.grant_id:
        grant, opened = await _live_grant(svc, rt.grant_id), None
    scope = _check_refresh(form, client, grant, rt.jkt, jkt)
    return await _rotate(svc, client, form, token, rt, grant, scope, chosen, opened, jkt)


async def _consume_refresh(svc: Services, token: str, chosen: Chosen | None
                           ) -> Consumed | None:  # fmt: skip
    """The single-use consume of a refresh token; its marker keeps the record and, sealed,
    the tokens ``chosen`` for the rotation (None: no note)."""
    note = None if chosen is None else {PENDING: svc.cipher.encrypt(chosen.to_dict())}
    return await svc.store.consume(RefreshToken.kind, token, now=svc.moment(),
                                   marker_ttl=None, note=note)


async def _rotate(
    svc: Services, client: ClientSettings, form: Mapping[str, str], token: str,
    rt: RefreshToken, grant: Grant, scope: tuple[str, ...], chosen: Chosen,
    opened: BankTokens | None, jkt: str | None,
) -> dict[str, Any]:
    """What a rotation does once its refresh token is consumed (or a retry that finishes
    an interrupted one): the bank's tokens refreshed when due, the new tokens written once
    each, the pair kept for ``refresh_grace``, then the token marked rotated."""
    try:
        grant = await _refresh_bank_tokens(svc, grant, opened)
    except BankError as exc:
        if exc.error == "temporarily_unavailable":
            # nothing lost: the refresh token comes back as it was, the client retries
            await svc.store.upsert(RefreshToken.kind, token, rt.stored(token),
                                   max(1, rt.exp - svc.now()))
            raise OAuthError("temporarily_unavailable", exc.description, status=503,
                             headers={"Retry-After": "1"}, detail=exc.detail) from exc
        await svc.store.revoke_grant(grant.grant_id)
        audit.token_revoked("grant", "bank_refusal", grant.grant_id)
        raise invalid_grant("the bank refused to refresh its tokens; log in again") from exc
    if not await svc.store.replace(Grant.kind, grant.grant_id, grant.to_json(),
                                   svc.config.lifetimes.refresh_token):
        raise invalid_grant("the grant was revoked")
    # RFC 9449 §5: the refreshed access token is bound to this request's proof key
    response = await mint(svc, grant, scope, nonce=None, jkt=jkt,
                          refresh_jkt=refresh_binding(client, jkt), chosen=chosen,
                          details=rar.for_token(form, grant))
    pair = {**response, "exp": svc.now() + int(response["expires_in"])}
    rotated = RotatedPair(grant.grant_id, client.client_id, svc.cipher.encrypt(pair), jkt=jkt)
    await svc.store.upsert(
        RotatedPair.kind, token, rotated.to_json(), svc.config.lifetimes.refresh_grace + 1
    )
    # From here on the token is rotated: a later use is a retry inside refresh_grace, then
    # a reuse. If this write fails the client gets a 503, and its retry finishes the rotation.
    await svc.store.settle(RefreshToken.kind, token, {ISSUED: True})
    issued(grant, response)
    return response


# The longest a rotation's store calls can run after its consume: four (the grant's write,
# the tokens', the pair's, the settle), each ended within about a second by the Redis
# store's timeouts (proxy.store.redis).
ROTATION_IN_FLIGHT = 4.0


def refresh_in_flight(svc: Services, grant: Grant) -> float:
    """The longest a rotation can still be running after its consume: its store calls,
    and the bank's refresh when it was due (the bank's ``timeout``)."""
    bank = svc.bank(grant.bank_id)
    return ROTATION_IN_FLIGHT + (bank.timeout if bank is not None else 0.0)


async def _refresh_again(
    svc: Services, client: ClientSettings, form: Mapping[str, str], token: str,
    marker: Mapping[str, Any], jkt: str | None,
) -> dict[str, Any]:
    """A refresh token whose consume marker is found. Rotated (its marker settled, or of
    an older version): a retry inside ``refresh_grace``, else a reuse
    (:func:`_retry_within_grace`). Not rotated yet (the marker still holds the tokens the
    first use chose): the first use is still running, or the store interrupted it and its
    client got a 503, which invites this retry. The same client with the same DPoP key
    waits for the first use while it may run: its pair, once written, is handed out. Once
    the first use is surely over without one, the retry finishes that rotation with the
    tokens it chose, each written once, up to ``refresh_grace`` later (the access token's
    iat is the first use's); after that the token is refused, and nothing is revoked
    (nothing was issued)."""
    arrived = svc.moment()
    started = time.monotonic()
    record = marker.get("record")
    if PENDING not in (marker.get("note") or {}) or not isinstance(record, Mapping):
        return await _retry_within_grace(svc, client, token, marker, jkt, arrived=arrived)
    rt = RefreshToken.of(token, record)
    grant = await _live_grant(svc, rt.grant_id)
    scope = _check_refresh(form, client, grant, rt.jkt, jkt)
    consumed_at = float(marker.get("consumed_at") or 0)
    bound = refresh_in_flight(svc, grant)
    while svc.moment() - consumed_at <= bound and time.monotonic() - started <= bound:
        await asyncio.sleep(_POLL)
        pair, live = await svc.store.find_many(
            [(RotatedPair.kind, token), (RefreshToken.kind, token)])
        if pair is not None:  # the first use rotated it while this one waited
            return await _retry_within_grace(svc, client, token, marker, jkt, arrived=None)
        if live is not None:
            # the first use gave the token back (the bank did not answer): it is live
            # again, and the client's next try is a rotation of its own
            raise OAuthError("temporarily_unavailable", "the refresh token's rotation did not "
                             "finish; retry", status=503, headers={"Retry-After": "1"})
    if svc.moment() - consumed_at > bound + svc.config.lifetimes.refresh_grace:
        raise invalid_grant("the refresh token's rotation was interrupted too long ago; "
                            "log in again")
    # The first use is surely over. A consume finds its marker as it was (or the token
    # given back, or the marker a settle has just changed).
    fresh = Chosen.new(rt.grant_id, svc.now())
    again = await _consume_refresh(svc, token, fresh)
    if again is None:
        raise invalid_grant("the refresh token is unknown or expired")
    if not again.replay:  # the token was given back, and this consume took it
        return await _rotate(svc, client, form, token, RefreshToken.of(token, again.payload),
                             grant, scope, fresh, None, jkt)
    note = again.payload.get("note") or {}
    if note.get(PENDING) != (marker.get("note") or {}).get(PENDING):
        return await _retry_within_grace(svc, client, token, again.payload, jkt, arrived=None)
    chosen = _sealed(svc, again.payload, "the refresh token's rotation cannot be finished; "
                     "log in again")
    log.info("refresh_resumed", grant_fingerprint=fingerprint(rt.grant_id),
             after_ms=round((svc.moment() - consumed_at) * 1000))
    return await _rotate(svc, client, form, token, rt, grant, scope, chosen, None, jkt)
async def _refresh_bank_tokens(svc: Services, grant: Grant,
                               opened: BankTokens | None = None) -> Grant:  # fmt: skip
    """Refresh at the bank when its access token would expire before the new merchant
    access token does. The refresh token's single-use consume makes this single-flight
    per grant, across instances."""
    tokens = opened if opened is not None else _bank_tokens(svc, grant)
    horizon = svc.now() + svc.config.lifetimes.access_token
    if tokens.refresh_token is None or tokens.expires_at is None or tokens.expires_at > horizon:
        if svc.cipher.kid_of(grant.bank_tokens) != svc.cipher.kid:
            # sealed with a key that now only decrypts: sealed again with the one that
            # encrypts, so that once every grant has been refreshed or has expired the old
            # key may leave keys.token_encryption (docs/key-rotation.md)
            return dataclasses.replace(grant, bank_tokens=svc.cipher.encrypt(tokens.to_dict()))
        return grant
    adapter = svc.adapters.get(grant.bank_id)
    if adapter is None:
        raise BankError("server_error", "the bank of this grant is no longer configured")
    fresh = await adapter.refresh(tokens)
    log.info("bank_tokens_refreshed", bank_id=grant.bank_id)
    return dataclasses.replace(grant, bank_tokens=svc.cipher.encrypt(fresh.to_dict()))


def _bank_tokens(svc: Services, grant: Grant) -> BankTokens:
    """The grant's bank tokens; a grant sealed with a key no longer configured can no
    longer be refreshed (the refresh token stays as it was)."""
    try:
        return BankTokens.from_dict(svc.cipher.decrypt(grant.bank_tokens))
    except Unreadable as exc:
        raise invalid_grant("this login can no longer be refreshed; log in again") from exc


async def _retry_within_grace(
    svc: Services, client: ClientSettings, token: str, marker: Mapping[str, Any],
    jkt: str | None, *, arrived: float | None,
) -> dict[str, Any]:
    """A refresh token used again: inside ``refresh_grace`` the client gets the pair the
    first use produced (a lost response is retried) when it proves the same DPoP key the
    first use did (if it proved one); after it, RFC 9700 §4.14.2: the
    authorization server "cannot determine which party submitted the invalid refresh
    token, it will revoke the active refresh token", here the whole grant.

    ``arrived``: when this request came (None: while the first use was still rotating the
    token, so it is no reuse, however long it waited)."""
    grant_id = RefreshToken.grant_named(token, marker)
    grace = svc.config.lifetimes.refresh_grace
    if grant_id is None:
        raise invalid_grant("the refresh token is unknown or expired")
    # to the millisecond on both sides (Services.moment, the marker's consumed_at): a
    # reuse 2.6 s after the first use is outside a refresh_grace of 2
    consumed_at = float(marker.get("consumed_at") or 0)
    if arrived is not None and arrived - consumed_at > grace:
        await svc.store.revoke_grant(grant_id)
        audit.refresh_reused(client.client_id, grant_id)
        audit.token_revoked("grant", "refresh_reuse", grant_id)
        raise invalid_grant("the refresh token was already used; the grant is revoked")
    # the first use may still be minting the pair: wait for it, never past the window
    give_up = time.monotonic() + grace
    while True:
        data, grant_data = await svc.store.find_many(
            [(RotatedPair.kind, token), (Grant.kind, grant_id)])
        if grant_data is None:
            # revoked since the first use (the client's /revoke, an operator, a replay):
            # the pair it produced is dead, and is never handed out again
            raise invalid_grant("the grant was revoked or has expired")
        if data is not None:
            rotated = RotatedPair.from_json(data)
            if rotated.client_id != client.client_id:
                raise invalid_grant("the refresh token was issued to another client")
            check_refresh_binding(rotated.jkt, jkt)
            try:
                pair = svc.cipher.decrypt(rotated.pair)
            except Unreadable as exc:  # sealed with a key removed within the window
                raise invalid_grant("the refresh token was already used") from exc
            pair["expires_in"] = max(0, int(pair.pop("exp")) - svc.now())
            return pair
        if time.monotonic() > give_up or svc.moment() - consumed_at > grace:
            raise invalid_grant("the refresh token was already used")
        await asyncio.sleep(0.05)


async def active_access_token(svc: Services, token: str) -> tuple[AccessToken, Grant] | None:
    """The access token's record and its grant while the token is valid: not expired,
    not revoked, its grant alive; both read in one round trip. Refresh tokens and codes
    are never found here (another kind, and not of the access token's form)."""
    grant_id = grant_of(ACCESS_TOKEN, token)
    if grant_id is None:
        return None
    at_data, grant_data = await svc.store.find_many(
        [(AccessToken.kind, token), (Grant.kind, grant_id)])
    if at_data is None or grant_data is None:
        return None
    at = AccessToken.from_json(at_data)
    if at.exp <= svc.now():
        return None
    return at, Grant.from_json(grant_data)


async def revoke(svc: Services, client: ClientSettings, token: str, hint: str | None) -> None:
    """RFC 7009 §2.1: revoking a refresh token revokes its grant; an access token is
    destroyed alone. "If the server is unable to locate the token using the given hint,
    it MUST extend its search across all of its supported token types." """
    kinds = (RefreshToken.kind, AccessToken.kind)
    if hint == "access_token":
        kinds = (AccessToken.kind, RefreshToken.kind)
    for kind in kinds:
        if kind == AccessToken.kind:
            # an access token whose grant is gone is already dead: nothing to revoke
            active = await active_access_token(svc, token)
            if active is None:
                continue
            client_id, grant_id = active[1].client_id, active[1].grant_id
        else:
            # a refresh token rotated within refresh_grace still fetches the pair it
            # became (_retry_within_grace): revoking it revokes its grant like the new one
            current, rotated = await svc.store.find_many(
                [(kind, token), (RotatedPair.kind, token)])
            data = current or rotated
            named = None if data is None else RefreshToken.grant_named(token, data)
            found = None if named is None else await svc.store.find(Grant.kind, named)
            if named is None or found is None:  # a grant gone takes its refresh token along
                continue
            client_id, grant_id = found["client_id"], named
        # "verifies whether the token was issued to the client making the revocation
        # request. If this validation fails, the request is refused and the client is
        # informed of the error"; RFC 6749 §5.2 names the error for a grant "issued to
        # another client": invalid_grant.
        if client_id != client.client_id:
            raise invalid_grant("the token was issued to another client")
        if kind == RefreshToken.kind:
            await svc.store.revoke_grant(grant_id)
            audit.token_revoked("refresh_token", "client", grant_id)
        else:
            await svc.store.destroy(kind, token)
            audit.token_revoked("access_token", "client", grant_id)
        return
