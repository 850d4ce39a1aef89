"""Device keys of the merchant's own apps: the single-use challenges of ``POST /challenge``
and the device-key JWTs that bind a key to a login at its code exchange (``setup``) and
prove it when that login approves another app's (``approve``: proxy.oauth.own_apps).

Authgear's App2App design (authgear-server docs/specs/app2app.md) is the model, and its
names are used where they fit: the code exchange's parameter ``x_app2app_device_key_jwt``
"should be a jwt signed by the private key of the device key, and containing the public
key of that key pair in header, with a challenge obtained from server in payload"; the
payload's ``challenge``, ``iat`` and ``action`` (``setup``, as Authgear's SDKs send it
when they bind a key). Its own ``typ`` (:data:`TYP`), so that no other JWT of the app
(a DPoP proof, a client assertion) is taken for one.

A challenge is 256 random bits, kept under its hash for ``lifetimes.challenge`` seconds,
for the client that asked for it, and consumed by the first JWT that carries it. A code
exchange the store interrupted (503) is retried with the same JWT: the consume marker
notes the login and the key it bound, and that same pair is let through again (a retry,
not a replay) while the marker lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from jwcrypto import jwk
from jwcrypto.common import JWException

from proxy.config.settings import ClientSettings
from proxy.model.records import Challenge
from proxy.model.tokens import CHALLENGE, new_value
from proxy.oauth import dpop
from proxy.oauth.errors import OAuthError
from proxy.oauth.jose import DATE_CLAIMS, numeric_date
from proxy.oauth.services import Services

DEVICE_KEY_JWT = "x_app2app_device_key_jwt"  # the code exchange's parameter
TYP = "app2app-device-key+jwt"
SETUP = "setup"  # binds the key to the login whose code is exchanged
APPROVE = "approve"  # the bound key approves another app's login
# the algs a device key may sign with (those of DPoP proofs, RFC 9449: asymmetric only);
# the key is checked as a DPoP proof's is (dpop.public_key)
ALGS = dpop.ALGS
IAT_WINDOW = 60  # seconds either side of now


@dataclass(frozen=True)
class DeviceProof:
    """A checked device-key JWT: its public key and that key's RFC 7638 thumbprint."""

    jwk: dict[str, Any]
    jkt: str


def _invalid(description: str, detail: str = "") -> OAuthError:
    return OAuthError("invalid_grant", description, detail=detail)


async def new_challenge(svc: Services, client: ClientSettings) -> dict[str, Any]:
    """``POST /challenge``: a challenge for one device-key JWT of ``client``, an approver
    (``approve_for``): only it binds device keys and approves with them."""
    if not client.approve_for:
        raise OAuthError("unauthorized_client", "this client approves no other client's "
                         "logins (approve_for), so it signs no device-key JWT")
    value = new_value(CHALLENGE)
    ttl = svc.config.lifetimes.challenge
    await svc.store.upsert(Challenge.kind, value, Challenge(client.client_id).to_json(), ttl)
    return {"challenge": value, "expires_in": ttl}


def _thumbprint(params: dict[str, Any]) -> str:
    return str(jwk.JWK(**params).thumbprint())


async def check_device_jwt(
    svc: Services, client: ClientSettings, token: str, *, action: str, grant_id: str,
    bound: dict[str, Any] | None = None,
) -> DeviceProof:
    """The device-key JWT ``token`` of ``client`` for ``action`` on the login ``grant_id``,
    signed by the key in its ``jwk`` header, or (``bound``) by that bound key only. Its
    challenge is consumed; every refusal is ``invalid_grant`` (RFC 6749 §5.2: "The provided
    authorization grant ... is invalid, expired, revoked"): the JWT is part of the grant
    the request presents."""
    if not client.approve_for:
        raise OAuthError("invalid_request", "this client binds no device key: it approves "
                         "no other client's logins (approve_for)")
    try:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != TYP:
            raise dpop.Refused(f"the device-key JWT's typ must be {TYP}")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGS:
            raise dpop.Refused(f"the device-key JWT's alg must be one of {' '.join(ALGS)}")
        key = dpop.public_key(header, alg, noun="device key")
        jkt = _thumbprint(header["jwk"])
        if bound is not None and jkt != _thumbprint(bound):
            raise dpop.Refused("the device key is not the one bound to this login")
        claims = jwt.decode(token, key.key, algorithms=[alg],
                            options={"require": ["iat"], "verify_iat": False,
                                     "verify_aud": False, "verify_exp": False,
                                     "verify_nbf": False})  # fmt: skip
    except dpop.Refused as exc:
        raise _invalid(exc.description) from exc
    except (jwt.PyJWTError, JWException, ValueError, TypeError, KeyError) as exc:
        # a library's text may quote the JWT: the client gets a fixed one
        raise _invalid("the device-key JWT is not a JWT signed by the key in its jwk "
                       "header, or one of its claims is malformed",
                       detail=f"{type(exc).__name__}: {exc}"[:300]) from exc
    # RFC 7519 §2: the dates are NumericDates
    dates = {name: numeric_date(claims[name]) for name in DATE_CLAIMS if name in claims}
    if None in dates.values():
        raise _invalid("the device-key JWT's iat, exp and nbf must be numbers of seconds")
    now = svc.now()
    iat = dates["iat"]
    if iat is None or abs(now - iat) > IAT_WINDOW:
        raise _invalid(f"the device-key JWT's iat must be within {IAT_WINDOW} seconds of now")
    exp = dates.get("exp")
    if exp is not None and exp <= now:
        raise _invalid("the device-key JWT has expired")
    if claims.get("action") != action:
        raise _invalid("the device-key JWT's action is not the one this request takes")
    challenge = claims.get("challenge")
    if not isinstance(challenge, str) or not challenge.startswith(CHALLENGE):
        raise _invalid("the device-key JWT carries no challenge from POST /challenge")
    await _consume(svc, client, challenge, {"grant_id": grant_id, "jkt": jkt},
                   again=action == SETUP)
    return DeviceProof(jwk=dict(header["jwk"]), jkt=jkt)


async def _consume(svc: Services, client: ClientSettings, challenge: str,
                   use: dict[str, str], *, again: bool) -> None:  # fmt: skip
    """Take the challenge once. Its marker notes ``use`` (the login, the key): a second
    use is refused, unless ``again`` (a binding, which writes the same key however often
    it runs) and it is that same one: the retry of a code exchange Redis interrupted,
    which sends the same JWT. An approval's challenge is never used twice."""
    consumed = await svc.store.consume(Challenge.kind, challenge, now=svc.moment(),
                                       marker_ttl=None, note=use)
    if consumed is None:
        raise _invalid("the challenge is unknown or expired")
    record = consumed.payload.get("record") if consumed.replay else consumed.payload
    if not isinstance(record, dict) or record.get("client_id") != client.client_id:
        raise _invalid("the challenge was issued to another client")
    if consumed.replay and not (again and consumed.payload.get("note") == use):
        raise _invalid("the challenge was already used")
