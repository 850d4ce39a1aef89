"""The one JWT signer (pyjwt) and the one cipher for bank tokens at rest (JWE compact,
``dir`` + ``A256GCM``, with ``cryptography``'s AES-GCM; jwcrypto manages the keys)."""

from __future__ import annotations

import hashlib
import json
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

from proxy.config.rotation import iso, key_status, signer_at
from proxy.config.settings import Lifetimes, SigningKey
from proxy.model.tokens import b64url
from proxy.observability.logs import logger

log = logger("proxy.jose")

_ALG_BY_KEY = {("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "EdDSA", ("RSA", None): "RS256"}


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


class CipherError(ValueError):
    """A sealed value this cipher does not open: not a JWE of the form it writes, a header
    it does not implement, another key, or altered (the authentication tag fails)."""


def _b64decode(segment: str) -> bytes:
    """base64url without padding (RFC 7515 §2); the caller has refused ``+``, ``/`` and
    ``=`` (pybase64 maps ``-_`` onto them, then validates the standard alphabet)."""
    try:
        return pybase64.b64decode(segment + "=="[: -len(segment) % 4], altchars=b"-_",
                                  validate=True)
    except ValueError as exc:  # binascii.Error, and a str with non-ASCII characters
        raise CipherError("a part is not base64url") from exc


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7516 §4: "JWE parsers MUST either reject JWEs with duplicate Header Parameter
    # names or use a JSON parser that returns only the lexically last duplicate member
    # name"; this one rejects them
    members = dict(pairs)
    if len(members) != len(pairs):
        raise CipherError("a header parameter is repeated")
    return members


class Cipher:
    """Bank tokens are stored only encrypted: JWE compact (RFC 7516 §7.1), ``dir`` +
    ``A256GCM``, which any JOSE library opens (tests/proxy/test_jose.py: jwcrypto both ways).

    Written and read here with ``cryptography``'s AES-GCM and nothing else: on the hot path
    (introspection for a resource server with ``receive_bank_token``) a general JOSE library's
    object model cost two hundred times the decryption itself. The protected header is
    parsed strictly: ``alg`` ``dir``, ``enc`` ``A256GCM`` and no other parameter (RFC 7516
    §5.2 step 5: the recipient must understand every field it is given; this one knows no
    ``crit``, ``zip``, ``kid`` or any other); the header this cipher writes itself is known
    and skips the parse."""

    _HEADER = b64url(json.dumps({"alg": "dir", "enc": "A256GCM"},
                                separators=(",", ":")).encode())
    _HEADER_AAD = _HEADER.encode("ascii")
    _IV_BYTES = 12  # RFC 7518 §5.3: "Use of an IV of size 96 bits is REQUIRED"
    # RFC 7518 §5.3: "The requested size of the Authentication Tag output MUST be 128 bits"
    _TAG_BYTES = 16

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the token encryption key must be 32 bytes")
        # RFC 7518 §5.3: "The CEK is used as the encryption key"; with dir (§4.5) the CEK
        # is the shared key itself
        self._aead = AESGCM(key)

    def encrypt(self, data: Mapping[str, Any]) -> str:
        plaintext = orjson.dumps(data if isinstance(data, dict) else dict(data))
        iv = os.urandom(self._IV_BYTES)
        # RFC 7516 §5.1 step 14: "Let the Additional Authenticated Data encryption
        # parameter be ASCII(Encoded Protected Header)"; AESGCM appends the tag
        sealed = self._aead.encrypt(iv, plaintext, self._HEADER_AAD)
        ciphertext, tag = sealed[: -self._TAG_BYTES], sealed[-self._TAG_BYTES :]
        # §7.1: header '.' encrypted key (empty with dir, §5.1 step 5) '.' IV '.'
        # ciphertext '.' tag
        return f"{self._HEADER}..{b64url(iv)}.{b64url(ciphertext)}.{b64url(tag)}"

    def decrypt(self, compact: str) -> dict[str, Any]:
        """The JSON object sealed in ``compact``; :class:`CipherError` for anything else."""
        # RFC 7516 §5.2 step 2: base64url "following the restriction that no line breaks,
        # whitespace, or other additional characters have been used"; pybase64 refuses
        # everything outside its alphabet but "+", "/" and padding, refused here
        if "+" in compact or "/" in compact or "=" in compact:
            raise CipherError("a part is not base64url")
        parts = compact.split(".")
        if len(parts) != 5:
            raise CipherError("not a JWE compact serialization")
        header, encrypted_key, iv, ciphertext, tag = parts
        if header != self._HEADER:
            self._check_header(header)
        # §5.2 step 10: "When Direct Key Agreement or Direct Encryption are employed,
        # verify that the JWE Encrypted Key value is an empty octet sequence."
        if encrypted_key:
            raise CipherError("dir takes no encrypted key")
        iv_bytes, tag_bytes = _b64decode(iv), _b64decode(tag)
        if len(iv_bytes) != self._IV_BYTES or len(tag_bytes) != self._TAG_BYTES:
            raise CipherError("the IV or the tag is not of A256GCM's size")
        try:
            # §5.2 step 15: the AAD is ASCII(Encoded Protected Header) as received; step
            # 16: "rejecting the input without emitting any decrypted output if the JWE
            # Authentication Tag is incorrect"
            plaintext = self._aead.decrypt(iv_bytes, _b64decode(ciphertext) + tag_bytes,
                                           header.encode("ascii"))
        except InvalidTag as exc:
            raise CipherError("the authentication tag does not match") from exc
        try:
            value = orjson.loads(plaintext)
        except orjson.JSONDecodeError as exc:
            raise CipherError("the plaintext is not JSON") from exc
        if not isinstance(value, dict):
            raise CipherError("the plaintext is not a JSON object")
        return value

    @staticmethod
    def _check_header(header: str) -> None:
        """A protected header other than the one this cipher writes (another library's
        member order or spacing): §5.2 step 3, "a completely valid JSON object"; step 5,
        every parameter understood; RFC 7516 §4.1.1 and §4.1.2: ``alg`` and ``enc`` are
        required."""
        try:
            members = json.loads(_b64decode(header).decode("utf-8"),
                                 object_pairs_hook=_unique_members)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CipherError("the protected header is not JSON") from exc
        if not isinstance(members, dict) or members != {"alg": "dir", "enc": "A256GCM"}:
            raise CipherError("the protected header is not alg dir, enc A256GCM alone")
