"""A record read back from the store: what it was written as, and nothing else."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from proxy.model.records import AccessToken, Grant, RefreshToken
from proxy.model.tokens import REFRESH_TOKEN, new_grant_value, new_value

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


def test_a_refresh_token_that_names_its_grant_is_stored_without_it() -> None:
    token = new_grant_value(REFRESH_TOKEN, "a2a_gr_g1")
    rt = RefreshToken("a2a_gr_g1", iat=1, exp=2, jkt="k")
    assert rt.stored(token) == {"iat": 1, "exp": 2, "jkt": "k"}
    assert RefreshToken.of(token, rt.stored(token)) == rt
    assert RefreshToken.grant_named(token, {"grant_id": None, "consumed_at": 1.0}) == "a2a_gr_g1"


def test_a_refresh_token_of_the_older_form_keeps_its_grant_in_its_record() -> None:
    """``a2a_rt_`` and the secret alone (before tokens named their grant): its record, as
    read, as written back (a rotation the bank did not answer gives the token back), and
    its consume marker name the grant."""
    token = new_value(REFRESH_TOKEN)
    rt = RefreshToken("a2a_gr_g1", iat=1, exp=2)
    assert rt.stored(token) == {"grant_id": "a2a_gr_g1", "iat": 1, "exp": 2}
    assert RefreshToken.of(token, rt.stored(token)) == rt
    assert RefreshToken.grant_named(token, {"grant_id": "a2a_gr_g1"}) == "a2a_gr_g1"
    assert RefreshToken.grant_named(token, {"grant_id": None}) is None
    with pytest.raises(TypeError, match="RefreshToken record without grant_id"):
        RefreshToken.of(token, {"iat": 1, "exp": 2})
    # a token that names another grant than the record's keeps the record's
    other = new_grant_value(REFRESH_TOKEN, "a2a_gr_g2")
    assert rt.stored(other)["grant_id"] == "a2a_gr_g1"
    assert RefreshToken.of(other, rt.stored(other)).grant_id == "a2a_gr_g1"
