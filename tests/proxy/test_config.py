"""proxy.config: config.yaml -> Config, every problem listed with its key path.

Most cases are rows of a table (dex style): a mutation of a known-good config
and a substring the error list must contain.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jwcrypto import jwk

from federation.settings import BankSettings, TlsSettings
from proxy.config import ConfigError, load_config, parse_config
from proxy.config.keys import token_key_id
from proxy.config.settings import (
    AndroidApp,
    Apps,
    ClientSettings,
    Config,
    IosApp,
    Lifetimes,
    Listen,
    MetricsSettings,
    RateLimits,
    ResourceServer,
    StoreSettings,
    Subject,
)
from proxy.ops.cli import main

TOKEN_KEY = secrets.token_bytes(32)
ENV = {
    "TOKEN_ENCRYPTION_KEY": base64.urlsafe_b64encode(TOKEN_KEY).rstrip(b"=").decode(),
    "SUBJECT_SALT": "pepper-pepper-pepper",
    "BANK_A_SECRET": "bank-a-secret",
    "PAYMENTS_API_SECRET": "payments-secret-" + "p" * 20,
}
BACKEND_SECRET = "backend-secret-" + "b" * 20
SECRET_LINE = f"client_secret: {BACKEND_SECRET}"
FINGERPRINT = ":".join(["AB"] * 32)

# The DESIGN.md example, grown a little: a second (private_key_jwt) bank
# and a confidential client.
GOOD_YAML = f"""
issuer: https://login.merchant.example/
listen: {{host: 0.0.0.0, port: 8443}}
store:
  url: redis://redis:6379/0
  cluster: false
keys:
  signing:
    - file: keys/signing.jwk
    - file: keys/old.pem
  token_encryption: ${{TOKEN_ENCRYPTION_KEY}}
lifetimes: {{transaction: 600, authorization_code: 60, access_token: 300,
             refresh_token: 2592000, id_token: 300, refresh_grace: 10}}
subject: {{type: pairwise, salt: "${{SUBJECT_SALT}}"}}
banks:
  - id: bank-a
    acr_values: [urn:merchant:acr:bank-a]
    upstream_acr_values: [urn:bank-a:loa:high]
    kind: oidc
    issuer: https://auth.bank-a.example
    timeout: 10
    client_id: merchant
    client_auth: client_secret_basic
    client_secret: ${{BANK_A_SECRET}}
    userinfo: false
    scopes: [openid, profile]
    use_par: false
    authentication_level: sca
    claims: {{name: name, given_name: given_name}}
    interstitial: false
    fallback_acr: urn:merchant:acr:bank-b
  - id: bank-b
    acr_values: [urn:merchant:acr:bank-b, urn:merchant:acr:bank-b-high]
    kind: oidc
    issuer: https://auth.bank-b.example/
    client_id: merchant-b
    client_auth: private_key_jwt
    private_key: keys/bank-b.pem
    tls: {{cert: tls/client.crt, key: tls/client.key}}
    timeout: 2.5
    jwks_cooldown: 0
    native: false
    leeway: 5
    trace_context: false
clients:
  - client_id: merchant-ios
    type: public
    redirect_uris: [https://app.merchant.example/auth/callback, com.merchant.app:/cb]
    acr_values: [urn:merchant:acr:bank-a]
    default_acr: urn:merchant:acr:bank-a
    scopes: [openid, profile, offline_access, payments]
    native_callback_uris: [https://app.merchant.example/app2app]
    sector_identifier: merchant.example
  - client_id: merchant-backend
    type: confidential
    redirect_uris: ["http://127.0.0.1:4000/cb"]
    client_secret: {BACKEND_SECRET}
    sector_identifier: merchant.example
apps:
  ios: [{{app_id: TEAMID.com.merchant.app, paths: [/callback/*, /resume/*]}}]
  android: [{{package: com.merchant.app, sha256_cert_fingerprints: ["{FINGERPRINT}"]}}]
resource_servers:
  - client_id: payments-api
    client_secret: ${{PAYMENTS_API_SECRET}}
    receive_bank_token: true
"""


# -- key files ----------------------------------------------------------------


def write_jwk(path: Path, key: jwk.JWK, private: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key.export_private() if private else key.export_public())
    return path


def write_pem(path: Path, key: jwk.JWK, private: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.export_to_pem(private_key=private, password=None))
    return path


def write_tls(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "merchant")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "client.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@functools.cache
def generated(kty: str, size_or_crv: int | str, **params: str) -> jwk.JWK:
    """A key per kind, made once: RSA generation is slow."""
    kind = {"size": size_or_crv} if kty == "RSA" else {"crv": size_or_crv}
    return jwk.JWK.generate(kty=kty, **kind, **params)


class Setup:
    """A config folder with every file GOOD_YAML names."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.signing = generated("EC", "P-256", kid="sig-2024")
        self.old = generated("RSA", 2048)
        self.bank_b = generated("EC", "P-256")
        write_jwk(folder / "keys/signing.jwk", self.signing)
        write_pem(folder / "keys/old.pem", self.old)
        write_pem(folder / "keys/bank-b.pem", self.bank_b)
        write_tls(folder / "tls")
        self.config_file = folder / "config.yaml"
        self.config_file.write_text(GOOD_YAML)

    def data(self) -> Any:
        return yaml.safe_load(GOOD_YAML)

    def parse(self, data: object, environ: dict[str, str] | None = None) -> Config:
        return parse_config(data, self.folder, ENV if environ is None else environ)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path / "etc")


def errors_of(call: Callable[[], object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        call()
    return info.value.errors


# -- the good config ----------------------------------------------------------


def test_good_config_round_trip(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths follow the config file, not the cwd
    config = load_config("etc/config.yaml", ENV)
    folder = setup.folder.resolve()

    assert config.issuer == "https://login.merchant.example"  # trailing slash dropped
    assert config.listen == Listen(host="0.0.0.0", port=8443)
    assert config.store == StoreSettings(url="redis://redis:6379/0", cluster=False, prefix="a2a:")
    assert config.keys.token_encryption == TOKEN_KEY
    assert config.keys.token_keys == (TOKEN_KEY,)
    first, second = (k.key for k in config.keys.signing)
    assert [(k.file, k.not_before, k.not_after) for k in config.keys.signing] == [
        ("keys/signing.jwk", None, None), ("keys/old.pem", None, None)]
    assert first.has_private and first.get("kid") == "sig-2024" and first.get("alg") == "ES256"
    assert first.thumbprint() == setup.signing.thumbprint()
    assert second.has_private and second.get("alg") == "RS256"
    assert second.get("kid") == setup.old.thumbprint()  # RFC 7638, from the PEM
    assert config.lifetimes == Lifetimes()
    assert config.subject == Subject(type="pairwise", salt="pepper-pepper-pepper")
    assert config.banks == (
        BankSettings(
            id="bank-a",
            kind="oidc",
            issuer="https://auth.bank-a.example",
            client_id="merchant",
            client_auth="client_secret_basic",
            acr_values=("urn:merchant:acr:bank-a",),
            upstream_acr_values=("urn:bank-a:loa:high",),
            timeout=10.0,
            client_secret="bank-a-secret",
            scopes=("openid", "profile"),
            authentication_level="sca",
            claims={"name": "name", "given_name": "given_name"},
            fallback_acr="urn:merchant:acr:bank-b",
        ),
        BankSettings(
            id="bank-b",
            kind="oidc",
            issuer="https://auth.bank-b.example/",  # a bank's issuer is kept exactly
            client_id="merchant-b",
            client_auth="private_key_jwt",
            acr_values=("urn:merchant:acr:bank-b", "urn:merchant:acr:bank-b-high"),
            timeout=2.5,
            private_key=(folder / "keys/bank-b.pem").read_text(),
            tls=TlsSettings(
                cert=str(folder / "tls/client.crt"), key=str(folder / "tls/client.key")
            ),
            jwks_cooldown=0.0,
            native=False,
            leeway=5.0,
            trace_context=False,
        ),
    )
    assert config.clients == (
        ClientSettings(
            client_id="merchant-ios",
            type="public",
            redirect_uris=("https://app.merchant.example/auth/callback", "com.merchant.app:/cb"),
            acr_values=("urn:merchant:acr:bank-a",),
            default_acr="urn:merchant:acr:bank-a",
            scopes=("openid", "profile", "offline_access", "payments"),
            native_callback_uris=("https://app.merchant.example/app2app",),
            sector_identifier="merchant.example",
        ),
        ClientSettings(
            client_id="merchant-backend",
            type="confidential",
            redirect_uris=("http://127.0.0.1:4000/cb",),
            client_secret=BACKEND_SECRET,
            sector_identifier="merchant.example",
        ),
    )
    assert config.apps == Apps(
        ios=(IosApp(app_id="TEAMID.com.merchant.app", paths=("/callback/*", "/resume/*")),),
        android=(AndroidApp(package="com.merchant.app", sha256_cert_fingerprints=(FINGERPRINT,)),),
    )
    assert config.resource_servers == (
        ResourceServer(
            client_id="payments-api", client_secret=ENV["PAYMENTS_API_SECRET"],
            receive_bank_token=True,
        ),
    )


def test_minimal_config_gets_defaults(setup: Setup) -> None:
    config = setup.parse(
        {
            "issuer": "http://localhost:8080",
            "keys": {
                "signing": [{"file": "keys/signing.jwk"}],
                "token_encryption": "${TOKEN_ENCRYPTION_KEY}",
            },
            "subject": {"type": "bank"},
            "banks": [
                {
                    "id": "b",
                    "acr_values": ["acr-b"],
                    "kind": "oidc",
                    "issuer": "http://127.0.0.1:9000",
                    "client_id": "m",
                    "client_auth": "client_secret_post",
                    "client_secret": "s",
                }
            ],
            "clients": [
                {"client_id": "c", "type": "public", "redirect_uris": ["https://a.example/cb"]}
            ],
        }
    )
    assert config.issuer == "http://localhost:8080"
    assert config.listen == Listen() and config.store == StoreSettings()
    assert (
        config.lifetimes == Lifetimes() and config.apps == Apps() and config.resource_servers == ()
    )
    assert config.subject == Subject(type="bank")
    bank = config.banks[0]
    assert (bank.scopes, bank.timeout, bank.jwks_cooldown, bank.native, bank.leeway) == (
        ("openid",),
        10.0,
        5.0,
        True,
        30.0,
    )
    assert config.clients[0].acr_values is None and config.clients[0].scopes == ("openid",)


# -- one mutation, one error: the table -----------------------------------------

DELETE = object()


def mutate(data: Any, path: str, value: object) -> None:
    """Set (or with DELETE remove) the value at a key path like ``banks[0].tls.cert``."""
    steps: list[str | int] = []
    for part in path.split("."):
        name, *indexes = re.split(r"\[(\d+)\]", part)
        if name:
            steps.append(name)
        steps.extend(int(i) for i in indexes if i)
    node = data
    for step in steps[:-1]:
        node = node[step]
    if value is DELETE:
        del node[steps[-1]]
    else:
        node[steps[-1]] = copy.deepcopy(value)


# (mutations: {key path: new value}, expected substring of one error)
Mutations = dict[str, object]
# clients[1] (merchant-backend) under the fapi2 profile: private_key_jwt only
FAPI2_CLIENT: Mutations = {"clients[1].profile": "fapi2", "clients[1].client_secret": DELETE,
                           "clients[1].jwks": "PUBLIC_JWKS"}
BAD: list[tuple[Mutations, str]] = [
    # top level
    ({"isuer": "https://x.example"}, "isuer: unknown key; did you mean 'issuer'?"),
    ({"whatever": 1},
     "whatever: unknown key (known keys: apps, authorization_details_types, banks,"),
    ({"issuer": DELETE}, "issuer: is required"),
    ({"issuer": 5}, "issuer: must be a string (got 5)"),
    ({"issuer": "http://login.example.com"}, "issuer: must use https"),
    ({"issuer": "login.example.com"}, "issuer: must be an absolute https URL"),
    ({"issuer": "ftp://login.example.com"}, "issuer: must be an absolute https URL"),
    ({"issuer": "https://x.example/?tenant=1"}, "issuer: must not have a query or fragment"),
    ({"issuer": "https://x.example/#top"}, "issuer: must not have a query or fragment"),
    # listen
    ({"listen.port": "abc"}, "listen.port: must be an integer (got 'abc')"),
    ({"listen.port": 0}, "listen.port: must be between 1 and 65535 (got 0)"),
    ({"listen.port": 65536}, "listen.port: must be between 1 and 65535 (got 65536)"),
    ({"listen.port": True}, "listen.port: must be an integer (got True)"),
    ({"listen.prot": 1}, "listen.prot: unknown key; did you mean 'port'?"),
    ({"listen": 8080}, "listen: must be a mapping (got 8080)"),
    # store
    (
        {"store.url": "http://:hunter2@redis:6379"},
        "store.url: must start with one of redis://, rediss://, redis+sentinel://, "
        "rediss+sentinel://, unix://, memory:// (got scheme 'http')",
    ),
    ({"store.url": "redis-host:6379"}, "store.url: must start with one of redis://"),
    ({"store.cluster": "maybe"}, "store.cluster: must be true or false (got 'maybe')"),
    ({"store.url": "memory://", "store.cluster": True}, "store.cluster: Redis Cluster needs"),
    ({"store.prefix": 7}, "store.prefix: must be a string (got 7)"),
    # keys
    ({"keys": DELETE}, "keys: is required"),
    ({"keys.signing": DELETE}, "keys.signing: is required"),
    ({"keys.signing": []}, "keys.signing: needs at least one entry"),
    ({"keys.signing": ["keys/signing.jwk"]}, "keys.signing[0]: must be a mapping"),
    ({"keys.signing[0].fiel": "x"}, "keys.signing[0].fiel: unknown key; did you mean 'file'?"),
    ({"keys.signing[0].file": "keys/nope.jwk"}, "keys.signing[0].file: cannot read "),
    ({"keys.signing[0].file": "keys/public.jwk"}, "keys.signing[0].file: "),
    ({"keys.signing[0].file": "keys/public.jwk"}, "holds a public key; a private key is needed"),
    ({"keys.signing[0].file": "keys/garbage.pem"}, "does not hold a private JWK (JSON) or a PEM"),
    ({"keys.signing[0].file": "keys/rsa1024.pem"}, "RSA key of 1024 bits; at least 2048 needed"),
    (
        {"keys.signing[0].file": "keys/p384.jwk"},
        "unsupported key type EC P-384; supported: EC P-256",
    ),
    ({"keys.signing[0].file": "keys/es384.jwk"}, "alg is 'ES384', but a EC key here signs ES256"),
    (
        {"keys.signing[1].file": "keys/signing.jwk"},
        "keys.signing[1].file: kid 'sig-2024' is already used",
    ),
    # keys.signing schedules (docs/key-rotation.md)
    (
        {"keys.signing[1].not_before": "tomorrow"},
        "keys.signing[1].not_before: must be an ISO 8601 time with its zone, like "
        "2025-03-01T00:00:00Z, or unix seconds (got 'tomorrow')",
    ),
    (
        {"keys.signing[1].not_before": datetime.datetime(2030, 1, 1, 12)},
        "keys.signing[1].not_before: 2030-01-01T12:00:00 has no zone; add Z for UTC, "
        "like 2030-01-01T12:00:00Z",
    ),
    ({"keys.signing[1].not_before": "2030-01-01T12:00:00"}, "has no zone; add Z for UTC"),
    (
        {"keys.signing[1].not_before": datetime.date(2030, 1, 1)},
        "keys.signing[1].not_before: 2030-01-01 needs a time and a zone, like 2030-01-01T00:00:00Z",
    ),
    ({"keys.signing[1].not_before": True}, "keys.signing[1].not_before: must be an ISO 8601"),
    ({"keys.signing[1].not_before": -5}, "keys.signing[1].not_before: must be an ISO 8601"),
    (
        {"keys.signing[0].not_after": 1893456000000},
        "keys.signing[0].not_after: must be unix seconds (1893456000000 looks like milliseconds)",
    ),
    (
        {"keys.signing[1].not_before": "2031-01-01T00:00:00Z", "keys.signing[1].not_after":
         "2030-01-01T00:00:00Z"},
        "keys.signing[1].not_after: must be after not_before (2031-01-01T00:00:00Z); "
        "got 2030-01-01T00:00:00Z",
    ),
    (
        {"keys.signing[1].not_before": 1893456000, "keys.signing[1].not_after": 1893456000},
        "keys.signing[1].not_after: must be after not_before",
    ),
    (
        {"keys.signing[0].not_before": "2999-01-01T00:00:00Z",
         "keys.signing[1].not_before": "2999-01-01T00:00:00Z"},
        "keys.signing: no key can sign now (",
    ),
    (
        {"keys.signing[0].not_after": 946684800, "keys.signing[1].not_after": 946684800},
        "keys.signing[0] may sign from the start until 2000-01-01T00:00:00Z; keys.signing[1]",
    ),
    (
        {"keys.signing[0].not_after": "2999-01-01T00:00:00Z",
         "keys.signing[1].not_after": "2998-01-01T00:00:00Z"},
        "keys.signing[0].not_after: from 2999-01-01T00:00:00Z no key could sign: add the next "
        "key, with a not_before at or before then, or move this not_after later",
    ),
    (
        {"keys.signing[0].retire_after": 1},
        "keys.signing[0].retire_after: unknown key; did you mean 'not_after'?",
    ),
    ({"keys.token_encryption": DELETE}, "keys.token_encryption: is required"),
    (
        {"keys.token_encryption": "c2hvcnQ"},
        "keys.token_encryption: must be 32 random bytes, base64url",
    ),
    ({"keys.token_encryption": "c2hvcnQ"}, "(generate one with: python -c 'import secrets,base64;"),
    ({"keys.token_encryption": "+" * 43}, "keys.token_encryption: must be 32 random bytes"),
    ({"keys.token_encryption": 12345},
     "keys.token_encryption: must be a string, or a list of them (got an integer)"),
    # a list of keys (a rotation): the first encrypts, every one decrypts
    ({"keys.token_encryption": []}, "keys.token_encryption: needs at least one key"),
    ({"keys.token_encryption": ["${TOKEN_ENCRYPTION_KEY}", "c2hvcnQ"]},
     "keys.token_encryption[1]: must be 32 random bytes, base64url"),
    ({"keys.token_encryption": ["${TOKEN_ENCRYPTION_KEY}", 7]},
     "keys.token_encryption[1]: must be a string, or a list of them (got an integer)"),
    ({"keys.token_encryption": ["${TOKEN_ENCRYPTION_KEY}", "${TOKEN_ENCRYPTION_KEY}="]},
     "keys.token_encryption[1]: is the same key as keys.token_encryption[0]; list each key "
     "once"),
    ({"keys.token_encryption": ["${NO_SUCH_KEY}"]},
     "keys.token_encryption[0]: environment variable NO_SUCH_KEY is not set"),
    # lifetimes, subject
    ({"lifetimes.access_token": 0}, "lifetimes.access_token: must be a positive integer (got 0)"),
    ({"lifetimes.access_token": "5m"}, "lifetimes.access_token: must be an integer (got '5m')"),
    (
        {"lifetimes.acess_token": 5},
        "lifetimes.acess_token: unknown key; did you mean 'access_token'?",
    ),
    ({"subject.type": "random"}, "subject.type: must be one of pairwise, bank (got 'random')"),
    ({"subject.salt": DELETE}, "subject.salt: is required with type pairwise"),
    ({"subject.salt": ""}, "subject.salt: must not be empty"),
    # banks
    ({"banks": []}, "banks: at least one bank is needed"),
    ({"banks": DELETE}, "banks: at least one bank is needed"),
    ({"banks": {"id": "bank-a"}}, "banks: must be a list (got a mapping)"),
    ({"banks[0]": "bank-a"}, "banks[0]: must be a mapping (got 'bank-a')"),
    ({"banks[0].clent_id": "x"}, "banks[0].clent_id: unknown key; did you mean 'client_id'?"),
    ({"banks[0].id": DELETE}, "banks[0].id: is required"),
    ({"banks[0].id": "Bank_A"}, "banks[0].id: must be lowercase letters, digits and '-' only"),
    ({"banks[1].id": "bank-a"}, "banks[1].id: 'bank-a' is already the id of banks[0]"),
    ({"banks[0].acr_values": DELETE}, "banks[0].acr_values: is required"),
    ({"banks[0].acr_values": []}, "banks[0].acr_values: must not be empty"),
    (
        {"banks[0].acr_values": "urn:x"},
        "banks[0].acr_values: must be a list of strings (got 'urn:x')",
    ),
    (
        {"banks[0].acr_values": ["ok", 3]},
        "banks[0].acr_values[1]: must be a non-empty string (got 3)",
    ),
    (
        {"banks[1].acr_values": ["urn:merchant:acr:bank-b", "urn:merchant:acr:bank-a"]},
        "banks[1].acr_values[1]: 'urn:merchant:acr:bank-a' already routes to bank 'bank-a'",
    ),
    ({"banks[0].kind": "saml"}, "banks[0].kind: must be one of oidc, ciba, session (got 'saml')"),
    (
        {"banks[0].pass_through": ["device_info"]},
        "banks[0].pass_through: is only used with kind ciba",
    ),
    (
        {"banks[0].deep_link_field": "link"},
        "banks[0].deep_link_field: is only used with kind ciba",
    ),
    (
        {"banks[0].kind": "ciba", "banks[0].pass_through": ["device_info", "scope"]},
        "banks[0].pass_through: 'scope' is set by the proxy itself; remove it",
    ),
    ({"banks[0].name": ""}, "banks[0].name: must not be empty"),
    (
        {"lifetimes.request_uri": 601},
        "lifetimes.request_uri: must be at most 600 seconds (got 601)",
    ),
    (  # a cached gateway check hands out its JWT: it must outlive the cache entry
        {"lifetimes.gateway_jwt": 30, "lifetimes.gateway_cache": 30},
        "lifetimes.gateway_cache: must be below lifetimes.gateway_jwt (30; got 30)",
    ),
    ({"lifetimes.gateway_jwt": 0}, "lifetimes.gateway_jwt: must be a positive integer (got 0)"),
    ({"banks[0].kind": DELETE}, "banks[0].kind: is required"),
    ({"banks[0].issuer": "http://auth.bank-a.example"}, "banks[0].issuer: must use https"),
    ({"banks[0].issuer": DELETE}, "banks[0].issuer: is required"),
    ({"banks[0].timeout": 0}, "banks[0].timeout: must be greater than 0 (got 0)"),
    ({"banks[0].timeout": "soon"}, "banks[0].timeout: must be a number (got 'soon')"),
    ({"banks[0].client_id": DELETE}, "banks[0].client_id: is required"),
    (
        {"banks[0].client_auth": "secret_basic"},
        "banks[0].client_auth: must be one of client_secret_basic, client_secret_post, "
        "private_key_jwt, tls_client_auth (got 'secret_basic')",
    ),
    ({"banks[0].client_auth": "secret_basic"}, "did you mean 'client_secret_basic'?"),
    (
        {"banks[0].client_secret": DELETE},
        "banks[0].client_secret: is required with client_auth client_secret_basic",
    ),
    ({"banks[0].client_secret": ""}, "banks[0].client_secret: must not be empty"),
    ({"banks[0].client_secret": 1234}, "banks[0].client_secret: must be a string (got an integer)"),
    (
        {"banks[0].client_auth": "private_key_jwt"},
        "banks[0].private_key: is required with client_auth private_key_jwt",
    ),
    (
        {"banks[0].client_auth": "private_key_jwt"},
        "banks[0].client_secret: is only used with client_auth",
    ),
    (
        {"banks[0].private_key": "keys/bank-b.pem"},
        "banks[0].private_key: is only used with client_auth private_key_jwt",
    ),
    ({"banks[1].private_key": "keys/nope.pem"}, "banks[1].private_key: cannot read "),
    ({"banks[1].private_key": "keys/public.jwk"}, "banks[1].private_key: "),
    (
        {"banks[1].private_key": DELETE},
        "banks[1].private_key: is required with client_auth private_key_jwt",
    ),
    (
        {
            "banks[1].client_auth": "tls_client_auth",
            "banks[1].private_key": DELETE,
            "banks[1].tls": DELETE,
        },
        "banks[1].tls: is required with client_auth tls_client_auth",
    ),
    ({"banks[1].tls.cert": "tls/nope.crt"}, "banks[1].tls.cert: cannot read "),
    ({"banks[1].tls.cert": "tls/client.key"}, "banks[1].tls.cert: "),
    ({"banks[1].tls.key": "tls/client.crt"}, "does not hold an unencrypted PEM private key"),
    ({"banks[1].tls.key": DELETE}, "banks[1].tls.key: is required"),
    ({"banks[1].tls.ca": "x"}, "banks[1].tls.ca: unknown key"),
    ({"banks[0].userinfo": "maybe"}, "banks[0].userinfo: must be true or false (got 'maybe')"),
    ({"banks[0].use_par": 2}, "banks[0].use_par: must be true or false (got 2)"),
    ({"banks[0].interstitial": "x"}, "banks[0].interstitial: must be true or false"),
    ({"banks[0].native": "x"}, "banks[0].native: must be true or false"),
    ({"banks[0].trace_context": "x"}, "banks[0].trace_context: must be true or false"),
    ({"banks[0].scopes": ["profile"]}, "banks[0].scopes: must contain openid (got ['profile'])"),
    ({"banks[0].scopes": []}, "banks[0].scopes: must contain openid"),
    (
        {"banks[0].upstream_acr_values": "x"},
        "banks[0].upstream_acr_values: must be a list of strings",
    ),
    ({"banks[0].authentication_level": ["sca"]}, "banks[0].authentication_level: must be a string"),
    ({"banks[0].claims": ["name"]}, "banks[0].claims: must be a mapping of strings to strings"),
    ({"banks[0].claims.name": 5}, "banks[0].claims.name: must map a string to a non-empty string"),
    (
        {"banks[0].fallback_acr": "urn:nope"},
        "banks[0].fallback_acr: 'urn:nope' is not an acr value of any bank",
    ),
    (
        {"banks[0].fallback_acr": "urn:merchant:acr:bank-a"},
        "banks[0].fallback_acr: 'urn:merchant:acr:bank-a' routes back to this bank",
    ),
    ({"banks[0].jwks_cooldown": -1}, "banks[0].jwks_cooldown: must be at least 0 (got -1)"),
    ({"banks[0].leeway": -0.5}, "banks[0].leeway: must be at least 0 (got -0.5)"),
    ({"banks[0].leeway": "x"}, "banks[0].leeway: must be a number (got 'x')"),
    ({"banks[0].description": ""}, "banks[0].description: must not be empty"),
    ({"banks[0].description": 3}, "banks[0].description: must be a string"),
    # clients
    ({"clients[0].client_uri": "javascript:alert(1)"},
     "clients[0].client_uri: must be an absolute https URL"),
    ({"clients[0].client_uri": "http://shop.example/"}, "clients[0].client_uri: must use https"),
    ({"clients[0].client_uri": "https://u:p@shop.example/"},
     "clients[0].client_uri: must not contain user:password@"),
    ({"clients[0].client_uri": "https://shop.example/#x"},
     "clients[0].client_uri: must have no fragment"),
    ({"clients[0].client_name": ""}, "clients[0].client_name: must not be empty"),
    ({"clients": []}, "clients: at least one client is needed"),
    ({"clients": DELETE}, "clients: at least one client is needed"),
    (
        {"clients[0].redirect_uri": []},
        "clients[0].redirect_uri: unknown key; did you mean 'redirect_uris'?",
    ),
    ({"clients[0].client_id": DELETE}, "clients[0].client_id: is required"),
    (
        {"clients[1].client_id": "merchant-ios"},
        "clients[1].client_id: 'merchant-ios' is already the client_id of clients[0]",
    ),
    (
        {"resource_servers[0].client_id": "merchant-ios"},
        "resource_servers[0].client_id: 'merchant-ios' is already the client_id of clients[0]",
    ),
    (
        {"clients[0].type": "private"},
        "clients[0].type: must be one of public, confidential (got 'private')",
    ),
    ({"clients[0].type": DELETE}, "clients[0].type: is required"),
    ({"clients[0].redirect_uris": DELETE}, "clients[0].redirect_uris: is required"),
    ({"clients[0].redirect_uris": []}, "clients[0].redirect_uris: must not be empty"),
    (
        {"clients[0].redirect_uris[0]": "http://app.example/cb"},
        "clients[0].redirect_uris[0]: http is only allowed on loopback",
    ),
    (
        {"clients[0].redirect_uris[1]": "https://app.example/cb#x"},
        "clients[0].redirect_uris[1]: must not have a fragment",
    ),
    (
        {"clients[0].redirect_uris[0]": "/auth/callback"},
        "clients[0].redirect_uris[0]: must be an absolute URI",
    ),
    (
        {"clients[0].redirect_uris[0]": "myapp:/cb"},
        "clients[0].redirect_uris[0]: must be https, http on loopback, or a private-use scheme",
    ),
    (
        {"clients[0].redirect_uris[0]": "javascript:alert(1)"},
        "clients[0].redirect_uris[0]: must be https",
    ),
    (
        {"clients[0].redirect_uris[0]": "https:///cb"},
        "clients[0].redirect_uris[0]: must name a host",
    ),
    (
        {"clients[0].redirect_uris[1]": "https://app.merchant.example/auth/callback"},
        "clients[0].redirect_uris[1]: is listed twice",
    ),
    (
        {"clients[0].acr_values": ["urn:nope"]},
        "clients[0].acr_values[0]: 'urn:nope' does not route to any bank",
    ),
    (
        {"clients[0].acr_values": []},
        "clients[0].acr_values: must not be empty (leave it out to allow every bank)",
    ),
    (
        {"clients[0].default_acr": "urn:merchant:acr:bank-b"},
        "clients[0].default_acr: 'urn:merchant:acr:bank-b' is not in this client's acr_values",
    ),
    (
        {"clients[1].default_acr": "urn:nope"},
        "clients[1].default_acr: 'urn:nope' does not route to any bank",
    ),
    ({"clients[0].scopes": []}, "clients[0].scopes: must not be empty"),
    (  # key paths stay right when an element before was dropped
        {"banks[1].acr_values": [5, "urn:merchant:acr:bank-a"]},
        "banks[1].acr_values[1]: 'urn:merchant:acr:bank-a' already routes to bank 'bank-a'",
    ),
    (
        {
            "clients[0]": "merchant-ios",
            "clients[1].client_id": "x",
            "resource_servers": [
                {"client_id": "y", "client_secret": "s"},
                {"client_id": "x", "client_secret": "s"},
            ],
        },
        "resource_servers[1].client_id: 'x' is already the client_id of clients[1]",
    ),
    (
        {"clients[0].scopes": "openid"},
        "clients[0].scopes: must be a list of strings (got 'openid')",
    ),
    (
        {"clients[0].fallback_acr": "urn:nope"},
        "clients[0].fallback_acr: 'urn:nope'",
    ),
    (
        {"clients[1].client_secret": DELETE, "clients[1].client_secret_sha256": "abc"},
        "clients[1].client_secret_sha256: must be the SHA-256 of the secret as 64 hex digits",
    ),
    (
        {"clients[1].client_secret_sha256": "a" * 64},
        "clients[1].client_secret_sha256: give client_secret or its hash, not both",
    ),
    (
        {"clients[0].profile": "fapi2"},
        "clients[0].profile: fapi2 needs a confidential client that authenticates with "
        "private_key_jwt",
    ),
    ({"clients[0].profile": "fapi1"}, "clients[0].profile: must be one of default, fapi2"),
    (  # FAPI 2.0 Security Profile §5.3.2.1: codes live at most 60 s
        {**FAPI2_CLIENT, "lifetimes.authorization_code": 61},
        "clients[1].profile: fapi2 needs lifetimes.authorization_code <= 60 (it is 61)",
    ),
    (  # §5.3.2.2: request_uri expires_in "less than 600 seconds"
        {**FAPI2_CLIENT, "lifetimes.request_uri": 600},
        "clients[1].profile: fapi2 needs lifetimes.request_uri < 600 (it is 600)",
    ),
    (  # §5.4.1: PS256, ES256 or EdDSA; keys/old.pem is an RSA key (RS256)
        FAPI2_CLIENT,
        "clients[1].profile: fapi2 needs every keys.signing key to sign ES256, EdDSA, PS256; "
        "keys/old.pem signs RS256",
    ),
    (
        {"clients[0].default_resource": "https://api.example/x#frag"},
        "clients[0].default_resource: must not have a fragment",
    ),
    (
        {"clients[0].default_resource": "https://unknown.example"},
        "clients[0].default_resource: 'https://unknown.example' is not the audience of any "
        "resource server",
    ),
    (
        {"resource_servers[0].audience": "relative/path"},
        "resource_servers[0].audience: must be an absolute URI",
    ),
    (
        {"resource_servers[0].client_secret": DELETE},
        "resource_servers[0]: a resource server needs client_secret",
    ),
    (
        {"clients[0].native_callback_uris": ["http://app.merchant.example/x"]},
        "clients[0].native_callback_uris[0]: must be an absolute https URL",
    ),
    (
        {"clients[0].client_secret": "s"},
        "clients[0].client_secret: a public client has no credentials",
    ),
    ({"clients[0].jwks": {"keys": []}}, "clients[0].jwks: a public client has no credentials"),
    (
        {"clients[1].client_secret": DELETE},
        "clients[1]: a confidential client needs client_secret (or client_secret_sha256), or jwks",
    ),
    (
        {"clients[1].jwks": {"keys": []}},
        "clients[1].jwks: must be a JWKS: a mapping with a non-empty keys list",
    ),
    ({"clients[1].jwks": [1]}, "clients[1].jwks: must be a JWKS"),
    ({"clients[1].jwks": {"keys": [{"kty": "EC"}]}}, "clients[1].jwks.keys[0]: is not a valid JWK"),
    (
        {"clients[1].jwks": {"keys": ["x"]}},
        "clients[1].jwks.keys[0]: is not a valid JWK: must be a mapping",
    ),
    (
        {"clients[1].jwks": "PRIVATE_JWKS"},
        "clients[1].jwks.keys[0]: holds a private or symmetric key",
    ),
    # apps
    ({"apps.windows": []}, "apps.windows: unknown key"),
    ({"apps.ios[0].app_id": "nodot"}, "apps.ios[0].app_id: must be TEAMID.bundle.id"),
    ({"apps.ios[0].paths": DELETE}, "apps.ios[0].paths: is required"),
    ({"apps.android[0].package": DELETE}, "apps.android[0].package: is required"),
    (
        {"apps.android[0].sha256_cert_fingerprints": ["AB:CD"]},
        "apps.android[0].sha256_cert_fingerprints[0]: must be 32 hex pairs",
    ),
    (
        {"apps.android[0].sha256_cert_fingerprints": []},
        "apps.android[0].sha256_cert_fingerprints: must not be empty",
    ),
    # resource servers
    ({"resource_servers[0].client_id": DELETE}, "resource_servers[0].client_id: is required"),
    (
        {"resource_servers[0].receive_bank_token": "sometimes"},
        "resource_servers[0].receive_bank_token: must be true or false",
    ),
    ({"resource_servers[0].scope": "x"}, "resource_servers[0].scope: unknown key"),
    # rate limits
    ({"rate_limits": 60}, "rate_limits: must be a mapping (got 60)"),
    ({"rate_limits": {"burst": 5}}, "rate_limits.burst: unknown key (known keys: per_address,"),
    ({"rate_limits": {"window": 0}}, "rate_limits.window: must be a positive integer (got 0)"),
    ({"rate_limits": {"window": "1m"}}, "rate_limits.window: must be an integer (got '1m')"),
    (
        {"rate_limits": {"per_client": {"tokn": 5}}},
        "rate_limits.per_client.tokn: unknown key; did you mean 'token'?",
    ),
    (
        {"rate_limits": {"per_address": {"metrics": 5}}},
        "rate_limits.per_address.metrics: unknown key (known keys: authorize, challenge, "
        "introspect, par, revoke, token)",
    ),
    (
        {"rate_limits": {"per_address": {"token": -1}}},
        "rate_limits.per_address.token: must be a positive integer (got -1)",
    ),
    (
        {"rate_limits": {"per_client": {"par": 2.5}}},
        "rate_limits.per_client.par: must be an integer (got 2.5)",
    ),
    (
        {"rate_limits": {"per_client": [30]}},
        "rate_limits.per_client: must be a mapping (got a list)",
    ),
    (
        {"rate_limits": {"trust_forwarded_for": "maybe"}},
        "rate_limits.trust_forwarded_for: must be true or false (got 'maybe')",
    ),
    # metrics
    # OIDC Core §8.1: a pairwise sub needs the client's sector
    (
        {"clients[0].sector_identifier": DELETE},
        "clients[0].sector_identifier: is required with subject type pairwise when "
        "redirect_uris are not all https on one host",
    ),
    (
        {"clients[1].sector_identifier": DELETE},
        "clients[1].sector_identifier: is required with subject type pairwise",
    ),
    (
        {"clients[0].sector_identifier": DELETE,
         "clients[0].redirect_uris": ["https://a.merchant.example/cb",
                                      "https://b.merchant.example/cb"]},
        "clients[0].sector_identifier: is required with subject type pairwise",
    ),
    (
        {"clients[0].sector_identifier": "https://merchant.example/"},
        "clients[0].sector_identifier: must be a host name in lower case, like merchant.example",
    ),
    (
        {"clients[0].sector_identifier": "Merchant.Example"},
        "clients[0].sector_identifier: must be a host name in lower case",
    ),
    ({"clients[0].sector_identifier": ""}, "clients[0].sector_identifier: must not be empty"),
    # the merchant's own apps: approve_for, native_sso, share_bank_tokens
    ({"clients[0].approve_for": ["nobody"]},
     "clients[0].approve_for[0]: 'nobody' is not the client_id of any client"),
    ({"clients[0].approve_for": ["merchant-ios"]}, "clients[0].approve_for[0]: names this client"),
    ({"clients[0].approve_for": ["merchant-backend"],
      "clients[1].sector_identifier": "other.example"},
     "clients[0].approve_for[0]: 'merchant-backend' is of another sector (other.example and "
     "merchant.example)"),
    ({"clients[1].approve_for": ["merchant-ios"]},
     "clients[1].approve_for: an approving client needs offline_access in its scopes"),
    ({"clients[0].scopes": ["openid", "device_sso"]},
     "clients[0].scopes: device_sso is for clients with native_sso: true"),
    ({"clients[0].native_sso": True, "clients[1].native_sso": True,
      "clients[1].sector_identifier": "other.example"},
     "clients[1].native_sso: clients with native_sso share one device session and so one "
     "sector: this one's is other.example, 'merchant-ios'"),
    ({"clients[0].share_bank_tokens": ["merchant-backend"]},
     "clients[0].share_bank_tokens[0]: 'merchant-backend' gets no login from this client"),
    ({**FAPI2_CLIENT, "clients[1].native_sso": True},
     "clients[1].profile: a fapi2 client logs in only through a pushed request"),
    ({"clients[0].native_sso": "sometimes"},
     "clients[0].native_sso: must be true or false (got 'sometimes')"),
    # metrics
    ({"metrics": True}, "metrics: must be a mapping (got True)"),
    ({"metrics": {"enable": False}}, "metrics.enable: unknown key; did you mean 'enabled'?"),
    ({"metrics": {"enabled": "maybe"}}, "metrics.enabled: must be true or false (got 'maybe')"),
    ({"metrics": {"bearer_token": ""}}, "metrics.bearer_token: must not be empty"),
    ({"metrics": {"bearer_token": 12345}}, "metrics.bearer_token: must be a string (got an "),
]


def extra_files(folder: Path) -> None:
    """Bad key files the table points at."""
    keys = folder / "keys"
    write_jwk(keys / "public.jwk", jwk.JWK.generate(kty="EC", crv="P-256"), private=False)
    write_pem(keys / "rsa1024.pem", generated("RSA", 1024))
    write_jwk(keys / "p384.jwk", jwk.JWK.generate(kty="EC", crv="P-384"))
    write_jwk(keys / "es384.jwk", jwk.JWK.generate(kty="EC", crv="P-256", alg="ES384"))
    (keys / "garbage.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n")


@pytest.mark.parametrize(("mutations", "expected"), BAD, ids=[e for _, e in BAD])
def test_bad_config(setup: Setup, mutations: Mutations, expected: str) -> None:
    extra_files(setup.folder)
    data = setup.data()
    for path, value in mutations.items():
        if value == "PRIVATE_JWKS":
            value = {"keys": [jwk.JWK.generate(kty="EC", crv="P-256").export_private(as_dict=True)]}
        if value == "PUBLIC_JWKS":
            value = {"keys": [jwk.JWK.generate(kty="EC", crv="P-256").export_public(as_dict=True)]}
        mutate(data, path, value)
    errors = errors_of(lambda: setup.parse(data))
    assert any(expected in error for error in errors), errors
    for secret in ("hunter2", *ENV.values()):
        assert all(secret not in error for error in errors), errors


GOOD: list[Mutations] = [
    {"issuer": "http://127.0.0.1:8080"},
    {"issuer": "http://[::1]:8080/"},
    {"issuer": "https://login.example/tenant"},
    {"store.url": "memory://"},
    {"store.url": "redis+sentinel://s1:26379/mymaster"},
    {"store.url": "rediss://r:6380/0", "store.cluster": True},
    {"store.prefix": "test-1:"},
    {"subject": {"type": "bank"}},
    {"keys.token_encryption": ENV["TOKEN_ENCRYPTION_KEY"] + "="},  # padding is optional
    {"keys.token_encryption": ["${TOKEN_ENCRYPTION_KEY}"]},
    {"keys.signing": [{"file": "keys/ed25519.jwk"}]},
    {"keys.signing[0].file": str(Path("keys/signing.jwk"))},
    # a key published ahead of signing; the old one retired (then dropped: no end)
    {"keys.signing[1].not_before": "2999-01-01T00:00:00Z"},
    {"keys.signing[0].not_after": "2999-01-01T00:00:00+02:00",
     "keys.signing[1].not_before": datetime.datetime(2998, 12, 31, 22, tzinfo=datetime.UTC)},
    {"keys.signing[0].not_after": 946684800},
    {"keys.signing[0].not_before": "946684800", "keys.signing[0].not_after": "32503680000"},
    {"banks[0].issuer": "http://localhost:9000"},
    {"banks[0].client_auth": "client_secret_post"},
    {"banks[1].client_auth": "tls_client_auth", "banks[1].private_key": DELETE},
    {"banks[1].private_key": "keys/signing.jwk"},
    {
        "clients[0].redirect_uris": [
            "http://127.0.0.1:4000/cb",
            "http://[::1]/cb",
            "http://localhost/cb",
        ]
    },
    {"clients[0].acr_values": DELETE, "clients[0].default_acr": "urn:merchant:acr:bank-b"},
    # the sector is the one https host of the redirect URIs; none is needed for bank subs
    {"clients[0].sector_identifier": DELETE,
     "clients[0].redirect_uris": ["https://app.merchant.example/cb",
                                  "https://APP.merchant.example:8443/other"]},
    {"subject": {"type": "bank"}, "clients[0].sector_identifier": DELETE,
     "clients[1].sector_identifier": DELETE},
    {"clients[0].sector_identifier": "shop-1.merchant.example"},
    {"clients[0].approve_for": ["merchant-backend"], "clients[0].native_sso": True,
     "clients[1].native_sso": True, "clients[0].share_bank_tokens": ["merchant-backend"],
     "clients[0].scopes": ["openid", "offline_access", "device_sso"]},
    {"clients[1].client_secret": DELETE, "clients[1].jwks": "PUBLIC_JWKS"},
    {**FAPI2_CLIENT, "keys.signing": [{"file": "keys/signing.jwk"}],
     "lifetimes.request_uri": 599},
    {"clients[0].client_uri": "https://shop.example/start?from=login",
     "clients[0].client_name": "Shop", "banks[0].description": "on this phone"},
    {"clients[0].client_uri": "http://127.0.0.1:8081/"},
    {"rate_limits": {}},
    {"rate_limits": None},
    {"rate_limits": {"per_client": {"token": "30"}, "per_address": {"authorize": 60}}},
    {"rate_limits": {"per_client": {"revoke": 30}, "per_address": {"revoke": 60}}},
    {"metrics": {"enabled": "false"}},
    {"metrics": {"bearer_token": "scrape-token-0123456789-0123456789"}},
    {"clients[1].client_secret": "é" * 16},  # 32 bytes of UTF-8
    {"metrics": None},
    {
        "apps": DELETE,
        "resource_servers": DELETE,
        "lifetimes": DELETE,
        "listen": DELETE,
        "store": DELETE,
    },
]


@pytest.mark.parametrize("mutations", GOOD, ids=[str(m) for m in GOOD])
def test_good_variants(setup: Setup, mutations: Mutations) -> None:
    write_jwk(setup.folder / "keys/ed25519.jwk", jwk.JWK.generate(kty="OKP", crv="Ed25519"))
    data = setup.data()
    for path, value in mutations.items():
        if value == "PUBLIC_JWKS":
            value = {"keys": [jwk.JWK.generate(kty="EC", crv="P-256").export_public(as_dict=True)]}
        mutate(data, path, value)
    setup.parse(data)


def test_rate_limits(setup: Setup) -> None:
    assert setup.parse(setup.data()).rate_limits is None  # left out: no limits
    data = setup.data()
    mutate(data, "rate_limits", {
        "window": 30, "per_client": {"token": 30, "introspect": 600},
        "per_address": {"authorize": 60, "par": 20}, "trust_forwarded_for": True,
    })  # fmt: skip
    assert setup.parse(data).rate_limits == RateLimits(
        window=30,
        per_client={"token": 30, "introspect": 600},
        per_address={"authorize": 60, "par": 20},
        trust_forwarded_for=True,
    )
    mutate(data, "rate_limits", {})
    assert setup.parse(data).rate_limits == RateLimits()


def test_metrics(setup: Setup) -> None:
    assert setup.parse(setup.data()).metrics == MetricsSettings(enabled=True, bearer_token=None)
    data = setup.data()
    mutate(data, "metrics", {"enabled": False, "bearer_token": "${METRICS_TOKEN}"})
    config = setup.parse(data, {**ENV, "METRICS_TOKEN": "scrape-" + "t" * 25})
    assert config.metrics == MetricsSettings(enabled=False, bearer_token="scrape-" + "t" * 25)


def test_every_problem_is_reported_at_once(setup: Setup) -> None:
    data = setup.data()
    mutate(data, "listen.port", "http")
    mutate(data, "banks[1].client_auth", "secret_basic")
    mutate(data, "clients[0].redirect_uris[0]", "http://evil.example/cb")
    mutate(data, "lifetimez", {})
    with pytest.raises(ConfigError) as info:
        setup.parse(data)
    errors = info.value.errors
    assert sorted(e.split(":")[0] for e in errors) == [
        "banks[1].client_auth",
        "clients[0].redirect_uris[0]",
        "lifetimez",
        "listen.port",
    ], errors
    assert "lifetimez: unknown key; did you mean 'lifetimes'?" in errors
    assert all(error in str(info.value) for error in errors)
    assert str(info.value).startswith("invalid configuration (4 problems):")


# -- ${NAME} and ${NAME:-default} -------------------------------------------------


def with_yaml(setup: Setup, replace: dict[str, str]) -> str:
    text = GOOD_YAML
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    setup.config_file.write_text(text)
    return text


def test_env_unset_is_an_error_naming_key_and_variable(setup: Setup) -> None:
    env = {k: v for k, v in ENV.items() if k != "TOKEN_ENCRYPTION_KEY"}
    errors = errors_of(lambda: load_config(setup.config_file, env))
    # reported once: no follow-on "must be 32 random bytes"
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        "keys.token_encryption: environment variable TOKEN_ENCRYPTION_KEY is not set"
    )


def test_env_defaults_and_coercion(setup: Setup) -> None:
    with_yaml(
        setup,
        {
            "{host: 0.0.0.0, port: 8443}": "{host: '${HOST:-::}', port: '${PORT:-8080}'}",
            "cluster: false": "cluster: ${CLUSTER:-false}",
            "timeout: 10": "timeout: ${BANK_TIMEOUT:-7.5}",
            "access_token: 300": "access_token: '${ACCESS_TTL}'",
        },
    )
    config = load_config(setup.config_file, {**ENV, "ACCESS_TTL": "120", "CLUSTER": ""})
    assert config.listen == Listen(host="::", port=8080)
    assert config.store.cluster is False  # empty: the default, as in the shell
    assert config.banks[0].timeout == 7.5
    assert config.lifetimes.access_token == 120

    env = {**ENV, "ACCESS_TTL": "60", "PORT": "9090", "CLUSTER": "true", "BANK_TIMEOUT": "3"}
    config = load_config(setup.config_file, env)
    assert (config.listen.port, config.store.cluster, config.banks[0].timeout) == (9090, True, 3.0)
    errors = errors_of(lambda: load_config(setup.config_file, {**env, "PORT": "http"}))
    assert errors == ["listen.port: must be an integer (got 'http')"]


def test_env_inside_longer_strings_and_lists(setup: Setup) -> None:
    with_yaml(
        setup,
        {
            "issuer: https://login.merchant.example/": "issuer: https://${LOGIN_HOST}/${TENANT:-t1}",
            "[https://app.merchant.example/auth/callback,": "['https://${APP_HOST}/cb',",
        },
    )
    env = {**ENV, "LOGIN_HOST": "login.example", "APP_HOST": "app.example"}
    config = load_config(setup.config_file, env)
    assert config.issuer == "https://login.example/t1"
    assert config.clients[0].redirect_uris[0] == "https://app.example/cb"

    errors = errors_of(lambda: load_config(setup.config_file, ENV))
    assert [e.split(" (set it")[0] for e in errors] == [
        "issuer: environment variable LOGIN_HOST is not set",
        "clients[0].redirect_uris[0]: environment variable APP_HOST is not set",
    ]


def test_short_secrets_are_refused_with_their_key_paths(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Secrets that callers present (client and resource-server client_secret, the metrics
    bearer token) have at least 32 bytes (RFC 7518 §3.2: 256 bits for an HS256 key; RFC
    6749 §10.10: guessing at most 2^-128): check-config lists each short one with its
    key path, and never the secret. A bank's client_secret is the bank's to choose."""
    short = "s" * 31
    with_yaml(setup, {
        SECRET_LINE: "client_secret: ${BACKEND_SECRET}",
        "receive_bank_token: true": "receive_bank_token: true\nmetrics: {bearer_token: "
                                    "${METRICS_TOKEN}}",
    })  # fmt: skip
    env = {**ENV, "BANK_A_SECRET": "b", "BACKEND_SECRET": short, "METRICS_TOKEN": "m" * 20,
           "PAYMENTS_API_SECRET": "naïve-" + "p" * 24}  # 31 bytes in UTF-8, 30 characters
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config", str(setup.config_file)]) == 2
    errors = [line.strip() for line in capsys.readouterr().err.splitlines()[1:]]
    assert [e.split(":")[0] for e in errors] == [
        "clients[1].client_secret", "resource_servers[0].client_secret", "metrics.bearer_token",
    ], errors  # fmt: skip
    for error in errors:
        assert "shorter than 32 bytes" in error and "secrets.token_urlsafe(32)" in error
        assert short not in error and "m" * 20 not in error and "naïve" not in error
    # a byte more each, and they pass
    for name, value in (("BACKEND_SECRET", short + "s"), ("METRICS_TOKEN", "m" * 32),
                        ("PAYMENTS_API_SECRET", "naïve-" + "p" * 25)):  # fmt: skip
        monkeypatch.setenv(name, value)
    assert main(["check-config", str(setup.config_file)]) == 0


def test_env_values_are_not_parsed_as_yaml(setup: Setup) -> None:
    tricky = "a: b # not a comment {[,]} ${NOT_EXPANDED}"
    with_yaml(setup, {SECRET_LINE: "client_secret: ${BACKEND_SECRET}"})
    config = load_config(setup.config_file, {**ENV, "BACKEND_SECRET": tricky})
    assert config.clients[1].client_secret == tricky  # substituted once, never re-read


def test_env_escape_and_malformed(setup: Setup) -> None:
    with_yaml(setup, {SECRET_LINE: "client_secret: p$${x}$$" + "s" * 30})
    assert load_config(setup.config_file, ENV).clients[1].client_secret == "p${x}$$" + "s" * 30
    for bad in ("${1X}", "${X", "${X:default}"):
        with_yaml(setup, {SECRET_LINE: f"client_secret: '{bad}'"})
        errors = errors_of(lambda: load_config(setup.config_file, ENV))
        assert len(errors) == 1 and errors[0].startswith("clients[1].client_secret: malformed"), (
            errors
        )


# -- files: the config itself and its keys ---------------------------------------


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    errors = errors_of(lambda: load_config(path, ENV))
    assert len(errors) == 1 and str(path) in errors[0] and "No such file" in errors[0]


def test_yaml_syntax_error_has_the_line(setup: Setup) -> None:
    setup.config_file.write_text("issuer: https://x.example\nlisten: {host: a\nstore: [\n")
    errors = errors_of(lambda: load_config(setup.config_file, ENV))
    assert len(errors) == 1 and re.search(r"invalid YAML at line \d+, column \d+", errors[0]), (
        errors
    )
    assert str(setup.config_file) in errors[0]


def test_env_unquoted_inside_flow_collections(setup: Setup) -> None:
    # DESIGN.md writes `subject: {type: pairwise, salt: ${SUBJECT_SALT}}`: in a flow
    # mapping the `{` of an unquoted ${...} is YAML syntax, so references are kept
    # out of the parser's way and put back in the parsed strings
    with_yaml(
        setup,
        {
            'salt: "${SUBJECT_SALT}"}': "salt: ${SUBJECT_SALT}}",
            "port: 8443}": "port: ${PORT:-8443}}",
            "[openid, profile]": "[openid, '${EXTRA_SCOPE:-profile}', x-${SCOPE:-y}]",
        },
    )
    config = load_config(setup.config_file, {**ENV, "SCOPE": "a: b, [c]"})
    assert config.subject.salt == ENV["SUBJECT_SALT"] and config.listen.port == 8443
    assert config.banks[0].scopes == ("openid", "profile", "x-a: b, [c]")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", "config: the file is empty"), ("[1]\n", "config: must be a mapping")],
)
def test_empty_or_not_a_mapping(setup: Setup, text: str, expected: str) -> None:
    setup.config_file.write_text(text)
    errors = errors_of(lambda: load_config(setup.config_file, ENV))
    assert errors[0].startswith(expected), errors


def test_relative_paths_follow_the_config_folder(setup: Setup, tmp_path: Path) -> None:
    # parse_config: relative to base_dir; absolute paths are kept
    data = setup.data()
    mutate(data, "keys.signing[1].file", str(setup.folder / "keys/old.pem"))
    config = parse_config(data, setup.folder, ENV)
    assert config.banks[1].tls == TlsSettings(
        cert=str((setup.folder / "tls/client.crt").resolve()),
        key=str((setup.folder / "tls/client.key").resolve()),
    )
    errors = errors_of(lambda: parse_config(data, tmp_path, ENV))
    missing = str((tmp_path / "keys/signing.jwk").resolve())
    assert any(e.startswith("keys.signing[0].file: cannot read " + missing) for e in errors), errors


@pytest.mark.parametrize("form", ["jwk-with-kid", "jwk-without-kid", "pem"])
@pytest.mark.parametrize(
    ("kty", "params", "alg"),
    [
        ("EC", {"crv": "P-256"}, "ES256"),
        ("OKP", {"crv": "Ed25519"}, "EdDSA"),
        ("RSA", {"size": 2048}, "RS256"),
    ],
)
def test_signing_key_forms(
    setup: Setup, form: str, kty: str, params: dict[str, Any], alg: str
) -> None:
    key = jwk.JWK.generate(kty=kty, **params)
    path = setup.folder / "keys/k"
    if form == "pem":
        write_pem(path, key)
    else:
        if form == "jwk-with-kid":
            key["kid"] = "my-kid"
        write_jwk(path, key)
    data = setup.data()
    mutate(data, "keys.signing", [{"file": "keys/k"}])
    (entry,) = setup.parse(data).keys.signing
    loaded = entry.key
    assert loaded.has_private and loaded.get("kty") == kty and loaded.get("alg") == alg
    expected_kid = "my-kid" if form == "jwk-with-kid" else key.thumbprint()
    assert loaded.get("kid") == expected_kid
    assert loaded.thumbprint() == key.thumbprint()



def test_signing_key_schedule(setup: Setup) -> None:
    """``not_before``/``not_after``: an unquoted YAML timestamp, a quoted one with an
    offset, unix seconds from the environment; kept as whole unix seconds."""
    with_yaml(setup, {
        "    - file: keys/signing.jwk\n":
            "    - file: keys/signing.jwk\n      not_before: ${SIGNING_FROM}\n"
            "      not_after: 2999-01-01T00:00:00Z\n",
        "    - file: keys/old.pem\n":
            "    - file: keys/old.pem\n      not_before: \"2998-12-31T23:00:00.5-01:00\"\n",
    })
    config = load_config(setup.config_file, {**ENV, "SIGNING_FROM": "946684800"})
    first, second = config.keys.signing
    y2999 = int(datetime.datetime(2999, 1, 1, tzinfo=datetime.UTC).timestamp())
    assert (first.file, first.not_before, first.not_after) == ("keys/signing.jwk", 946684800, y2999)
    assert (second.file, second.not_before, second.not_after) == ("keys/old.pem", y2999, None)


def test_token_encryption_keys_as_a_list(setup: Setup) -> None:
    """keys.token_encryption: [new, old]: the first encrypts, the others only decrypt;
    each key's id is its RFC 7638 thumbprint, the kid of the values it seals."""
    old = secrets.token_bytes(32)
    data = setup.data()
    data["keys"]["token_encryption"] = [
        "${TOKEN_ENCRYPTION_KEY}", base64.urlsafe_b64encode(old).decode()]
    extra_files(setup.folder)
    config = setup.parse(data)
    assert (config.keys.token_encryption, config.keys.token_decryption) == (TOKEN_KEY, (old,))
    assert config.keys.token_keys == (TOKEN_KEY, old)
    as_jwk = jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(old).rstrip(b"=").decode())
    assert token_key_id(old) == as_jwk.thumbprint()


# -- store.url: Redis Sentinel with TLS and the sentinels' own credentials ----------

SENTINEL_BAD = [
    ("redis+sentinel://s1:26379/mymaster?ssl_ca_certs={dir}/client.crt",
     "store.url: option 'ssl_ca_certs' needs TLS: use rediss+sentinel://"),
    ("rediss+sentinel://s1/mymaster?sentinel_pasword=hunter2",
     "store.url: unknown option 'sentinel_pasword' (known: sentinel_username, "
     "sentinel_password, ssl_ca_certs"),
    ("rediss+sentinel://s1/mymaster?sentinel_password=hunter2&sentinel_password=x",
     "store.url: option 'sentinel_password' is given 2 times"),
    ("rediss+sentinel://s1/mymaster?sentinel_password=",
     "store.url: option 'sentinel_password' is empty"),
    ("rediss+sentinel://s1/mymaster?ssl_ca_certs=tls/client.crt",
     "store.url: option 'ssl_ca_certs' must be an absolute path (got 'tls/client.crt')"),
    ("rediss+sentinel://s1/mymaster?ssl_ca_certs={dir}/missing.pem",
     "store.url: ssl_ca_certs: cannot read {dir}/missing.pem"),
    ("rediss+sentinel://s1/mymaster?ssl_ca_certs={dir}/client.key",
     "store.url: ssl_ca_certs: {dir}/client.key does not hold a PEM certificate"),
    ("rediss+sentinel://s1/mymaster?ssl_certfile={dir}/client.crt",
     "store.url: options 'ssl_certfile' and 'ssl_keyfile' go together"),
    ("rediss+sentinel://s1/mymaster?ssl_check_hostname=maybe",
     "store.url: option 'ssl_check_hostname' must be true or false (got 'maybe')"),
    ("redis+sentinel://:hunter2@s1:99999/mymaster",
     "store.url: 's1:99999' is not a sentinel's host[:port]"),
    ("redis+sentinel://s1/mymaster/zero",
     "store.url: expected redis+sentinel://host:port[,host:port]/service_name[/db]"),
    ("rediss+sentinel://s1", "store.url: expected rediss+sentinel://host:port"),
]


@pytest.mark.parametrize(("url", "expected"), SENTINEL_BAD, ids=[e for _, e in SENTINEL_BAD])
def test_bad_sentinel_url(setup: Setup, tmp_path: Path, url: str, expected: str) -> None:
    tls = tmp_path / "tls"
    write_tls(tls)
    data = setup.data()
    data["store"]["url"] = url.format(dir=tls)
    errors = errors_of(lambda: setup.parse(data))
    assert any(expected.format(dir=tls) in error for error in errors), errors
    assert all("hunter2" not in error for error in errors), errors


def test_good_sentinel_urls(setup: Setup, tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    write_tls(tls)
    for url in (
        "rediss+sentinel://s1:26379,[::1]/mymaster",
        "redis+sentinel://:pw@s1/mymaster/2?sentinel_password=s%26pw",
        f"rediss+sentinel://u:pw@s1,s2:26380/mymaster?sentinel_username=watch&"
        f"sentinel_password=spw&ssl_ca_certs={tls}/client.crt&ssl_certfile={tls}/client.crt&"
        f"ssl_keyfile={tls}/client.key&ssl_check_hostname=false",
    ):
        data = setup.data()
        data["store"]["url"] = url
        assert setup.parse(data).store.url == url
