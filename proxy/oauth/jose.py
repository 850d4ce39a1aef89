"""The one JWT signer (pyjwt) and the one cipher for bank tokens at rest (JWE compact,
``dir`` + ``A256GCM``, with ``cryptography``'s AES-GCM; jwcrypto manages the signing keys)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jwt
import orjson
import pybase64
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jwcrypto import jwk

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


_JWS = jwt.PyJWS()


class SigningJWK:
    """One private key, ready to sign: the ``kid`` and ``alg`` it signs with."""

    def __init__(self, key: jwk.JWK) -> None:
        self.kid = str(key["kid"])
        self.alg = key_alg(key)
        self._pyjwk = jwt.PyJWK(key.export(private_key=True, as_dict=True), algorithm=self.alg)
        self.public_key = jwt.PyJWK(key.export(private_key=False, as_dict=True),
                                    algorithm=self.alg).key

    def sign(self, claims: Mapping[str, Any], typ: str = "JWT") -> str:
        """A compact JWS of ``claims`` (RFC 7515 §7.1). The claims' JSON is orjson's, as
        compact as pyjwt's own (which takes the standard library's encoder, several times
        slower, for every ID token); pyjwt writes the header and signs."""
        return _JWS.encode(orjson.dumps(claims if isinstance(claims, dict) else dict(claims)),
                           self._pyjwk.key, algorithm=self.alg,
                           headers={"kid": self.kid, "typ": typ})

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

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a JWT this server signed: its ``kid`` names a published key and
        its ``alg`` is that key's; the signature is checked, the dates are not (the caller
        decides what age it takes). Raises ``jwt.PyJWTError`` (or ValueError) otherwise."""
        header = jwt.get_unverified_header(token)
        key = self._ready.get(str(header.get("kid")))
        if key is None:
            raise jwt.InvalidKeyError("the token names no published key")
        claims: dict[str, Any] = jwt.decode(
            token, key.public_key, algorithms=[key.alg],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                     "verify_aud": False})  # fmt: skip
        return claims

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


class Unreadable(ValueError):
    """A sealed value this cipher does not open: sealed with a key that is no longer in
    ``keys.token_encryption`` (or never was: another deployment's), not a JWE of the form
    it writes, a header it does not implement, or altered (the authentication tag fails).
    What it sealed is unusable; callers answer as for a token that is no longer valid."""

    def __init__(self, kid: str | None, reason: str) -> None:
        super().__init__(f"sealed value unreadable (kid {kid}): {reason}")
        self.kid = kid
        self.reason = reason


def _b64decode(segment: str) -> bytes:
    """base64url without padding (RFC 7515 §2); the caller has refused ``+``, ``/`` and
    ``=`` (pybase64 maps ``-_`` onto them, then validates the standard alphabet)."""
    try:
        return pybase64.b64decode(segment + "=="[: -len(segment) % 4], altchars=b"-_",
                                  validate=True)
    except ValueError as exc:  # binascii.Error, and a str with non-ASCII characters
        raise _unreadable(None, "a part is not base64url") from exc


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7516 §4: "JWE parsers MUST either reject JWEs with duplicate Header Parameter
    # names or use a JSON parser that returns only the lexically last duplicate member
    # name"; this one rejects them
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _unreadable(None, "a header parameter is repeated")
    return members


def _protected_header(kid: str) -> str:
    return b64url(json.dumps({"alg": "dir", "enc": "A256GCM", "kid": kid},
                             separators=(",", ":")).encode())


class Cipher:
    """Bank tokens (and the other values kept sealed in the store) are stored only
    encrypted: JWE compact serialization (RFC 7516 §7.1), ``dir`` + ``A256GCM``, the key's
    id in the protected header (``kid``: :func:`proxy.config.keys.token_key_id`), which any
    JOSE library opens (tests/proxy/test_jose.py and test_cipher.py: jwcrypto both ways).

    The first key encrypts; every key decrypts (a rotation: docs/key-rotation.md). A
    value names its key: one sealed before values carried a ``kid`` is tried with each.

    Written and read with ``cryptography``'s AES-GCM and nothing else: on the hot path
    (introspection for a resource server with ``receive_bank_token``, every code
    exchange) a general JOSE library's object model cost two hundred times the
    cryptography itself. The protected header is parsed strictly: ``alg`` ``dir``,
    ``enc`` ``A256GCM``, an optional ``kid`` and no other parameter (RFC 7516 §5.2 step
    5: the recipient must understand every field it is given; this one knows no
    ``crit``, ``zip`` or any other); the headers this cipher writes itself are known and
    skip the parse."""

    _IV_BYTES = 12  # RFC 7518 §5.3: "Use of an IV of size 96 bits is REQUIRED"
    # RFC 7518 §5.3: "The requested size of the Authentication Tag output MUST be 128 bits"
    _TAG_BYTES = 16

    def __init__(self, key: bytes, *others: bytes) -> None:
        keys = (key, *others)
        if any(len(k) != 32 for k in keys):
            raise ValueError("the token encryption key must be 32 bytes")
        # RFC 7518 §5.3: "The CEK is used as the encryption key"; with dir (§4.5) the CEK
        # is the shared key itself
        self._aeads = {token_key_id(k): AESGCM(k) for k in keys}
        self.kid = token_key_id(key)
        self.kids = tuple(self._aeads)
        self._aead = self._aeads[self.kid]
        self._protected = _protected_header(self.kid)
        self._protected_aad = self._protected.encode("ascii")
        self._known = {_protected_header(kid): kid for kid in self.kids}

    def encrypt(self, data: Mapping[str, Any]) -> str:
        plaintext = orjson.dumps(data if isinstance(data, dict) else dict(data))
        iv = os.urandom(self._IV_BYTES)
        # RFC 7516 §5.1 step 14: "Let the Additional Authenticated Data encryption
        # parameter be ASCII(Encoded Protected Header)"; AESGCM appends the tag
        sealed = self._aead.encrypt(iv, plaintext, self._protected_aad)
        ciphertext, tag = sealed[: -self._TAG_BYTES], sealed[-self._TAG_BYTES :]
        # §7.1: header '.' encrypted key (empty with dir, §5.1 step 5) '.' IV '.'
        # ciphertext '.' tag
        return f"{self._protected}..{b64url(iv)}.{b64url(ciphertext)}.{b64url(tag)}"

    def decrypt(self, compact: str) -> dict[str, Any]:
        """The JSON object sealed in ``compact``; :class:`Unreadable` (logged with the kid
        it names) for anything else."""
        # RFC 7516 §5.2 step 2: base64url "following the restriction that no line breaks,
        # whitespace, or other additional characters have been used"; pybase64 refuses
        # everything outside its alphabet but "+", "/" and padding, refused here
        if "+" in compact or "/" in compact or "=" in compact:
            raise _unreadable(None, "a part is not base64url")
        parts = compact.split(".")
        if len(parts) != 5:
            raise _unreadable(None, "not a JWE compact serialization")
        header, encrypted_key, iv, ciphertext, tag = parts
        kid = self._known[header] if header in self._known else self._check_header(header)
        # §5.2 step 10: "When Direct Key Agreement or Direct Encryption are employed,
        # verify that the JWE Encrypted Key value is an empty octet sequence."
        if encrypted_key:
            raise _unreadable(kid, "dir takes no encrypted key")
        iv_bytes, tag_bytes = _b64decode(iv), _b64decode(tag)
        if len(iv_bytes) != self._IV_BYTES or len(tag_bytes) != self._TAG_BYTES:
            raise _unreadable(kid, "the IV or the tag is not of A256GCM's size")
        if kid is not None:
            aead = self._aeads.get(kid)
            if aead is None:
                raise _unreadable(kid, "no key with this kid is configured")
            candidates = [aead]
        else:  # sealed before values named their key
            candidates = list(self._aeads.values())
        sealed = _b64decode(ciphertext) + tag_bytes
        for aead in candidates:
            try:
                # §5.2 step 15: the AAD is ASCII(Encoded Protected Header) as received;
                # step 16: "rejecting the input without emitting any decrypted output if
                # the JWE Authentication Tag is incorrect"
                plaintext = aead.decrypt(iv_bytes, sealed, header.encode("ascii"))
            except InvalidTag:
                continue
            try:
                value = orjson.loads(plaintext)
            except orjson.JSONDecodeError as exc:
                raise _unreadable(kid, "the plaintext is not JSON") from exc
            if not isinstance(value, dict):
                raise _unreadable(kid, "the plaintext is not a JSON object")
            return value
        raise _unreadable(kid, "the key does not open it")

    @staticmethod
    def _check_header(header: str) -> str | None:
        """A protected header other than the ones this cipher writes (another library's
        member order or spacing, or no kid): §5.2 step 3, "a completely valid JSON
        object"; step 5, every parameter understood; RFC 7516 §4.1.1 and §4.1.2: ``alg``
        and ``enc`` are required. Its ``kid``, if any."""
        try:
            members = json.loads(_b64decode(header).decode("utf-8"),
                                 object_pairs_hook=_unique_members)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _unreadable(None, "the protected header is not JSON") from exc
        if not isinstance(members, dict):
            raise _unreadable(None, "the protected header is not a JSON object")
        kid = members.pop("kid", None)
        if kid is not None and not isinstance(kid, str):
            raise _unreadable(None, "the protected header's kid is not a string")
        if members != {"alg": "dir", "enc": "A256GCM"}:
            raise _unreadable(kid, "the protected header is not alg dir, enc A256GCM, kid")
        return kid

    def kid_of(self, compact: str) -> str | None:
        """The ``kid`` a sealed value names (None: none, or not a JWE); nothing decrypted."""
        header = compact.partition(".")[0]
        if header in self._known:
            return self._known[header]
        try:
            members = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        except ValueError:
            return None
        kid = members.get("kid") if isinstance(members, dict) else None
        return kid if isinstance(kid, str) else None


def _unreadable(kid: str | None, reason: str) -> Unreadable:
    log.warning("sealed_value_unreadable", kid=kid, reason=reason,
                hint="sealed with a key not in keys.token_encryption (removed too early?), "
                "or damaged: what it sealed is unusable")  # fmt: skip
    return Unreadable(kid, reason)
