"""The bank-token cipher (proxy.oauth.jose.Cipher): a standard JWE compact serialization,
``dir`` + ``A256GCM``, that another JOSE library (jwcrypto) opens and writes; anything
altered, of another key, or with a header the cipher does not implement is refused."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jwcrypto import jwe, jwk

from proxy.model.tokens import b64url
from proxy.oauth.jose import Cipher, Unreadable
from proxy.oauth.jose import _b64decode as b64decode

BANK_TOKENS = {"access_token": "bank-at-" + "a" * 900, "refresh_token": "bank-rt-" + "r" * 300,
               "expires_at": 1_900_000_000, "scope": "openid profile", "name": "Zoë Ünal"}
KEY = secrets.token_bytes(32)


def oct_jwk(key: bytes) -> jwk.JWK:
    return jwk.JWK(kty="oct", k=b64url(key))


def jwcrypto_seal(payload: bytes, protected: str, key: bytes = KEY) -> str:
    token = jwe.JWE(payload, protected=protected)
    token.add_recipient(oct_jwk(key))
    return str(token.serialize(compact=True))


def jwcrypto_open(compact: str, key: bytes = KEY) -> bytes:
    token = jwe.JWE()
    token.deserialize(compact, key=oct_jwk(key))
    return bytes(token.payload)


def seal_with_header(header: dict[str, object] | str, payload: bytes = b'{"a":1}',
                     key: bytes = KEY) -> str:
    """A correctly authenticated dir/AES-GCM JWE under any protected header: what a
    refusal of it is about is the header, never the tag."""
    text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    encoded = b64url(text.encode())
    iv = os.urandom(12)
    sealed = AESGCM(key).encrypt(iv, payload, encoded.encode("ascii"))
    return f"{encoded}..{b64url(iv)}.{b64url(sealed[:-16])}.{b64url(sealed[-16:])}"


def parts(compact: str) -> list[str]:
    return compact.split(".")


def flip_bit(segment: str, byte: int = 0) -> str:
    raw = bytearray(b64decode(segment))
    raw[byte] ^= 0x01
    return b64url(bytes(raw))


def test_what_the_proxy_writes_jwcrypto_opens() -> None:
    compact = Cipher(KEY).encrypt(BANK_TOKENS)
    header = json.loads(b64decode(parts(compact)[0]))
    # the key's id (its RFC 7638 thumbprint) names the key of a rotation that opens it
    assert header == {"alg": "dir", "enc": "A256GCM", "kid": oct_jwk(KEY).thumbprint()}
    assert parts(compact)[1] == ""  # dir: no encrypted key
    assert json.loads(jwcrypto_open(compact)) == BANK_TOKENS


def test_what_jwcrypto_writes_the_proxy_opens() -> None:
    payload = json.dumps(BANK_TOKENS).encode()
    # the proxy's own header, and the same members in another order with spaces (another
    # library's serialization: the AAD is the header as received)
    for protected in ('{"alg":"dir","enc":"A256GCM"}', '{"enc": "A256GCM", "alg": "dir"}'):
        assert Cipher(KEY).decrypt(jwcrypto_seal(payload, protected)) == BANK_TOKENS


def test_each_value_has_its_own_iv() -> None:
    cipher = Cipher(KEY)
    first, second = cipher.encrypt(BANK_TOKENS), cipher.encrypt(BANK_TOKENS)
    assert parts(first)[2] != parts(second)[2]
    assert len(b64decode(parts(first)[2])) == 12 and len(b64decode(parts(first)[4])) == 16


def test_a_wrong_key_is_refused_both_ways() -> None:
    compact = Cipher(KEY).encrypt(BANK_TOKENS)
    with pytest.raises(Unreadable):
        Cipher(secrets.token_bytes(32)).decrypt(compact)
    with pytest.raises(Unreadable):
        Cipher(KEY).decrypt(jwcrypto_seal(b'{"a":1}', '{"alg":"dir","enc":"A256GCM"}',
                                          key=secrets.token_bytes(32)))


def _tamper_tag(p: list[str]) -> None:
    p[4] = flip_bit(p[4], 15)


def _tamper_iv(p: list[str]) -> None:
    p[2] = flip_bit(p[2], 5)


def _tamper_ciphertext(p: list[str]) -> None:
    p[3] = flip_bit(p[3], 100)


def _tamper_header(p: list[str]) -> None:
    # the same header JSON with a space: still alg dir, enc A256GCM, but not the AAD sealed
    p[0] = b64url(b'{"alg":"dir", "enc":"A256GCM"}')


@pytest.mark.parametrize("tamper", [_tamper_tag, _tamper_iv, _tamper_ciphertext,
                                    _tamper_header])
def test_an_altered_value_is_refused(tamper: Callable[[list[str]], None]) -> None:
    cipher = Cipher(KEY)
    p = parts(cipher.encrypt(BANK_TOKENS))
    tamper(p)
    altered = ".".join(p)
    with pytest.raises(Unreadable):
        cipher.decrypt(altered)
    with pytest.raises(jwe.InvalidJWEData):  # another library agrees
        jwcrypto_open(altered)


@pytest.mark.parametrize("header", [
    {"alg": "dir", "enc": "A256GCM", "zip": "DEF"},
    {"alg": "dir", "enc": "A256GCM", "crit": ["exp"], "exp": 1},
    {"alg": "dir", "enc": "A256GCM", "kid": "k1"},
    {"alg": "dir", "enc": "A256GCM", "typ": "JWE"},
    {"alg": "dir", "enc": "A128GCM"},
    {"alg": "A256KW", "enc": "A256GCM"},
    {"alg": "none", "enc": "A256GCM"},
    {"enc": "A256GCM"},
    {"alg": "dir"},
    '{"alg":"dir","enc":"A256GCM","enc":"A256GCM"}',  # a repeated member (RFC 7516 §4)
    '["dir","A256GCM"]',
    "not json",
])
def test_a_header_it_does_not_implement_is_refused_even_when_authentic(
    header: dict[str, object] | str,
) -> None:
    with pytest.raises(Unreadable):
        Cipher(KEY).decrypt(seal_with_header(header))


def test_the_header_check_lets_an_authentic_value_through() -> None:
    """The control of the test above: the same sealing with the one header it implements."""
    assert Cipher(KEY).decrypt(seal_with_header({"enc": "A256GCM", "alg": "dir"})) == {"a": 1}


def _encrypted_key(p: list[str]) -> list[str]:
    return [p[0], b64url(os.urandom(32)), *p[2:]]


def _six_parts(p: list[str]) -> list[str]:
    return [*p, p[4]]


def _four_parts(p: list[str]) -> list[str]:
    return p[:4]


def _padded(p: list[str]) -> list[str]:
    return [p[0], p[1], p[2] + "==", *p[3:]] if len(p[2]) % 4 else [*p[:4], p[4] + "=="]


def _standard_alphabet(p: list[str]) -> list[str]:
    q = list(p)
    q[3] = q[3].replace("-", "+").replace("_", "/")
    if q[3] == p[3]:  # make sure there is a character of the standard alphabet
        q[3] = "+" + q[3][1:]
    return q


def _whitespace(p: list[str]) -> list[str]:
    return [p[0], p[1], p[2], p[3][:10] + "\n" + p[3][10:], p[4]]


def _non_ascii(p: list[str]) -> list[str]:
    return [p[0], p[1], p[2], "é" + p[3][1:], p[4]]


def _short_iv(p: list[str]) -> list[str]:
    return [p[0], p[1], b64url(b64decode(p[2])[:8]), *p[3:]]


def _short_tag(p: list[str]) -> list[str]:
    return [*p[:4], b64url(b64decode(p[4])[:12])]


@pytest.mark.parametrize("malform", [_encrypted_key, _six_parts, _four_parts, _padded,
                                     _standard_alphabet, _whitespace, _non_ascii, _short_iv,
                                     _short_tag])
def test_a_malformed_serialization_is_refused(malform: Callable[[list[str]], list[str]]
                                              ) -> None:  # fmt: skip
    cipher = Cipher(KEY)
    with pytest.raises(Unreadable):
        cipher.decrypt(".".join(malform(parts(cipher.encrypt(BANK_TOKENS)))))


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"text"', b"not json", b""])
def test_an_authentic_value_that_is_not_a_json_object_is_refused(payload: bytes) -> None:
    with pytest.raises(Unreadable):
        Cipher(KEY).decrypt(seal_with_header({"alg": "dir", "enc": "A256GCM"}, payload))


def test_the_key_must_be_256_bits() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Cipher(secrets.token_bytes(16))


def test_a_header_with_a_kid_another_library_wrote_is_opened() -> None:
    """jwcrypto's member order and spacing, with the kid of a configured key: the strict
    parse takes it (the cipher's own headers skip the parse)."""
    kid = oct_jwk(KEY).thumbprint()
    compact = jwcrypto_seal(b'{"a": 1}', json.dumps({"kid": kid, "enc": "A256GCM",
                                                      "alg": "dir"}))
    assert parts(compact)[0] != Cipher(KEY).encrypt({}).partition(".")[0]
    assert Cipher(secrets.token_bytes(32), KEY).decrypt(compact) == {"a": 1}
