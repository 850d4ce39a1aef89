"""A record read back from the store: what it was written as, and nothing else."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from proxy.model.records import AccessToken, Grant

GRANT = Grant(grant_id="g1", client_id="merchant-ios", sub="s1", scope=("openid", "profile"),
              acr="urn:a", amr=("pwd",), auth_time=1700000000, bank_id="bank-a",
              authentication_level=None, claims={"name": "Ann"}, bank_tokens="sealed",
              authorization_details=({"type": "payment_initiation"},))


def test_a_record_reads_back_equal_through_its_json() -> None:
    text = orjson.dumps(GRANT.to_json())
    back = Grant.from_json(orjson.loads(text))
    assert back == GRANT and back == dataclasses.replace(GRANT)
    assert isinstance(back.scope, tuple) and isinstance(back.authorization_details, tuple)
    assert back.resource is None and back.subject_space is None  # defaults, not stored
    assert "resource" not in GRANT.to_json()


def test_a_field_a_later_version_added_is_ignored() -> None:
    assert AccessToken.from_json({"iat": 1, "exp": 2, "later": True}) == AccessToken(iat=1, exp=2)


def test_a_record_without_a_required_field_is_refused() -> None:
    with pytest.raises(TypeError, match="AccessToken record without exp"):
        AccessToken.from_json({"iat": 1})


def test_a_record_read_back_is_frozen() -> None:
    token = AccessToken.from_json({"iat": 1, "exp": 2})
    with pytest.raises(dataclasses.FrozenInstanceError):
        token.exp = 3  # type: ignore[misc]
