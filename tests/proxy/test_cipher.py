"""The one cipher (proxy.oauth.jose.Cipher): JWE compact, dir + A256GCM, the key's id in
the protected header; the first key encrypts, every key decrypts."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jwcrypto import jwe, jwk
from structlog.testing import capture_logs

from proxy.config.keys import token_key_id
from proxy.oauth.jose import Cipher, Unreadable

OLD, NEW, OTHER = (secrets.token_bytes(32) for _ in range(3))
VALUE = {"access_token": "bank-at", "expires_at": 1_700_000_000, "scope": "openid"}


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def oct_jwk(key: bytes) -> jwk.JWK:
    return jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(key).rstrip(b"=").decode())


def test_a_sealed_value_is_a_standard_jwe_naming_its_key() -> None:
    """Any JOSE library opens it; so does AES-GCM alone, with the protected header as the
    additional data (RFC 7516 §5.1 step 14), which a faster decrypt may use."""
    sealed = Cipher(NEW, OLD).encrypt(VALUE)
    protected, encrypted_key, iv, ciphertext, tag = sealed.split(".")
    assert json.loads(b64d(protected)) == {"alg": "dir", "enc": "A256GCM",
                                           "kid": token_key_id(NEW)}
    assert encrypted_key == ""  # dir: the key is the content key
    opened = AESGCM(NEW).decrypt(b64d(iv), b64d(ciphertext) + b64d(tag), protected.encode())
    assert json.loads(opened) == VALUE
    token = jwe.JWE()
    token.deserialize(sealed, key=oct_jwk(NEW))
    assert json.loads(token.payload) == VALUE
    assert Cipher(NEW).kid_of(sealed) == token_key_id(NEW) == oct_jwk(NEW).thumbprint()


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    by_old = Cipher(OLD).encrypt(VALUE)
    rotated = Cipher(NEW, OLD)
    assert rotated.kid == token_key_id(NEW) and rotated.kids == (
        token_key_id(NEW), token_key_id(OLD))
    assert rotated.decrypt(by_old) == VALUE
    assert Cipher(OLD, NEW).decrypt(rotated.encrypt(VALUE)) == VALUE
    assert rotated.kid_of(rotated.encrypt(VALUE)) == token_key_id(NEW)


def test_a_value_sealed_before_values_named_their_key_is_opened_by_any_key() -> None:
    token = jwe.JWE(json.dumps(VALUE).encode(),
                    protected=json.dumps({"alg": "dir", "enc": "A256GCM"}))
    token.add_recipient(oct_jwk(OLD))
    legacy = token.serialize(compact=True)
    assert Cipher(NEW, OLD).decrypt(legacy) == VALUE
    assert Cipher(NEW, OLD).kid_of(legacy) is None
    with pytest.raises(Unreadable) as caught:
        Cipher(NEW).decrypt(legacy)
    assert caught.value.kid is None


def test_a_value_no_configured_key_opens_is_unreadable_and_logged_with_its_kid() -> None:
    sealed = Cipher(OTHER).encrypt(VALUE)
    with capture_logs() as logs, pytest.raises(Unreadable) as caught:
        Cipher(NEW, OLD).decrypt(sealed)
    assert caught.value.kid == token_key_id(OTHER)
    (line,) = logs
    assert (line["event"], line["kid"], line["log_level"]) == (
        "sealed_value_unreadable", token_key_id(OTHER), "warning")
    assert "bank-at" not in json.dumps(logs)


def test_a_forged_kid_or_a_damaged_value_is_unreadable() -> None:
    # the header names a configured key, but another key sealed it
    header = json.dumps({"alg": "dir", "enc": "A256GCM", "kid": token_key_id(NEW)})
    token = jwe.JWE(json.dumps(VALUE).encode(), protected=header)
    token.add_recipient(oct_jwk(OTHER))
    with pytest.raises(Unreadable) as caught:
        Cipher(NEW).decrypt(token.serialize(compact=True))
    assert caught.value.kid == token_key_id(NEW)
    sealed = Cipher(NEW).encrypt(VALUE)
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    for bad in (tampered, "not a jwe", "", "a.b.c.d.e"):
        with pytest.raises(Unreadable):
            Cipher(NEW).decrypt(bad)


def test_only_dir_with_a256gcm_is_opened() -> None:
    """A value in the store claiming another algorithm is refused, not tried."""
    token = jwe.JWE(json.dumps(VALUE).encode(),
                    protected=json.dumps({"alg": "A256KW", "enc": "A256GCM",
                                          "kid": token_key_id(NEW)}))
    token.add_recipient(oct_jwk(NEW))
    with pytest.raises(Unreadable):
        Cipher(NEW).decrypt(token.serialize(compact=True))


def test_keys_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Cipher(NEW, b"short")
