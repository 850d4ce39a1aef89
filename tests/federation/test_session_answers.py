"""A session broker's answers, odd ones above all: each field missing or of the wrong
type, URLs that point elsewhere, any JSON at all (hypothesis), huge or deeply nested
bodies over HTTP. Only BankError ever comes out, with a detail that says which."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.protocol import BankError, StartRequest
from federation.sandbox import SandboxBroker, serve_broker
from federation.session import SessionAdapter
from federation.session_answers import identity_of, parse_created, session_status
from federation.settings import SessionApi
from tests.session_broker import CLAIMS, new_broker, session_settings

CALLBACK = "https://proxy.example/callback/itsme"
API = SessionApi(api="https://api.broker.example/auth/rest",
                 api_token_endpoint="https://api.broker.example/auth/open/connect/token",
                 provider="itsme", redirect_parameter="itsme_redirect_url",
                 loa={"high": "high"})
STATE = "HOiwzUyqdM1Pf7ewufjb9570cyW8WbFX1a5orfzz4JA:a-sdge-AMTzsLg5v6Xl6PLSP166"
# the seed's example answer, shortened
CREATED: dict[str, Any] = {
    "id": "db415388-c978-4027-84a6-021bd743ef0b",
    "status": "CREATED",
    "idpData": {
        "authorizationRequestUrl": "https://idp.e2e.itsme.services/v2/authorization?"
        "response_type=code&redirect_uri=https%3A%2F%2Fexample.com&state="
        "HOiwzUyqdM1Pf7ewufjb9570cyW8WbFX1a5orfzz4JA%3Aa-sdge-AMTzsLg5v6Xl6PLSP166&client_id=x",
        "tokenRequestUrl": "https://api.broker.example/idps/oidc-vendor/itsme/login-headless/token",
        "transactionId": "8aa41ada-3cd0-874b-9acd-bd0a5f7e033f",
    },
    "sessionLifetime": 1200,
    "expiresAt": "2026-03-19T08:36:06.2964843+00:00",
}
NOW = 1_773_000_000.0  # 2026-03-08, before the example's expiresAt
SUCCESS: dict[str, Any] = {
    "id": CREATED["id"], "status": "SUCCESS", "provider": "itsme", "loa": "high",
    "subject": {"id": "tXOq9614vLHk=", "name": "Maxence Legrand",
                "nin": {"value": "81042419835", "issuingCountry": "BE"}},
}
SOME = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                  max_size=4),
    max_leaves=20,
)


def created(**changes: Any) -> dict[str, Any]:
    """CREATED with ``changes`` at dotted paths (None removes the key)."""
    body = copy.deepcopy(CREATED)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = body
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return body


def refusal(body: Any) -> BankError:
    with pytest.raises(BankError) as info:
        parse_created(body, API, now=NOW, default_lifetime=600)
    assert info.value.error == "server_error"
    assert info.value.description == "the bank's answer could not be used"
    return info.value


def test_the_seeds_answer() -> None:
    made = parse_created(CREATED, API, now=NOW, default_lifetime=600)
    assert made.state == STATE  # as the itsme app will bring it back (url-decoded)
    assert made.session_id == CREATED["id"]
    assert made.token_request_url == CREATED["idpData"]["tokenRequestUrl"]
    assert made.expires_at == pytest.approx(1773909366.296484)
    assert STATE not in json.dumps(made.conn_data())


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"id": None}, "id missing, not a string or not a safe path segment"),
        ({"id": 12}, "id missing"),
        ({"id": "../../admin"}, "id missing"),
        ({"id": ".."}, "id missing"),
        ({"id": "a/b"}, "id missing"),
        ({"idpData": None}, "idpData missing or not an object"),
        ({"idpData": ["x"]}, "idpData missing or not an object"),
        ({"idpData__transactionId": None}, "idpData.transactionId missing"),
        ({"idpData__transactionId": {"a": 1}}, "idpData.transactionId missing"),
        ({"idpData__tokenRequestUrl": None}, "idpData.tokenRequestUrl missing"),
        ({"idpData__tokenRequestUrl": "https://evil.example/idps/token"},
         "idpData.tokenRequestUrl is not on the API's origin"),
        ({"idpData__tokenRequestUrl": "http://api.broker.example/idps/token"},
         "idpData.tokenRequestUrl is not on the API's origin"),
        ({"idpData__tokenRequestUrl": "https://api.broker.example:8443/idps/token"},
         "idpData.tokenRequestUrl is not on the API's origin"),
        ({"idpData__tokenRequestUrl": "https://x@api.broker.example/idps/token"},
         "idpData.tokenRequestUrl is not on the API's origin"),
        ({"idpData__authorizationRequestUrl": None}, "idpData.authorizationRequestUrl missing"),
        ({"idpData__authorizationRequestUrl": "http://idp.example/a?state=" + "s" * 30},
         "idpData.authorizationRequestUrl is not an https URL"),
        ({"idpData__authorizationRequestUrl": "javascript:alert(1)//?state=" + "s" * 30},
         "idpData.authorizationRequestUrl is not an https URL"),
        ({"idpData__authorizationRequestUrl": "https://i.example@evil.example/?state=" + "s" * 30},
         "idpData.authorizationRequestUrl is not an https URL"),
        ({"idpData__authorizationRequestUrl": "https://idp.example/a"},
         "idpData.authorizationRequestUrl has no state, or more than one"),
        ({"idpData__authorizationRequestUrl": f"https://i.example/a?state={'s' * 30}&state=t"},
         "idpData.authorizationRequestUrl has no state, or more than one"),
        ({"idpData__authorizationRequestUrl": "https://idp.example/a?state=short"},
         "the state in idpData.authorizationRequestUrl is not 22 to 512 printable characters"),
        ({"idpData__authorizationRequestUrl": "https://i.example/a?state=%20" + "s" * 30},
         "the state in idpData.authorizationRequestUrl is not 22 to 512"),
        ({"expiresAt": "tomorrow"}, "expiresAt is not an ISO 8601 time with a zone"),
        ({"expiresAt": "2026-03-19T08:36:06"}, "expiresAt is not an ISO 8601 time with a zone"),
        ({"expiresAt": 1773909366}, "expiresAt is not an ISO 8601 time with a zone"),
        ({"expiresAt": "2020-01-01T00:00:00+00:00"}, "the session expires before it starts"),
        ({"expiresAt": None, "sessionLifetime": "1200"}, "sessionLifetime is not a positive"),
        ({"expiresAt": None, "sessionLifetime": True}, "sessionLifetime is not a positive"),
        ({"expiresAt": None, "sessionLifetime": 0}, "sessionLifetime is not a positive"),
    ],
)
def test_each_broken_field_is_named(changes: dict[str, Any], detail: str) -> None:
    assert refusal(created(**changes)).detail.startswith(f"session: {detail}")


def test_lifetime_without_expires_at() -> None:
    made = parse_created(created(expiresAt=None), API, now=NOW, default_lifetime=600)
    assert made.expires_at == NOW + 1200
    made = parse_created(created(expiresAt=None, sessionLifetime=None), API, now=NOW,
                         default_lifetime=600)
    assert made.expires_at == NOW + 600


@given(JSON)
@SOME
def test_any_json_is_a_created_session_or_a_bank_error(body: Any) -> None:
    try:
        parse_created(body, API, now=NOW, default_lifetime=600)
    except BankError as err:
        assert err.error == "server_error"


@given(st.sampled_from(["id", "idpData", "transactionId", "tokenRequestUrl",
                        "authorizationRequestUrl", "expiresAt", "sessionLifetime"]), JSON)
@SOME
def test_any_value_in_any_field(field: str, value: Any) -> None:
    path = f"idpData__{field}" if field in CREATED["idpData"] else field
    try:
        parse_created(created(**{path: value}), API, now=NOW, default_lifetime=600)
    except BankError as err:
        assert err.error == "server_error"


@given(JSON)
@SOME
def test_any_json_is_a_status_or_a_bank_error(body: Any) -> None:
    try:
        status = session_status(body, CREATED["id"])
    except BankError as err:
        assert err.error == "server_error"
    else:
        assert isinstance(status, str) and status


def test_status_of_another_session() -> None:
    with pytest.raises(BankError) as info:
        session_status({"id": "other", "status": "SUCCESS"}, CREATED["id"])
    assert info.value.detail == "session: the broker answered with another session"


def test_identity_of_the_seeds_session() -> None:
    identity = identity_of(SUCCESS, API, CLAIMS)
    assert identity.sub == "tXOq9614vLHk="
    assert identity.claims["nin.value"] == "81042419835"
    assert identity.claims["name"] == "Maxence Legrand"
    assert "firstName" not in identity.claims  # not in the subject: not made up
    assert identity.authentication_level == "high"


@pytest.mark.parametrize(
    ("body", "error", "detail"),
    [
        ({**SUCCESS, "subject": None}, "server_error", "session: subject missing"),
        ({**SUCCESS, "subject": {"name": "x"}}, "server_error", "session: subject.id missing"),
        ({**SUCCESS, "subject": {"id": 5}}, "server_error", "session: subject.id missing"),
        ({**SUCCESS, "provider": "bankid"}, "server_error",
         "session: the session was completed with another provider"),
        ({**SUCCESS, "loa": ["high"]}, "access_denied", "session: loa - is not one of ['high']"),
        ({**SUCCESS, "loa": "low"}, "access_denied", "session: loa low is not one of ['high']"),
    ],
)
def test_identity_refusals(body: dict[str, Any], error: str, detail: str) -> None:
    with pytest.raises(BankError) as info:
        identity_of(body, API, CLAIMS)
    assert info.value.error == error and info.value.detail.startswith(detail)


@given(JSON)
@SOME
def test_any_session_body_is_an_identity_or_a_bank_error(body: Any) -> None:
    try:
        identity_of(body if isinstance(body, dict) else {"subject": body}, API, CLAIMS)
    except BankError as err:
        assert err.error in ("server_error", "access_denied")


@given(JSON)
@SOME
def test_any_subject(subject: Any) -> None:
    try:
        identity = identity_of({**SUCCESS, "subject": subject}, API, CLAIMS)
    except BankError as err:
        assert err.error == "server_error"
    else:
        assert isinstance(subject, dict) and identity.sub == subject["id"]


# -- odd answers over HTTP -----------------------------------------------------------------


@pytest.fixture
async def broker() -> AsyncIterator[SandboxBroker]:
    async with serve_broker(new_broker(CALLBACK)) as served:
        yield served


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (b"not json", "session: the created session is not a JSON object"),
        (b"[" * 200_000, "session: the created session is not a JSON object"),
        (b'"' + b"x" * (2 * 1024 * 1024) + b'"', "body larger than 1048576 bytes"),
        ([1, 2, 3], "session: the created session is not a JSON object"),
        (None, "session: the created session is not a JSON object"),
    ],
)
async def test_odd_created_answers(broker: SandboxBroker, session: aiohttp.ClientSession,
                                   answer: Any, detail: str) -> None:  # fmt: skip
    broker.create_answer = lambda _: answer
    adapter = SessionAdapter(session_settings(broker), session)
    with pytest.raises(BankError) as info:
        await adapter.start(StartRequest("unused", CALLBACK))
    assert info.value.error == "server_error"
    assert detail in info.value.detail


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda body: b"[" * 200_000,
        lambda body: b"\xff\xfe",
        lambda body: {**body, "status": 7},
        lambda body: {**body, "status": None},
        lambda body: {**body, "id": "another"},
        lambda body: {**body, "subject": "Maxence"},
        lambda body: {**body, "subject": {**body.get("subject", {}), "id": ["x"]}},
        lambda body: b'"' + b"x" * (2 * 1024 * 1024) + b'"',
    ],
)
async def test_odd_session_reads(broker: SandboxBroker, session: aiohttp.ClientSession,
                                 rewrite: Any) -> None:  # fmt: skip
    adapter = SessionAdapter(session_settings(broker), session)
    start = await adapter.start(StartRequest("unused", CALLBACK))
    async with session.get(start.url, allow_redirects=False) as resp:
        params = dict(parse_qsl(urlsplit(resp.headers["Location"]).query))
    broker.read_answer = rewrite
    began = time.monotonic()
    with pytest.raises(BankError) as info:
        await adapter.finish(start.conn_data, params, CALLBACK)
    assert info.value.error == "server_error"
    assert time.monotonic() - began < 2
