"""``kind: session`` banks in config.yaml: the DESIGN.md example read into settings, and
every missing or wrong key of the kind reported at once, each with its key path."""

from __future__ import annotations

import base64
import copy
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from jwcrypto import jwk

from federation.settings import BankSettings, SessionApi
from proxy.config import ConfigError, parse_config

ENV = {
    "TOKEN_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    .decode(),
    "ITSME_API_SECRET": "itsme-api-secret",
    "BROKER_ACCOUNT_ID": "a-sdge-AMTzsLg5v6Xl6PLSP166",
}
# DESIGN.md, "Arriving next": the session bank, word for word, beside an oidc bank
YAML = """
issuer: https://login.merchant.example
keys:
  signing: [{file: signing.jwk}]
  token_encryption: ${TOKEN_ENCRYPTION_KEY}
subject: {type: bank}
banks:
  - id: bank-a
    acr_values: [urn:merchant:acr:bank-a]
    kind: oidc
    issuer: https://auth.bank-a.example
    client_id: merchant
    client_auth: client_secret_basic
    client_secret: s
  - id: itsme
    kind: session
    acr_values: [urn:merchant:acr:itsme]
    api: https://api.broker.example/auth/rest        # sessions at {api}/sessions
    api_token_endpoint: https://api.broker.example/auth/open/connect/token
    api_scopes: [signicat-api]
    client_id: merchant-backend
    client_auth: client_secret_basic                 # as for any bank
    client_secret: ${ITSME_API_SECRET}
    account_id: ${BROKER_ACCOUNT_ID}                 # optional: Signicat-AccountId header
    provider: itsme                                  # allowedProviders
    redirect_parameter: itsme_redirect_url           # additionalParameters key
    requested_attributes: [name, firstName, lastName, dateOfBirth, nin]
    claims: {name: name, given_name: firstName, family_name: lastName, birthdate: dateOfBirth, national_id: nin.value}
    loa: {high: high, substantial: substantial}      # session loa -> authentication_level
    poll_interval: 2
    timeout: 10
clients:
  - client_id: merchant-ios
    type: public
    redirect_uris: [https://app.merchant.example/auth/callback]
"""  # noqa: E501
DELETE = object()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="sig-1")
    (tmp_path / "signing.jwk").write_text(key.export_private())
    return tmp_path


def data() -> Any:
    return copy.deepcopy(yaml.safe_load(YAML))


def errors(folder: Path, config: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(config, folder, ENV)
    return info.value.errors


def test_the_design_example(folder: Path) -> None:
    config = parse_config(data(), folder, ENV)
    assert config.banks[1] == BankSettings(
        id="itsme", kind="session", issuer="", client_id="merchant-backend",
        client_auth="client_secret_basic", client_secret="itsme-api-secret",
        acr_values=("urn:merchant:acr:itsme",), timeout=10.0,
        claims={"name": "name", "given_name": "firstName", "family_name": "lastName",
                "birthdate": "dateOfBirth", "national_id": "nin.value"},
        session=SessionApi(
            api="https://api.broker.example/auth/rest",
            api_token_endpoint="https://api.broker.example/auth/open/connect/token",
            provider="itsme", redirect_parameter="itsme_redirect_url",
            api_scopes=("signicat-api",), account_id="a-sdge-AMTzsLg5v6Xl6PLSP166",
            requested_attributes=("name", "firstName", "lastName", "dateOfBirth", "nin"),
            loa={"high": "high", "substantial": "substantial"}, poll_interval=2.0,
        ),
    )  # fmt: skip
    assert config.banks[0].session is None


def test_optional_keys_left_out(folder: Path) -> None:
    config = data()
    for key in ("api_scopes", "account_id", "requested_attributes", "loa", "claims",
                "poll_interval", "timeout"):
        del config["banks"][1][key]
    bank = parse_config(config, folder, ENV).banks[1]
    assert bank.session is not None
    assert (bank.session.api_scopes, bank.session.account_id, bank.session.loa,
            bank.session.poll_interval, bank.timeout) == ((), None, {}, 2.0, 10.0)


def test_every_problem_of_a_session_bank_at_once(folder: Path) -> None:
    config = data()
    bank = config["banks"][1]
    for key in ("api", "api_token_endpoint", "provider", "redirect_parameter"):
        del bank[key]
    bank.update({
        "issuer": "https://api.broker.example", "scopes": ["openid"], "userinfo": True,
        "account_id": "a b", "poll_interval": 0, "claims": {"national_id": "nin..value"},
        "authentication_level": "high", "api_scopes": "signicat-api",
        "requested_attributes": [1],
    })  # fmt: skip
    found = errors(folder, config)
    expected = [
        "banks[1].issuer: is not used with kind session (the bank is reached through api)",
        "banks[1].scopes: is not used with kind session",
        "banks[1].userinfo: is not used with kind session",
        "banks[1].api: is required with kind session",
        "banks[1].api_token_endpoint: is required with kind session",
        "banks[1].account_id: must be printable ASCII without spaces",
        "banks[1].authentication_level: is not used with loa",
        "banks[1].claims.national_id: must be an attribute name or a dotted path like "
        "nin.value (got 'nin..value')",
        "banks[1].poll_interval: must be greater than 0 (got 0)",
        "banks[1].provider: is required",
        "banks[1].redirect_parameter: is required",
        "banks[1].api_scopes: must be a list of strings (got 'signicat-api')",
        "banks[1].requested_attributes[0]: must be a non-empty string (got 1)",
    ]
    for line in expected:
        assert any(e.startswith(line) for e in found), (line, found)
    assert len(found) == len(expected), found


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("api", "http://api.broker.example/auth/rest", "banks[1].api: must use https"),
        ("api", "https://api.broker.example/rest?x=1", "banks[1].api: must not have a query"),
        ("api", "https://user:pw@api.broker.example/rest", "banks[1].api: must not contain"),
        ("api_token_endpoint", "ftp://broker.example/token",
         "banks[1].api_token_endpoint: must be an absolute https URL"),
        ("poll_interval", 11, "banks[1].poll_interval: must not be more than timeout (10 s)"),
        ("poll_interval", "soon", "banks[1].poll_interval: must be a number (got 'soon')"),
        ("loa", ["high"], "banks[1].loa: must be a mapping of strings to strings"),
        ("loa", {"high": 3}, "banks[1].loa.high: must map a string to a non-empty string"),
        ("provider", "", "banks[1].provider: must not be empty"),
        ("account_id", "a\r\nX-Injected: 1", "banks[1].account_id: must be printable ASCII"),
        ("client_auth", DELETE, "banks[1].client_auth: is required"),
        ("kind", "sessions", "banks[1].kind: must be one of oidc, ciba, session (got "
         "'sessions'); did you mean 'session'?"),
    ],
)
def test_one_wrong_key(folder: Path, key: str, value: object, problem: str) -> None:
    config = data()
    if value is DELETE:
        del config["banks"][1][key]
    else:
        config["banks"][1][key] = value
    found = errors(folder, config)
    assert any(e.startswith(problem) for e in found), found


@pytest.mark.parametrize("key", ["api", "provider", "loa", "poll_interval", "account_id"])
def test_session_keys_on_another_kind(folder: Path, key: str) -> None:
    config = data()
    config["banks"][0][key] = config["banks"][1][key]
    assert f"banks[0].{key}: is only used with kind session" in errors(folder, config)


def test_an_oidc_bank_still_needs_its_issuer(folder: Path) -> None:
    config = data()
    del config["banks"][0]["issuer"]
    assert "banks[0].issuer: is required" in errors(folder, config)
