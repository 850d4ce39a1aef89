"""BankID with biometrics (``kind: ciba`` with ``permissions:``) and RFC 9396
``authorization_details_types`` in config.yaml: the DESIGN.md examples read into settings,
and every wrong key reported at once, each with its key path."""

from __future__ import annotations

import base64
import copy
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from jwcrypto import jwk

from federation.settings import Permissions
from proxy.config import ConfigError, parse_config

ENV = {
    "TOKEN_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    .decode(),
}
# DESIGN.md, "Arriving next": the BankID bank and the RAR keys, word for word
YAML = """
issuer: https://login.merchant.example
keys:
  signing: [{file: signing.jwk}]
  token_encryption: ${TOKEN_ENCRYPTION_KEY}
subject: {type: bank}
authorization_details_types:
  payment_initiation: {schema: schemas/payment_initiation.json}   # JSON Schema each object must match
banks:
  - id: bankid
    kind: ciba
    acr_values: [urn:merchant:acr:bankid]
    issuer: https://app.bankid.example              # discovery
    start_endpoint: app_authentication_endpoint     # discovery key of the start endpoint (default backchannel_authentication_endpoint)
    client_id: merchant
    client_auth: client_secret_basic               # how the proxy gets its access token
    client_secret: s
    assertion: access_token                        # optional: start and poll calls send that token as client_assertion
    permissions:
      endpoint: https://api.bankid.example/permissions/v1/
      scopes: [permissions/app2app, permissions/client]
      login_hint_scheme: nnin                      # login_hint -> loginHint: [{scheme, value}]
      intents: [app2app]
      login_type: authentication.v1                # the permission of a login without details
      types: {payment_initiation: payment.v1}      # authorization_details type -> permission type
    pass_through: [device_info]
clients:
  - client_id: merchant-ios
    type: public
    redirect_uris: [https://app.merchant.example/auth/callback]
    authorization_details_types: [payment_initiation]
"""  # noqa: E501
SCHEMA = {"type": "object", "required": ["type", "instructedAmount", "creditorName"],
          "properties": {"type": {"const": "payment_initiation"},
                         "instructedAmount": {"type": "object"},
                         "creditorName": {"type": "string"}},
          "additionalProperties": False}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="sig-1")
    (tmp_path / "signing.jwk").write_text(key.export_private())
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "payment_initiation.json").write_text(json.dumps(SCHEMA))
    return tmp_path


def data() -> Any:
    return copy.deepcopy(yaml.safe_load(YAML))


def errors(folder: Path, config: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(config, folder, ENV)
    return info.value.errors


def test_the_design_example_is_read(folder: Path) -> None:
    config = parse_config(data(), folder, ENV)
    (bank,) = config.banks
    assert (bank.kind, bank.start_endpoint, bank.assertion) == (
        "ciba", "app_authentication_endpoint", "access_token")
    assert bank.permissions == Permissions(
        endpoint="https://api.bankid.example/permissions/v1/",
        scopes=("permissions/app2app", "permissions/client"), login_hint_scheme="nnin",
        intents=("app2app",), login_type="authentication.v1",
        types={"payment_initiation": "payment.v1"})
    assert bank.pass_through == ("device_info",)
    (declared,) = config.authorization_details_types
    assert (declared.name, declared.schema, declared.id_token) == (
        "payment_initiation", SCHEMA, False)
    assert declared.validator.is_valid(
        {"type": "payment_initiation", "instructedAmount": {}, "creditorName": "A"})
    assert not declared.validator.is_valid({"type": "payment_initiation", "extra": 1})
    assert config.clients[0].authorization_details_types == ("payment_initiation",)


def test_defaults(folder: Path) -> None:
    config = data()
    bank = config["banks"][0]
    for key in ("start_endpoint", "assertion"):
        del bank[key]
    bank["permissions"] = {"endpoint": "https://api.bankid.example/permissions/v1/"}
    read = parse_config(config, folder, ENV).banks[0]
    assert (read.start_endpoint, read.assertion) == ("backchannel_authentication_endpoint",
                                                     None)
    assert read.permissions == Permissions(endpoint="https://api.bankid.example/permissions/v1/")
    assert (read.permissions.login_hint_scheme, read.permissions.intents,
            read.permissions.login_type, read.permissions.loa) == (
        "nnin", ("app2app",), "authentication.v1", "sub")


def test_every_problem_is_listed_with_its_key_path(folder: Path) -> None:
    config = data()
    bank = config["banks"][0]
    bank["start_endpoint"] = "App Authentication"
    bank["assertion"] = "id_token"
    bank["permissions"].update(endpoint="http://api.bankid.example/permissions/v1/",
                               login_type="payment.v1", colour="blue",
                               types={"payment_initiation": "payment.v2",
                                      "account_information": "text.v1"})
    bank["pass_through"] = []
    config["clients"][0]["authorization_details_types"] = ["payment_initiation", "iban_check"]
    config["authorization_details_types"]["has space"] = {"schema": "x.json"}
    found = errors(folder, config)
    assert found == [
        "banks[0].assertion: must be one of access_token (got 'id_token'); did you mean "
        "'access_token'?",
        "banks[0].permissions.colour: unknown key (known keys: endpoint, intents, loa, "
        "login_hint_scheme, login_type, scopes, token_endpoint, types)",
        "banks[0].permissions.types.payment_initiation: must be one of payment.v1, text.v1 "
        "(got 'payment.v2')",
        "banks[0].permissions.endpoint: must use https (http is only allowed for "
        "localhost/127.0.0.1/::1) (got 'http://api.bankid.example/permissions/v1/')",
        "banks[0].permissions.login_type: must be authentication.v1 (the permission of a "
        "login without details; got 'payment.v1')",
        "banks[0].pass_through: must list device_info with permissions: (BankID's "
        "app-authorize needs the app's device_info)",
        "banks[0].start_endpoint: must be a discovery key such as app_authentication_"
        "endpoint (got 'App Authentication')",
        "authorization_details_types.has space: a type name is printable ASCII without "
        "spaces (RFC 9396 §2.1), at most 200 characters",
        "clients[0].authorization_details_types[1]: 'iban_check' is not declared in "
        "authorization_details_types (declared: has space, payment_initiation)",
        "banks[0].permissions.types.account_information: 'account_information' is not "
        "declared in authorization_details_types (declared: has space, payment_initiation)",
    ]


@pytest.mark.parametrize(("kind", "extra", "problem"), [
    ("oidc", {"start_endpoint": "x"}, "banks[0].start_endpoint: is only used with kind ciba"),
    ("oidc", {"permissions": {"endpoint": "https://a.example/p"}},
     "banks[0].permissions.endpoint: is only used with kind ciba (an oidc bank takes the "
     "permission in its PAR request: only types applies)"),
    ("ciba", {"permissions": None, "assertion": "access_token"},
     "banks[0].assertion: needs permissions: (the token sent as client_assertion is the "
     "permissions API token)"),
])  # fmt: skip
def test_keys_of_other_kinds(folder: Path, kind: str, extra: dict[str, Any],
                             problem: str) -> None:  # fmt: skip
    config = data()
    bank = config["banks"][0]
    bank.update(kind=kind)
    for key in ("start_endpoint", "assertion", "permissions", "pass_through"):
        bank.pop(key)
    if kind == "ciba":
        bank["pass_through"] = ["device_info"]
    bank.update({k: v for k, v in extra.items() if v is not None})
    assert problem in errors(folder, config)


def test_an_oidc_bank_names_permission_types(folder: Path) -> None:
    """BankID's own OIDC provider: a payment_initiation detail goes as payment.v1."""
    config = data()
    bank = config["banks"][0]
    for key in ("start_endpoint", "assertion", "pass_through"):
        bank.pop(key)
    bank.update(kind="oidc", permissions={"types": {"payment_initiation": "payment.v1"}})
    read = parse_config(config, folder, ENV).banks[0]
    assert read.permissions == Permissions(types={"payment_initiation": "payment.v1"})


@pytest.mark.parametrize(("content", "problem"), [
    (None, "cannot read"),
    ("{not json", "is not JSON"),
    ("[1, 2]", "must hold a JSON Schema object (got a list)"),
    ('{"type": "objekt"}', "is not a valid JSON Schema (at type: "),
    ('{"properties": {"a": {"minLength": -1}}}', "is not a valid JSON Schema (at "
     "properties/a/minLength: "),
    # a schema the proxy would have to fetch, or a reference that leads nowhere
    ('{"$ref": "https://schemas.example/payment.json"}', "$ref 'https://schemas.example/"
     "payment.json' must point into this file (#/...)"),
    ('{"properties": {"a": {"$ref": "#/$defs/amount"}}}', "$ref '#/$defs/amount' must "
     "point into this file (#/...)"),
])  # fmt: skip
def test_a_schema_that_is_not_one(folder: Path, content: str | None, problem: str) -> None:
    target = folder / "schemas" / "payment_initiation.json"
    if content is None:
        target.unlink()
    else:
        target.write_text(content)
    (found,) = errors(folder, data())
    assert found.startswith("authorization_details_types.payment_initiation.schema: ")
    assert problem in found


def test_local_references_are_followed(folder: Path) -> None:
    schema = {"$defs": {"amount": {"type": "string", "pattern": "^[0-9]+$"}},
              "type": "object", "properties": {"amount": {"$ref": "#/$defs/amount"}}}
    (folder / "schemas" / "payment_initiation.json").write_text(json.dumps(schema))
    (declared,) = parse_config(data(), folder, ENV).authorization_details_types
    assert declared.validator.is_valid({"amount": "12"})
    assert not declared.validator.is_valid({"amount": "1.2"})


def test_id_token_and_the_schema_key(folder: Path) -> None:
    config = data()
    config["authorization_details_types"] = {
        "payment_initiation": {"schema": "schemas/payment_initiation.json", "id_token": True},
        "consent": {"id_token": True},
    }
    assert errors(folder, config) == [
        "authorization_details_types.consent.schema: is required (a JSON Schema file)"]
    del config["authorization_details_types"]["consent"]
    assert parse_config(config, folder, ENV).authorization_details_types[0].id_token is True
