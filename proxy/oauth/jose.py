"""The one JWT signer (pyjwt) and the one cipher for bank tokens at rest (jwcrypto JWE)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jwcrypto import jwe, jwk
from jwcrypto.common import JWException

from proxy.config.keys import token_key_id
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


class Unreadable(Exception):
    """A sealed value that no configured key opens: sealed with a key that is no longer in
    ``keys.token_encryption`` (or never was: another deployment's), or damaged. What it
    sealed is unusable; callers answer as for a token that is no longer valid."""

    def __init__(self, kid: str | None, reason: str) -> None:
        super().__init__(f"sealed value unreadable (kid {kid}): {reason}")
        self.kid = kid
        self.reason = reason


class Cipher:
    """Bank tokens (and the other values kept sealed in the store) are stored only
    encrypted: JWE compact serialization, ``dir`` + ``A256GCM``, the key's id in the
    protected header (``kid``: :func:`proxy.config.keys.token_key_id`), so any JOSE
    library, or AES-GCM alone with the protected header as additional data, opens them.

    The first key encrypts; every key decrypts (a rotation: docs/key-rotation.md). A
    value names its key: one sealed before values carried a ``kid`` is tried with each.

    Sealing is AES-GCM from ``cryptography`` writing that form itself (a code exchange
    seals on every request: jwcrypto took some 0.4 ms); opening is jwcrypto's, which
    reads any JWE (tests/proxy/test_cipher.py checks both ways)."""

    _ALGS = ("dir", "A256GCM")

    def __init__(self, key: bytes, *others: bytes) -> None:
        keys = (key, *others)
        if any(len(k) != 32 for k in keys):
            raise ValueError("the token encryption key must be 32 bytes")
        self._keys = {token_key_id(k): jwk.JWK(kty="oct", k=b64url(k)) for k in keys}
        self.kid = token_key_id(key)
        self.kids = tuple(self._keys)
        self._aead = AESGCM(key)
        header = json.dumps({"alg": "dir", "enc": "A256GCM", "kid": self.kid},
                            separators=(",", ":"))  # fmt: skip
        self._protected = b64url(header.encode())

    def encrypt(self, data: Mapping[str, Any]) -> str:
        """RFC 7516 §7.1 compact serialization; with ``dir`` the JWE Encrypted Key is
        empty (RFC 7518 §4.5). RFC 7518 §5.3: "Use of an IV of size 96 bits is REQUIRED
        with this algorithm"; the Additional Authenticated Data is "ASCII(BASE64URL(UTF8(
        JWE Protected Header)))" (RFC 7516 §5.1, step 14)."""
        iv = secrets.token_bytes(12)
        sealed = self._aead.encrypt(iv, json.dumps(dict(data)).encode(),
                                    self._protected.encode("ascii"))  # fmt: skip
        ciphertext, tag = sealed[:-16], sealed[-16:]
        return f"{self._protected}..{b64url(iv)}.{b64url(ciphertext)}.{b64url(tag)}"

    def decrypt(self, compact: str) -> dict[str, Any]:
        """The sealed value; :class:`Unreadable` (logged with the kid it names) when no
        configured key opens it."""
        token = jwe.JWE()
        token.allowed_algs = list(self._ALGS)
        try:
            token.deserialize(compact)
            header = token.jose_header
        except (JWException, ValueError, TypeError) as exc:
            raise _unreadable(None, "not a JWE compact serialization") from exc
        kid = header.get("kid")
        if kid is not None:
            key = self._keys.get(str(kid))
            if key is None:
                raise _unreadable(str(kid), "no key with this kid is configured")
            candidates = [key]
        else:  # sealed before values named their key
            candidates = list(self._keys.values())
        for key in candidates:
            try:
                token.decrypt(key)
            except (JWException, ValueError, TypeError):
                continue
            value: dict[str, Any] = json.loads(token.payload)
            return value
        raise _unreadable(None if kid is None else str(kid), "the key does not open it")

    def kid_of(self, compact: str) -> str | None:
        """The ``kid`` a sealed value names (None: none, or not a JWE); nothing decrypted."""
        try:
            header = json.loads(base64.urlsafe_b64decode(
                compact.partition(".")[0] + "=" * (-len(compact.partition(".")[0]) % 4)))
        except ValueError:
            return None
        kid = header.get("kid") if isinstance(header, dict) else None
        return kid if isinstance(kid, str) else None


def _unreadable(kid: str | None, reason: str) -> Unreadable:
    log.warning("sealed_value_unreadable", kid=kid, reason=reason,
                hint="sealed with a key not in keys.token_encryption (removed too early?), "
                "or damaged: what it sealed is unusable")  # fmt: skip
    return Unreadable(kid, reason)
