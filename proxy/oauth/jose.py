"""The one JWT signer (pyjwt) and the one cipher for bank tokens at rest (jwcrypto JWE)."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jwt
from jwcrypto import jwe, jwk

from proxy.config.rotation import iso, key_status, signer_at
from proxy.config.settings import Lifetimes, SigningKey
from proxy.model.tokens import b64url
from proxy.observability.logs import logger

log = logger("proxy.jose")

_ALG_BY_KEY = {("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "EdDSA", ("RSA", None): "RS256"}
# 9999-12-31T23:59:59Z: no date a JWT we accept can name lies beyond it
_LAST_DATE = 253402300799
# the JWT claims that are dates (RFC 7519 §4.1.4-6)
DATE_CLAIMS = ("exp", "nbf", "iat")


def numeric_date(value: object) -> float | None:
    """``value`` as a NumericDate, or None when it is none. RFC 7519 §2: "A JSON numeric
    value representing the number of seconds from 1970-01-01T00:00:00Z UTC"; RFC 8259
    §6: "Numeric values that cannot be represented in the grammar below (such as Infinity
    and NaN) are not permitted." Python's JSON reader takes NaN, Infinity and 1e400 (an
    infinite float) anyway, and ``true`` is an int to Python: all are refused here, as
    are strings and integers too large for a float, and dates before 1970 or after 9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and not 0 <= value <= _LAST_DATE:
        return None
    date = float(value)
    return date if math.isfinite(date) and 0 <= date <= _LAST_DATE else None


def key_alg(key: jwk.JWK) -> str:
    """The JWS alg a signing key is used with (its ``alg`` member if the operator set one)."""
    params = key.export(private_key=False, as_dict=True)
    if params.get("alg"):
        return str(params["alg"])
    return _ALG_BY_KEY[(params["kty"], params.get("crv"))]


class SigningJWK:
    """One private key, ready to sign: the ``kid`` and ``alg`` it signs with."""

    def __init__(self, key: jwk.JWK) -> None:
        self.kid = str(key["kid"])
        self.alg = key_alg(key)
        self._pyjwk = jwt.PyJWK(key.export(private_key=True, as_dict=True), algorithm=self.alg)

    def sign(self, claims: Mapping[str, Any], typ: str = "JWT") -> str:
        return jwt.encode(
            dict(claims), self._pyjwk.key, algorithm=self.alg, headers={"kid": self.kid, "typ": typ}
        )

    def half_hash(self, value: str) -> str:
        """OIDC Core §3.1.3.6 at_hash: "the base64url encoding of the left-most half of the
        hash of the octets of the ASCII representation of the access_token value, where the
        hash algorithm used is the hash algorithm used in the alg Header Parameter of the ID
        Token's JOSE Header". EdDSA (Ed25519) uses SHA-512, as the OpenID errata do."""
        digest = (hashlib.sha512 if self.alg == "EdDSA" else _SHA[self.alg[-3:]])(
            value.encode("ascii")
        ).digest()
        return b64url(digest[: len(digest) // 2])


class NoSigningKey(RuntimeError):
    """No configured key may sign now (the config check refuses such a schedule)."""


class Signer:
    """Publishes every configured key (rotation); signs with the one whose turn it is.

    The turn is decided at each signature by the clock (:func:`proxy.config.rotation.signer_at`),
    so a key with a ``not_before`` starts signing on time, without a restart, in every
    instance at once.
    """

    def __init__(
        self,
        keys: Sequence[SigningKey],
        *,
        clock: Callable[[], float] = time.time,
        lifetimes: Lifetimes | None = None,
    ) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._keys = tuple(keys)
        self._clock = clock
        self._ready = {k.kid: SigningJWK(k.key) for k in keys}
        public = []
        for entry in keys:
            params = entry.key.export(private_key=False, as_dict=True)
            params.setdefault("alg", key_alg(entry.key))
            params["use"] = "sig"
            public.append(params)
        self.jwks: dict[str, Any] = {"keys": public}
        # every alg a published key signs with: tokens of each may be in flight
        self.algs = sorted({str(k["alg"]) for k in public})
        self._last_kid: str | None = None
        if lifetimes is not None:
            self._log_schedule(lifetimes)

    def active(self) -> SigningJWK:
        """The key that signs now. Take it once per token: an ID token's at_hash and its
        signature must come from the same key."""
        now = self._clock()
        entry = signer_at(self._keys, now)
        if entry is None:
            raise NoSigningKey(f"no signing key may sign at {iso(now)}")
        if entry.kid != self._last_kid:
            if self._last_kid is not None:
                log.info("signing_key_changed", kid=entry.kid, previous=self._last_kid)
            self._last_kid = entry.kid
        return self._ready[entry.kid]

    def sign(self, claims: Mapping[str, Any], typ: str = "JWT") -> str:
        return self.active().sign(claims, typ)

    def _log_schedule(self, lifetimes: Lifetimes) -> None:
        """At start-up (and each reload, which builds a new Signer): what signs, what
        is waiting, and which retired keys may now leave the config."""
        now = self._clock()
        for status in key_status(self._keys, lifetimes, now):
            entry, signs = status.key, status.signs
            if status.signing:
                log.info("signing_key_active", kid=entry.kid, file=entry.file,
                         until=iso(signs.end) if signs else "-")
            elif signs is not None and signs.start > now:
                log.info("signing_key_pending", kid=entry.kid, file=entry.file,
                         signs_from=iso(signs.start))
            if status.removable(now):
                assert status.removable_after is not None
                log.warning("signing_key_removable", kid=entry.kid, file=entry.file,
                            removable_after=iso(status.removable_after),
                            hint="it signs no more and all it signed has expired: "
                            "remove it from keys.signing")


_SHA = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


class Cipher:
    """Bank tokens are stored only encrypted: JWE compact, ``dir`` + ``A256GCM``."""

    _HEADER = json.dumps({"alg": "dir", "enc": "A256GCM"}, separators=(",", ":"))

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the token encryption key must be 32 bytes")
        self._key = jwk.JWK(kty="oct", k=b64url(key))

    def encrypt(self, data: Mapping[str, Any]) -> str:
        token = jwe.JWE(json.dumps(dict(data)).encode(), protected=self._HEADER)
        token.add_recipient(self._key)
        return str(token.serialize(compact=True))

    def decrypt(self, compact: str) -> dict[str, Any]:
        token = jwe.JWE()
        token.deserialize(compact, key=self._key)
        value: dict[str, Any] = json.loads(token.payload)
        return value
