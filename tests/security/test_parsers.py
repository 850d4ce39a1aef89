"""Property tests of the parsers and validators that read untrusted input, called
directly (no server).

For each: a property that states the rule, and one that only the expected error
type ever comes out (OAuthError, or the config error list). Where a property once
found a defect, a small test keeps the failing examples.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import re
import string
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import quote, quote_plus

import pytest
import yaml
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from jwcrypto import jwk
from multidict import MultiDict

from federation.oidc_params import positive_int, usable_deep_link
from proxy.config import ConfigError, load_config
from proxy.config.env import UNRESOLVED, Protected, substitute
from proxy.config.errors import Problems
from proxy.config.settings import ClientSettings, Subject
from proxy.oauth.authorize_checks import (
    check_dpop_jkt,
    check_native_callback_uri,
    check_pkce,
    check_scope,
    redirect_uri_matches,
)
from proxy.oauth.client_assertion import JWT_BEARER, asserted_client_id, verify_assertion
from proxy.oauth.clients import BasicCredentials, basic_credentials
from proxy.oauth.errors import OAuthError
from proxy.oauth.grants import _check_pkce
from proxy.oauth.par import REQUEST_URI_PREFIX, push, resolve
from proxy.oauth.services import Services
from proxy.oauth.subject import merchant_subject
from proxy.ops.keys import generate_signing_key
from proxy.store.memory import MemoryStore
from proxy.web.forms import single_values

LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z
FAST = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

B64URL = string.ascii_letters + string.digits + "-_"
UNRESERVED = string.ascii_letters + string.digits + "-._~"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("utf-8", "surrogatepass")).digest())


def oauth_error(call: Any, *args: Any) -> OAuthError | None:
    """The OAuthError ``call`` raised, None if it returned; anything else propagates."""
    try:
        call(*args)
    except OAuthError as err:
        return err
    return None


def client(**overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "client_id": "app", "type": "public",
        "redirect_uris": ("https://app.example/cb",),
        "scopes": ("openid", "profile", "offline_access"),
        "native_callback_uris": ("https://app.example/app2app",),
    }
    values.update(overrides)
    return ClientSettings(**values)


# -- proxy.web.forms.single_values ------------------------------------------------------

keys = st.sampled_from(["client_id", "scope", "a", ""]) | st.text(max_size=6)
values = st.sampled_from(["", "x", " "]) | st.text(max_size=6)


@FAST
@given(st.lists(st.tuples(keys, values), max_size=8))
def test_single_values_refuses_repeats_and_drops_empty_values(pairs: list[tuple[str, str]]) -> None:
    """RFC 6749 §3.1: parameters "MUST NOT be included more than once"; one "sent without
    a value MUST be treated as if [it] were omitted"."""
    names = [name for name, _ in pairs]
    for params in (MultiDict(pairs).items(), pairs):  # a query's, a form's parsed pairs
        err = oauth_error(single_values, params)
        if len(set(names)) < len(names):
            assert err is not None and (err.error, err.status) == ("invalid_request", 400)
        else:
            assert err is None
            assert single_values(params) == {k: v for k, v in pairs if v != ""}


# -- proxy.oauth.authorize_checks: redirect_uri_matches ---------------------------------

LOOPBACK_HOSTS = ["127.0.0.1", "[::1]", "127.0.0.2"]
OTHER_HOSTS = ["localhost", "evil.example", "127.0.0.1.evil.example", "128.0.0.1",
               "[::2]", "127.0.0.%31", "0x7f.0.0.1", "127.1"]
PATHS = ["/cb", "/", "/a/b", "/cb/"]
QUERIES = ["", "?x=1"]


@st.composite
def loopback_uri(draw: st.DrawFn) -> tuple[str, str, str]:
    """(registered, host part, rest): http://host[:port]rest."""
    host = draw(st.sampled_from(LOOPBACK_HOSTS))
    port = draw(st.sampled_from(["", ":8080", ":1"]))
    rest = draw(st.sampled_from(PATHS)) + draw(st.sampled_from(QUERIES))
    return f"http://{host}{port}{rest}", host, rest


def _flip_case(text: str) -> str:
    return text.swapcase() if text.swapcase() != text else text + "X"


@st.composite
def mutated(draw: st.DrawFn, registered: str, host: str, rest: str) -> str:
    """A redirect_uri an attacker might try against ``registered``."""
    kind = draw(st.sampled_from([
        "same", "port", "host", "path", "case", "percent", "prefix", "suffix", "scheme",
        "no-port", "path-prefix",
    ]))
    port = draw(st.integers(0, 65535))
    if kind == "same":
        return registered
    if kind == "port":
        return f"http://{host}:{port}{rest}"
    if kind == "no-port":
        return f"http://{host}{rest}"
    if kind == "host":
        return f"http://{draw(st.sampled_from(OTHER_HOSTS))}:{port}{rest}"
    if kind == "path":  # (never glued to the port: a junk port is pinned further down)
        tail = draw(st.sampled_from(["x", "/", "/..", "%20"]))
        return f"http://{host}:{port}{rest or '/'}{tail}"
    if kind == "path-prefix":
        return f"http://{host}:{port}/evil{rest}"
    if kind == "case":
        return f"http://{host}:{port}{_flip_case(rest or '/')}"
    if kind == "percent":
        encoded = "".join(f"%{ord(c):02X}" if c.isalpha() else c for c in rest) or "%2F"
        return f"http://{host}:{port}{encoded if encoded != rest else rest + '%2F'}"
    if kind == "prefix":
        # (leading whitespace is pinned further down)
        return draw(st.sampled_from(["x", "https://evil.example/?", "//", "."])) + registered
    if kind == "suffix":
        return registered + draw(st.sampled_from(["x", "/", "%2F", " ", ".evil.example"]))
    return f"https://{host}:{port}{rest}"  # scheme


def loopback_rule(registered: str, host: str, rest: str, given: str) -> bool:
    """The rule, stated independently: the exact string, or (RFC 8252 §7.3) the same
    http loopback URI with any port written in (1 to 65535: port 0 names no port)."""
    if given == registered:
        return True
    found = re.fullmatch(r"http://" + re.escape(host) + r":([0-9]{1,5})" + re.escape(rest),
                         given)
    return found is not None and 0 < int(found.group(1)) <= 65535


@FAST
@given(st.data())
def test_loopback_redirect_uri_matches_only_with_another_port(data: st.DataObject) -> None:
    registered, host, rest = data.draw(loopback_uri())
    given = data.draw(mutated(registered, host, rest))
    assert redirect_uri_matches(registered, given) == loopback_rule(
        registered, host, rest, given
    ), given


REGISTERED = ["https://app.example/cb", "https://app.example/cb?x=1",
              "com.example.app:/oauth2redirect", "http://app.example/cb",
              "http://localhost/cb", "http://localhost:3000/cb"]


@FAST
@given(st.sampled_from(REGISTERED), st.data())
def test_other_redirect_uris_match_only_exactly(registered: str, data: st.DataObject) -> None:
    """RFC 9700 §4.1.3: exact string matching; the loopback exception is for IP
    literals only (RFC 8252 §8.3: "localhost" is NOT RECOMMENDED)."""
    given = data.draw(
        st.sampled_from([registered, registered + "/", registered.upper(), registered + "#f",
                         registered.replace("/cb", "/cb/../cb"),
                         registered.replace("app.example", "app.example:443"),
                         registered.replace("localhost", "localhost:4000"),
                         registered.replace("://", "://evil@")])
        | st.text(alphabet=string.printable.replace("[", "")),
    )
    assert redirect_uri_matches(registered, given) == (given == registered)


@settings(SOME, report_multiple_bugs=False)
@given(st.sampled_from(["https://app.example/cb", "http://127.0.0.1/cb"]), st.text())
@example("https://app.example/cb", "http://[")
@example("https://app.example/cb", "https://[::1/cb")
@example("http://127.0.0.1/cb", "http://127.0.0.1:99999/cb")
@example("http://127.0.0.1/cb", "http://127.0.0.1:8080\\evil/cb")
def test_redirect_uri_matches_never_raises(registered: str, given: str) -> None:
    assert redirect_uri_matches(registered, given) in (True, False)


@pytest.mark.parametrize("given", [
    "http://evil@127.0.0.1:8080/cb",       # userinfo
    "http://127.0.0.1:8080/cb#fragment",   # RFC 6749 §3.1.2: "MUST NOT include a fragment"
    "http://127.0.0.1:8080/cb?",           # not the registered string plus a port
    " http://127.0.0.1:8080/cb",           # urlsplit strips leading C0 controls and space
    "http://127.0.0.1:8080/c\tb",          # ... and removes tab, CR, LF anywhere: a LF
    "http://127.0.0.1:8080/c\nb",          # then drops the connection (Location refused)
])
def test_loopback_rule_changes_nothing_but_the_port(given: str) -> None:
    assert not redirect_uri_matches("http://127.0.0.1/cb", given)


# -- authorize_checks: check_pkce, check_scope, check_native_callback_uri, check_dpop_jkt

challenges = (st.text(alphabet=B64URL, min_size=41, max_size=45)
              | st.text(alphabet=B64URL + "=+/. \t", min_size=43, max_size=44)
              | st.text(max_size=50))


@FAST
@given(challenges, st.sampled_from(["S256", "plain", "s256", "", None]), st.booleans())
def test_check_pkce_requires_s256_and_a_sha256_sized_challenge(
    challenge: str, method: str | None, present: bool
) -> None:
    """PKCE S256 is required (RFC 9700 §2.1.1); the challenge is BASE64URL(SHA256(...)),
    43 characters (RFC 7636 §4.2)."""
    assume(not challenge.endswith("\n"))  # pinned below
    params: dict[str, str] = {"code_challenge": challenge} if present else {}
    if method is not None:
        params["code_challenge_method"] = method
    err = oauth_error(check_pkce, client(), params)
    valid = present and method == "S256" and re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge)
    assert (err is None) == bool(valid)
    assert err is None or err.error == "invalid_request"


def test_check_pkce_refuses_a_trailing_newline() -> None:
    params = {"code_challenge": "a" * 43 + "\n", "code_challenge_method": "S256"}
    assert oauth_error(check_pkce, client(), params) is not None


scope_tokens = st.sampled_from(["openid", "profile", "offline_access", "payments", "OPENID",
                                "openid2", ""])


@FAST
@given(st.lists(scope_tokens, max_size=5), st.sampled_from([" ", "  "]))
def test_check_scope_allows_openid_and_registered_scopes_only(
    tokens: list[str], separator: str
) -> None:
    registered = client()
    err = oauth_error(check_scope, registered, {"scope": separator.join(tokens)})
    words = [t for t in tokens if t]
    allowed = "openid" in words and set(words) <= set(registered.scopes)
    assert (err is None) == allowed
    assert err is None or err.error == "invalid_scope"


@FAST
@given(st.text())
def test_check_scope_never_grants_an_unregistered_scope(scope: str) -> None:
    """Whatever the text, an accepted scope names openid and registered scopes only."""
    registered = client()
    if oauth_error(check_scope, registered, {"scope": scope}) is None:
        assert "openid" in scope.split()
        assert set(scope.split()) <= set(registered.scopes)


NATIVE = "https://app.example/app2app"


@FAST
@given(st.sampled_from([NATIVE, NATIVE + "/", NATIVE.upper(), NATIVE + "?x", "x" + NATIVE,
                        NATIVE.replace("https", "http"), NATIVE + "#", NATIVE[:-1]])
       | st.text())
def test_native_callback_uri_must_be_registered_exactly(given: str) -> None:
    """draft-zehavi-oauth-app2app-browserless §3.4 / §5.2: exact match, or any app could
    be handed the bank's answer."""
    err = oauth_error(check_native_callback_uri, client(), {"native_callback_uri": given})
    assert (err is None) == (given == NATIVE)
    assert err is None or err.error == "invalid_request"
    missing = oauth_error(check_native_callback_uri, client(), {})
    assert missing is not None and missing.error == "invalid_request"


@FAST
@given(st.text(alphabet=B64URL, min_size=42, max_size=44) | st.text(max_size=50))
@example("a" * 43 + "\n")
def test_dpop_jkt_is_a_sha256_thumbprint(jkt: str) -> None:
    """RFC 9449 §10: the JWK SHA-256 thumbprint, 43 base64url characters."""
    err = oauth_error(check_dpop_jkt, client(), {"dpop_jkt": jkt})
    assert (err is None) == bool(re.fullmatch(r"[A-Za-z0-9_-]{43}", jkt))


# -- proxy.oauth.grants._check_pkce (token endpoint) ------------------------------------

verifiers = st.text(alphabet=UNRESERVED, min_size=43, max_size=128)


@FAST
@given(verifiers, st.text(max_size=130))
def test_code_verifier_matches_only_its_own_challenge(verifier: str, other: str) -> None:
    """RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge, else
    invalid_grant."""
    _check_pkce(verifier, s256(verifier))
    if other != verifier:
        err = oauth_error(_check_pkce, other, s256(verifier))
        assert err is not None and err.error in ("invalid_grant", "invalid_request")


@FAST
@given(st.one_of(st.none(), st.text(max_size=140),
                 st.text(alphabet=UNRESERVED + " \n%+é", min_size=40, max_size=130)))
@example("a" * 43 + "\n")
@example("a" * 42)
@example("a" * 129)
def test_code_verifier_follows_the_rfc_7636_abnf(verifier: str | None) -> None:
    """RFC 7636 §4.1: code-verifier = 43*128unreserved; missing is invalid_request, a
    malformed one invalid_grant, even against its own hash."""
    challenge = s256(verifier or "")
    err = oauth_error(_check_pkce, verifier, challenge)
    if not verifier:
        assert err is not None and err.error == "invalid_request"
    elif re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier):
        assert err is None
    else:
        assert err is not None and err.error == "invalid_grant"


# -- proxy.config.env: ${NAME} and ${NAME:-default} -------------------------------------

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
env_values = st.sampled_from(["", "${B}", "$${", "${", "x}"]) | st.text(max_size=8)
literals = st.text(alphabet=st.characters(blacklist_characters="$", codec="utf-8"), max_size=6)
defaults = st.text(alphabet=st.characters(blacklist_characters="}", codec="utf-8"), max_size=6)


@st.composite
def template(draw: st.DrawFn) -> tuple[list[tuple[str, str, str | None]], str]:
    """Segments (kind, name or text, default) and the text they make."""
    segments: list[tuple[str, str, str | None]] = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["literal", "ref", "default", "escape"]))
        if kind == "literal":
            segments.append((kind, draw(literals), None))
        elif kind == "escape":
            segments.append((kind, "", None))
        else:
            segments.append((kind, draw(names), draw(defaults) if kind == "default" else None))
    text = "".join(
        text if kind == "literal" else "$${" if kind == "escape"
        else "${" + text + (f":-{default}" if kind == "default" else "") + "}"
        for kind, text, default in segments
    )
    return segments, text


@FAST
@given(template(), st.dictionaries(names, env_values, max_size=4))
def test_substitution_follows_the_shell_rules_once(
    built: tuple[list[tuple[str, str, str | None]], str], environ: dict[str, str]
) -> None:
    """${NAME} is NAME's value; ${NAME:-default} the default when NAME is unset or empty;
    $${ is a literal ${; a value that holds ${...} is used as it is (never substituted
    again); an unset NAME without default is a problem and the value UNRESOLVED."""
    segments, text = built
    expected: list[str] = []
    unresolved = False
    for kind, name, default in segments:
        if kind == "literal":
            expected.append(name)
        elif kind == "escape":
            expected.append("${")
        elif kind == "default":
            expected.append(environ.get(name) or (default or ""))
        elif name in environ:
            expected.append(environ[name])
        else:
            unresolved = True
    problems = Problems()
    result = substitute({"key": [text]}, environ, problems)
    assert isinstance(result, dict)
    if unresolved:
        assert result["key"][0] is UNRESOLVED
        assert problems.errors and all(e.startswith("key[0]: ") for e in problems.errors)
    else:
        assert result == {"key": ["".join(expected)]}
        assert problems.errors == []


@FAST
@given(st.text(), st.dictionaries(names, env_values, max_size=3))
@example("${", {})
@example("${}", {})
@example("${A:-${B}}", {"B": "x"})
@example("$$${A}", {"A": "v"})
def test_substitution_never_raises(text: str, environ: dict[str, str]) -> None:
    problems = Problems()
    result = substitute(text, environ, problems)
    assert result is UNRESOLVED or isinstance(result, str)
    assert (result is UNRESOLVED) == bool(problems.errors)
    if "$" not in text:
        assert result == text


@FAST
@given(st.text())
def test_protected_text_comes_back_unchanged(text: str) -> None:
    """The references swapped out before YAML parsing are all put back."""
    protected = Protected(text)
    assert protected.restore(protected.text) == text
    assert "${" not in protected.text or "${" in text


_CONFIG_DIR = Path(tempfile.mkdtemp(prefix="a2a-parsers-"))
(_CONFIG_DIR / "signing.jwk").write_text(generate_signing_key("ES256").export(private_key=True))
_BASE_CONFIG: dict[str, Any] = {
    "issuer": "https://login.merchant.example",
    "store": {"url": "memory://"},
    "keys": {"signing": [{"file": "signing.jwk"}], "token_encryption": "${TOKEN_KEY}"},
    "subject": {"type": "pairwise", "salt": "${SALT:-pepper-pepper-pepper}"},
    "lifetimes": {"access_token": 300},
    "banks": [{"id": "bank-a", "acr_values": ["urn:merchant:acr:bank-a"], "kind": "oidc",
               "issuer": "https://auth.bank-a.example", "client_id": "merchant",
               "client_auth": "client_secret_basic", "client_secret": "${BANK_SECRET:-s}"}],
    "clients": [{"client_id": "app", "type": "public",
                 "redirect_uris": ["https://app.example/cb"], "scopes": ["openid"]}],
}
_ENV = {"TOKEN_KEY": b64url(b"k" * 32)}

yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.sampled_from(["${TOKEN_KEY}", "${NOPE}", "${X:-1}", "$${", "${", "memory://",
                       "https://x.example", "-1", "0"]) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _load(text: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=_CONFIG_DIR, delete=False,
                                     encoding="utf-8") as file:
        file.write(text)
    try:
        load_config(file.name, _ENV)
    finally:
        Path(file.name).unlink()


def test_the_base_config_loads() -> None:
    _load(yaml.safe_dump(_BASE_CONFIG))


@SOME
@given(st.data())
def test_config_problems_are_config_errors(data: st.DataObject) -> None:
    """Any value anywhere in config.yaml: the config loads or every problem is listed in
    one ConfigError; nothing else escapes (not a TypeError from a reader)."""
    config = json.loads(json.dumps(_BASE_CONFIG))
    path = data.draw(st.sampled_from(_paths(config)[1:]), label="path")
    target = config
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = data.draw(yaml_values, label="value")
    try:
        _load(yaml.safe_dump(config))
    except ConfigError as err:
        assert err.errors


@SOME
@given(st.text(max_size=200))
@example("issuer: [")
@example("${TOKEN_KEY}: 1")
@example("issuer: ${NOPE}\n")
def test_config_text_problems_are_config_errors(text: str) -> None:
    assume("&x [b, *x]" not in text)
    try:
        _load(text)
    except ConfigError as err:
        assert err.errors


def test_a_recursive_yaml_alias_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        _load("a: &x [b, *x]\n")


# -- proxy.oauth.clients.basic_credentials ----------------------------------------------


def _credentials(header: str) -> BasicCredentials | None:
    return basic_credentials(make_mocked_request("POST", "/token",
                                                 headers={"Authorization": header}))


@FAST
@given(st.text(), st.text(), st.sampled_from(["Basic", "basic", "BASIC"]))
def test_basic_credentials_are_form_urlencoded(client_id: str, secret: str, scheme: str) -> None:
    """RFC 6749 §2.3.1: id and secret are each form-urlencoded, then joined by ':' and
    base64-encoded; decoding gives them back exactly (':' or '+' in them included)."""
    token = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()
    assert _credentials(f"{scheme} {token}") == BasicCredentials(client_id, secret)


@FAST
@given(st.text(alphabet=string.printable, max_size=40))
@example("Basic")
@example("Basic ")
@example("Basic Og==")        # ":" -> empty id and secret
@example("Basic YQ==")        # "a": no ":"
@example("Basic /w==")        # not UTF-8
@example("Basic YTpi\n")
@example("Bearer abc")
def test_basic_header_is_credentials_none_or_invalid_client(header: str) -> None:
    """Any (ASCII) header: Basic credentials, None for another scheme, or a 401
    invalid_client with a Basic challenge (RFC 6749 §5.2)."""
    try:
        found = _credentials(header)
    except OAuthError as err:
        assert (err.error, err.status) == ("invalid_client", 401)
        assert err.headers["WWW-Authenticate"].startswith("Basic ")
        assert header.partition(" ")[0].lower() == "basic"
        return
    if header.partition(" ")[0].lower() != "basic":
        assert found is None
    else:
        assert isinstance(found, BasicCredentials)


@pytest.mark.parametrize("header", ["Basic é", "Basic \uff21\uff21\uff21\uff21", "Basic YTp\u0131"])
def test_non_ascii_basic_header_is_invalid_client(header: str) -> None:
    assert oauth_error(_credentials, header) is not None


# -- proxy.oauth.client_assertion -------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=5,
)
headers = st.fixed_dictionaries(
    {}, optional={"alg": st.sampled_from(["ES256", "RS256", "none", "HS256", "EdDSA"])
                  | json_values, "kid": json_values, "typ": json_values, "crit": json_values},
)
payloads = st.fixed_dictionaries(
    {}, optional={"iss": st.sampled_from(["app", "other"]) | json_values, "sub": json_values,
                  "aud": json_values, "exp": json_values, "jti": json_values},
) | json_values


@st.composite
def assertions(draw: st.DrawFn) -> str:
    """Arbitrary text, or JWT-shaped text with arbitrary JSON in header and payload."""
    if draw(st.booleans()):
        return draw(st.text(max_size=60))
    parts = [b64url(json.dumps(draw(headers)).encode()),
             b64url(json.dumps(draw(payloads)).encode()),
             draw(st.text(alphabet=B64URL, max_size=20))]
    return ".".join(parts)


@FAST
@given(assertions(), st.sampled_from([JWT_BEARER, "jwt", None]),
       st.sampled_from([None, "app", "other"]))
def test_asserted_client_id_is_the_iss_or_an_oauth_error(
    assertion: str, kind: str | None, client_id: str | None
) -> None:
    form = {"client_assertion": assertion}
    if kind is not None:
        form["client_assertion_type"] = kind
    if client_id is not None:
        form["client_id"] = client_id
    try:
        issuer = asserted_client_id(form)
    except OAuthError as err:
        assert err.error in ("invalid_client", "invalid_request")
        return
    assert kind == JWT_BEARER
    segment = assertion.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert claims["iss"] == issuer and isinstance(issuer, str)
    assert client_id in (None, issuer)


_ASSERTING_KEY = jwk.JWK.generate(kty="EC", crv="P-256", kid="k1")
_ASSERTING = SimpleNamespace(
    client_id="app",
    jwks={"keys": [_ASSERTING_KEY.export(private_key=False, as_dict=True)]},
)


@SOME
@given(assertions())
@example("")
@example("a.b.c")
def test_an_unsigned_or_malformed_assertion_is_invalid_client(assertion: str) -> None:
    """private_key_jwt (RFC 7523 §3): without a signature of the client's key, any text is
    refused as invalid_client, and nothing is remembered."""
    store = MemoryStore()

    async def verify() -> None:
        await verify_assertion(_ASSERTING, assertion, ["https://as.example"], store,
                               int(time.time()))

    try:
        asyncio.run(verify())
    except OAuthError as err:
        assert (err.error, err.status) == ("invalid_client", 401)
    else:
        pytest.fail("an assertion without a valid signature was accepted")
    assert len(store) == 0


# -- federation.oidc_params -------------------------------------------------------------


@FAST
@given(st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.text(max_size=8),
                 st.from_regex(r"[0-9]{1,12}", fullmatch=True),
                 st.sampled_from(["٣", "²", "1.0", " 1", "+1", "0", "00", "1e3"]),
                 st.lists(st.integers(), max_size=2)))
@example("9" * 5000)  # int() refuses more than 4300 digits
@example(10**400)
@example(float("inf"))
def test_positive_int_takes_positive_whole_numbers_only(value: Any) -> None:
    """A positive integer up to the year 9999 in seconds, from a JSON number or an ASCII
    digit string; None otherwise."""
    if isinstance(value, bool):
        expected = None
    elif isinstance(value, int):
        expected = value if 0 < value <= LAST_SECOND else None
    elif isinstance(value, float):
        expected = int(value) if value.is_integer() and 0 < value <= LAST_SECOND else None
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value):
        expected = int(value) if 0 < int(value) <= LAST_SECOND else None
    else:
        expected = None
    assert positive_int(value) == expected


DEEP_LINK_PIECES = ["https://", "http://", "HTTPS://", "intent://", "javascript:", "bankapp://",
                    "//", "bank.example", "localhost", "127.0.0.1", "[::1]", "evil.example",
                    "@", ":", ":443", "/", "\\", "#", "?", "%40", "%2F", ".", " ", "\t", "\n",
                    "\x00", "user:pw@", "localhost.evil.example", "0x7f000001", "[::ffff:7f00:1]",
                    "[", "]"]


def browser_view(url: str) -> tuple[str, str | None, bool]:
    """(scheme, host, has userinfo) as a WHATWG browser reads an http(s) URL: '\\' ends
    the authority like '/'."""
    scheme, sep, rest = url.partition(":")
    if not sep or not rest.startswith(("//", "\\\\", "/\\", "\\/")):
        return scheme.lower(), None, False
    authority = re.split(r"[/\\?#]", rest[2:], maxsplit=1)[0]
    _, at, hostport = authority.rpartition("@")
    host = hostport[1:].split("]")[0] if hostport.startswith("[") else hostport.split(":")[0]
    return scheme.lower(), host.lower() or None, bool(at)


def loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@FAST
@given(st.lists(st.sampled_from(DEEP_LINK_PIECES), min_size=1, max_size=6).map("".join)
       | st.text(max_size=40) | st.one_of(st.none(), st.integers(), st.lists(st.text())))
@example("https://bank.example@evil.example/")
@example("http://localhost\\@evil.example/")
@example("http://127.0.0.1\\.evil.example/")
@example("http://evil.example#@localhost/")
def test_deep_links_are_https_or_loopback_http(value: Any) -> None:
    """usable_deep_link: the value itself or None; what it lets through is https, or http
    to a loopback host as a browser would read it, with no userinfo, no whitespace and no
    control characters (the link is opened on the user's phone as the bank's)."""
    result = usable_deep_link(value)
    if result is None:
        return
    assert result == value and isinstance(value, str)
    scheme, host, userinfo = browser_view(value)
    assert not userinfo, value
    assert scheme == "https" or (scheme == "http" and loopback(host)), value
    assert not any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value)


# -- proxy.oauth.par.resolve: request_uri prefix and one-time use -----------------------


def fake_services() -> Services:
    return cast(Services, SimpleNamespace(
        store=MemoryStore(),
        now=lambda: int(time.time()),
        moment=lambda: round(time.time(), 3),
        config=SimpleNamespace(lifetimes=SimpleNamespace(request_uri=60)),
        clients=SimpleNamespace(get=lambda client_id: client()),  # "app": default profile
    ))


PUSHED = {"client_id": "app", "response_type": "code", "scope": "openid",
          "redirect_uri": "https://app.example/cb"}


def _resolve(svc: Services, params: dict[str, str]) -> dict[str, str] | OAuthError:
    try:
        return asyncio.run(resolve(svc, params)).params
    except OAuthError as err:
        return err


def _mutations(request_uri: str) -> list[str]:
    handle = request_uri.removeprefix(REQUEST_URI_PREFIX)
    return [
        handle, REQUEST_URI_PREFIX + request_uri, request_uri.upper(), " " + request_uri,
        request_uri + " ", request_uri + "x", request_uri[:-1], request_uri + "\n",
        REQUEST_URI_PREFIX.rstrip(":") + handle, quote(request_uri, safe=""),
        "urn:ietf:params:oauth:request-uri:" + handle, REQUEST_URI_PREFIX,
    ]


@SOME
@given(st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=4),
       st.sampled_from(["", "x"]) | st.text(max_size=40), st.sampled_from([None, "app", "x"]))
def test_resolve_refuses_request_uris_it_did_not_issue(
    extra: dict[str, str], request_uri: str, client_id: str | None
) -> None:
    """Without request_uri the request is its own parameters; any other request_uri text
    is invalid_request_uri (invalid_request without a client_id)."""
    svc = fake_services()
    plain = {k: v for k, v in extra.items() if k != "request_uri"}
    assert _resolve(svc, plain) == plain
    params = {**plain, "request_uri": request_uri}
    if client_id is None:
        params.pop("client_id", None)
    else:
        params["client_id"] = client_id
    err = _resolve(svc, params)
    assert isinstance(err, OAuthError)
    expected = "invalid_request" if "client_id" not in params else "invalid_request_uri"
    assert err.error == expected


@SOME
@given(st.lists(st.integers(0, 11), max_size=4),
       st.dictionaries(st.sampled_from(["scope", "redirect_uri", "state", "x"]),
                       st.text(max_size=5), max_size=3),
       st.sampled_from([None, "https://app.example/app2app"]))
def test_a_pushed_request_is_used_once_by_its_client_and_nothing_else_names_it(
    tries: list[int], ignored: dict[str, str], native_callback_uri: str | None
) -> None:
    """RFC 9126 §4: the request_uri names exactly the pushed parameters (anything else in
    the request is ignored, RFC 9101 §6.3), for the client that pushed it, once; a text
    that is not exactly it (prefix, case, spaces, encoding) names nothing and does not use
    it up."""
    svc = fake_services()
    request_uri = asyncio.run(push(svc, client(), PUSHED))
    assert request_uri.startswith(REQUEST_URI_PREFIX)
    mutations = _mutations(request_uri)
    for index in tries:
        err = _resolve(svc, {"client_id": "app", "request_uri": mutations[index]})
        assert isinstance(err, OAuthError) and err.error == "invalid_request_uri"
    params = {**ignored, "client_id": "app", "request_uri": request_uri}
    if native_callback_uri is not None:
        params["native_callback_uri"] = native_callback_uri
    expected = dict(PUSHED)
    if native_callback_uri is not None:
        expected["native_callback_uri"] = native_callback_uri
    assert _resolve(svc, params) == expected
    again = _resolve(svc, params)
    assert isinstance(again, OAuthError) and again.error == "invalid_request_uri"


def test_a_pushed_request_says_whether_its_client_authenticated() -> None:
    """Only a confidential client's push was authenticated (RFC 9126 §2.1); a public
    client's push, and a request sent without request_uri, were not."""
    svc = fake_services()
    for kind, authenticated in (("public", False), ("confidential", True)):
        request_uri = asyncio.run(push(svc, client(type=kind), PUSHED))
        found = asyncio.run(resolve(svc, {"client_id": "app", "request_uri": request_uri}))
        assert (found.pushed, found.authenticated) == (True, authenticated)
    sent = asyncio.run(resolve(svc, PUSHED))
    assert (sent.pushed, sent.authenticated) == (False, False)


def test_a_pushed_request_is_bound_to_its_client() -> None:
    svc = fake_services()
    request_uri = asyncio.run(push(svc, client(), PUSHED))
    err = _resolve(svc, {"client_id": "other", "request_uri": request_uri})
    assert isinstance(err, OAuthError) and err.error == "invalid_request_uri"


# -- proxy.oauth.subject.merchant_subject ----------------------------------------------

SECTORS = st.sampled_from(["app.merchant.example", "partner.example", None])


@FAST
@given(st.text(min_size=1, max_size=20), SECTORS, SECTORS, st.sampled_from(["a", "b"]))
def test_a_pairwise_sub_is_one_per_sector(bank_sub: str, first: str | None,
                                          second: str | None, client_id: str) -> None:
    """OIDC Core §8.1: "a unique sub (subject) value for each Sector Identifier": two
    clients get the same sub exactly when they share a sector (a client with none is a
    sector of its own); never the bank's sub; ``bank`` subjects are the bank's sub."""
    rule = Subject(type="pairwise", salt="pepper")

    def sub(sector: str | None, name: str) -> str:
        settings = client(client_id=name, sector_identifier=sector,
                          redirect_uris=("com.example.app:/cb",))
        return merchant_subject(rule, settings, name, "bank-a", bank_sub)

    one, other = sub(first, client_id), sub(second, client_id + "2")
    assert (one == other) == (first is not None and first == second)
    assert bank_sub not in (one, other)
    # a client gone from the config (a reload mid-login) gets a sub of its own
    assert merchant_subject(rule, None, "gone-1", "bank-a", bank_sub) != merchant_subject(
        rule, None, "gone-2", "bank-a", bank_sub)
    # another bank's user with the same sub is another person
    assert sub(first, client_id) != merchant_subject(
        rule, client(client_id=client_id, sector_identifier=first,
                     redirect_uris=("com.example.app:/cb",)), client_id, "bank-b", bank_sub)
    bank_rule = Subject(type="bank")
    assert merchant_subject(bank_rule, None, client_id, "bank-a", bank_sub) == bank_sub
