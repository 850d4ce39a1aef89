"""proxy.oauth.rar on its own: what no config the loader accepts can reach, answered as
an OAuth error all the same (never a 500)."""

from __future__ import annotations

import json

import pytest
from jsonschema.validators import validator_for

from proxy.config.settings import AuthorizationDetailsType, ClientSettings, Config, Keys
from proxy.oauth import rar
from proxy.oauth.errors import OAuthError


def test_a_reference_that_cannot_be_followed_is_a_server_error() -> None:
    """The config check refuses remote and dangling ``#/`` references; an anchor that
    names nothing is only found when a request is checked."""
    schema = {"type": "object", "properties": {"a": {"$ref": "#nowhere"}}}
    declared = AuthorizationDetailsType("t", schema, validator_for(schema)(schema))
    config = Config(issuer="https://login.example", keys=Keys((), b"k" * 32),
                    authorization_details_types=(declared,))
    client = ClientSettings("c", "public", ("https://app.example/cb",),
                            authorization_details_types=("t",))
    params = {"authorization_details": json.dumps([{"type": "t", "a": 1}])}
    with pytest.raises(OAuthError) as info:
        rar.check_request(config, client, params)
    assert (info.value.error, info.value.description) == (
        "server_error", "the authorization_details schema could not be applied")
    # without the field that leads to it, the request is checked as usual
    rar.check_request(config, client, {"authorization_details": '[{"type": "t"}]'})
