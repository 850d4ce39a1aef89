"""The values the proxy hands out: 256 random bits each, base64url, never two alike, even
when several are drawn at once."""

from __future__ import annotations

import base64
import re

import jwt

from proxy.model.tokens import (
    ACCESS_TOKEN,
    DEVICE_SECRET,
    REFRESH_TOKEN,
    grant_of,
    new_grant_id,
    new_value,
    new_values,
)
from proxy.oauth.grants import Chosen
from proxy.oauth.jose import SigningJWK
from proxy.ops.keys import generate_signing_key

B64URL_256 = re.compile(r"[A-Za-z0-9_-]{43}")


def test_values_drawn_together_are_each_256_bits_and_all_different() -> None:
    drawn = [value for _ in range(200) for value in new_values(4)]
    assert len(set(drawn)) == len(drawn)
    assert all(B64URL_256.fullmatch(value) for value in drawn)
    assert all(len(base64.urlsafe_b64decode(value + "=")) == 32 for value in drawn)
    assert new_value("p_").startswith("p_") and B64URL_256.fullmatch(new_value("p_")[2:])


def test_an_exchange_chooses_four_different_values_of_their_kinds() -> None:
    grant_id = new_grant_id()
    chosen = Chosen.new(grant_id, 1700000000, device=True)
    assert chosen.access_token.startswith(ACCESS_TOKEN)
    assert grant_of(ACCESS_TOKEN, chosen.access_token) == grant_id
    assert grant_of(REFRESH_TOKEN, chosen.refresh_token) == grant_id
    assert chosen.device_secret is not None and chosen.device_secret.startswith(DEVICE_SECRET)
    secrets = [chosen.access_token.rpartition(".")[2],
               chosen.refresh_token.rpartition(".")[2],
               chosen.device_secret.removeprefix(DEVICE_SECRET), chosen.sid]
    assert len(set(secrets)) == 4 and all(B64URL_256.fullmatch(str(s)) for s in secrets)
    plain = Chosen.new(grant_id, 1700000000)
    assert plain.device_secret is None and plain.sid is None
    assert plain.access_token != chosen.access_token


def test_a_signature_carries_the_claims_and_the_header_any_library_reads() -> None:
    key = SigningJWK(generate_signing_key("ES256"))
    claims = {"iss": "https://proxy.example", "sub": "Zoë", "aud": ["a", "b"], "iat": 1,
              "nested": {"x": [1, 2]}}
    token = key.sign(claims, typ="token-introspection+jwt")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": key.kid, "typ": "token-introspection+jwt"}
    assert jwt.decode(token, key.public_key, algorithms=["ES256"], audience="a",
                      options={"verify_iat": False}) == claims
