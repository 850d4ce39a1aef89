"""The one JWT signer (pyjwt) and the one cipher for bank tokens at rest (jwcrypto JWE)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import jwt
from jwcrypto import jwe, jwk

from proxy.tokens import b64url

_ALG_BY_KEY = {("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "EdDSA", ("RSA", None): "RS256"}


def key_alg(key: jwk.JWK) -> str:
    """The JWS alg a signing key is used with (its ``alg`` member if the operator set one)."""
    params = key.export(private_key=False, as_dict=True)
    if params.get("alg"):
        return str(params["alg"])
    return _ALG_BY_KEY[(params["kty"], params.get("crv"))]


class Signer:
    """Signs with the first configured key; publishes every configured key (rotation)."""

    def __init__(self, keys: tuple[jwk.JWK, ...]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._active = keys[0]
        self.alg = key_alg(keys[0])
        self.kid = str(keys[0]["kid"])
        self._pyjwk = jwt.PyJWK(keys[0].export(private_key=True, as_dict=True), algorithm=self.alg)
        public = []
        for key in keys:
            params = key.export(private_key=False, as_dict=True)
            params.setdefault("alg", key_alg(key))
            params["use"] = "sig"
            public.append(params)
        self.jwks: dict[str, Any] = {"keys": public}
        self.algs = sorted({str(k["alg"]) for k in public})

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


_SHA = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


class Cipher:
    """Bank tokens are stored only encrypted: JWE compact, ``dir`` + ``A256GCM``."""

    _HEADER = json.dumps({"alg": "dir", "enc": "A256GCM"})

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
