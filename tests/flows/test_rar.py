"""RFC 9396 (Rich Authorization Requests) on the merchant side, whole: authorization_details
at every entry point, each invalid request refused with invalid_authorization_details as
the error path decides (a redirect with state and iss, or JSON), a bank that cannot take
them, what the grant records and returns (token response, introspection and RFC 9701,
the ID token where the operator asks), narrowing on refresh, and what each resource
server sees."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aiohttp
import jwt
import pytest
import redis.asyncio as aioredis

from federation.sandbox import serve_broker
from proxy.app import MAX_BODY
from proxy.config.settings import StoreSettings
from proxy.oauth.authorize_checks import PARAMETER_LIMITS
from proxy.store.keys import record_key
from tests.flows.bankid_world import (
    ACR_BANKID,
    DEVICE_INFO,
    NNIN,
    PAYMENT,
    BankIdWorld,
    BankIdWorldFactory,
    details,
    payment_type,
)
from tests.flows.harness import (
    ACR_A,
    ACR_B,
    APP,
    CONFIDENTIAL,
    PAY_AUDIENCE,
    PUBLIC,
    RS_BANK,
    RS_PAY,
    RS_PLAIN,
    SERVER,
    SERVER_SECRET,
    Login,
    Proxy,
    app_redirect_params,
    make_config,
    new_request,
    query_of,
    run_proxy,
)
from tests.ports import free_port
from tests.session_broker import ACR_ITSME, new_broker, session_settings

ERROR = "invalid_authorization_details"
SHOES = {"type": "payment_initiation", "creditorName": "Shoe Shop",
         "instructedAmount": {"currency": "EUR", "amount": "59.90"},
         "locations": [PAY_AUDIENCE]}


async def login_at_a(world: BankIdWorld, *objects: dict[str, Any], **overrides: str) -> Login:
    """A browser login of the public app at bank A with ``objects``; the code."""
    return await world.proxy.login(acr_values=ACR_A, authorization_details=details(*objects),
                                   **overrides)


async def tokens_of(proxy: Proxy, login: Login, **extra: str) -> dict[str, Any]:
    resp = await proxy.exchange(login, **extra)
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


# -- every entry point --------------------------------------------------------------


async def test_get_authorize(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    login = await login_at_a(world, PAYMENT)
    sent = world.bank_a.last("/authorize").query  # RFC 9396 §3: the serialized JSON
    assert json.loads(sent["authorization_details"]) == [PAYMENT]
    tokens = await tokens_of(world.proxy, login)
    assert tokens["authorization_details"] == [PAYMENT]


async def test_post_authorize(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    login, form = new_request(acr_values=ACR_A, authorization_details=details(PAYMENT))
    resp = await world.proxy.http.post(f"{world.proxy.issuer}/authorize", data=form,
                                       allow_redirects=False)
    final = await world.proxy.follow(resp)
    login.params = app_redirect_params(final)
    assert (await tokens_of(world.proxy, login))["authorization_details"] == [PAYMENT]


async def test_par_then_authorize_and_native(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    resp, login = await world.proxy.authorize_pushed(acr_values=ACR_A,
                                                     authorization_details=details(PAYMENT))
    final = await world.proxy.follow(resp)
    login.params = app_redirect_params(final)
    tokens = await tokens_of(world.proxy, login, client_id=SERVER, client_secret=SERVER_SECRET)
    assert tokens["authorization_details"] == [PAYMENT]
    # pushed, then /native/authorize: the bank's URL as deep_link, carrying the details
    resp, _ = await world.proxy.native_pushed(acr_values=ACR_A,
                                              authorization_details=details(SHOES))
    body = await resp.json()
    assert body["action"] == "deep_link", body
    assert json.loads(query_of(body["url"])["authorization_details"]) == [SHOES]


async def test_native_authorize(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    resp, login = await world.proxy.native(acr_values=ACR_A,
                                           authorization_details=details(PAYMENT))
    body = await resp.json()
    assert body["action"] == "deep_link", body
    bank = await world.proxy.http.get(body["url"], allow_redirects=False)
    callback = bank.headers["Location"]
    answer = await (await world.proxy.call(callback)).json()
    login.params = query_of(answer["url"])
    tokens = await tokens_of(world.proxy, login, client_id=APP)
    assert tokens["authorization_details"] == [PAYMENT]


async def test_discovery(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/.well-known/openid-configuration")
    assert (await resp.json())["authorization_details_types_supported"] == [
        "payment_initiation"]


# -- invalid requests ------------------------------------------------------------------


INVALID = [
    ("{not json", "authorization_details is not JSON"),
    ('{"type": "payment_initiation"}', "authorization_details must be a non-empty JSON array "
     "of objects"),
    ("[]", "authorization_details must be a non-empty JSON array of objects"),
    ('["payment_initiation"]', "each object of authorization_details needs a string type"),
    ('[{"creditorName": "A"}]', "each object of authorization_details needs a string type"),
    ('[{"type": 7}]', "each object of authorization_details needs a string type"),
    ('[{"type": "payment_initiation", "type": "account_information"}]',
     "authorization_details is not JSON"),
    ('[{"type": "payment_initiation", "instructedAmount": {"currency": "NOK", '
     '"amount": NaN}, "creditorName": "A"}]', "authorization_details is not JSON"),
    ('[{"type": "account_information", "actions": ["read_balances"]}]',
     "authorization_details names a type this server does not know"),
    (details({**PAYMENT, "colour": "blue"}),  # an unknown field
     "an authorization_details object does not match its type's schema"),
    (details({**PAYMENT, "instructedAmount": {"currency": "NOK", "amount": 123.45}}),
     "an authorization_details object does not match its type's schema"),  # wrong type
    (details({**PAYMENT, "instructedAmount": {"currency": "nok", "amount": "123.45"}}),
     "an authorization_details object does not match its type's schema"),  # invalid value
    (details({"type": "payment_initiation", "creditorName": "A"}),  # a missing field
     "an authorization_details object does not match its type's schema"),
    (details(PAYMENT, {**PAYMENT, "creditorName": ""}),  # one bad among good
     "an authorization_details object does not match its type's schema"),
]


@pytest.mark.parametrize(("value", "description"), INVALID)
async def test_each_invalid_request(bankid_world: BankIdWorldFactory, value: str,
                                    description: str) -> None:  # fmt: skip
    world: BankIdWorld = await bankid_world()
    proxy = world.proxy
    # /authorize: a redirect to the verified redirect_uri, with state and iss
    resp, login = await proxy.authorize(acr_values=ACR_A, authorization_details=value)
    params = app_redirect_params(resp)
    assert (params["error"], params["state"], params["iss"]) == (ERROR, login.state,
                                                                 proxy.issuer)
    assert params["error_description"] == description
    # /par: 400 JSON
    _, form = new_request(client_id=SERVER, acr_values=ACR_A, authorization_details=value)
    pushed = await proxy.post("/par", form, auth=(SERVER, SERVER_SECRET))
    body = await pushed.json()
    assert (pushed.status, body["error"], body["error_description"]) == (400, ERROR,
                                                                          description)
    # /native/authorize: the call to the redirect_uri with the error
    resp, login = await proxy.native(acr_values=ACR_A, authorization_details=value)
    answer = await resp.json()
    assert answer["action"] == "call"
    assert query_of(answer["url"])["error"] == ERROR
    assert not world.bank_a.requests  # no bank heard of it


async def test_a_type_the_client_may_not_use(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    resp, login = await world.proxy.authorize(client_id=CONFIDENTIAL, acr_values=ACR_A,
                                              authorization_details=details(PAYMENT))
    params = app_redirect_params(resp)
    assert (params["error"], params["state"]) == (ERROR, login.state)
    assert params["error_description"] == ("this client may not use an authorization_details "
                                           "type it names")


async def test_too_long(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    value = details(*[PAYMENT] * 20)
    assert len(value) > PARAMETER_LIMITS["authorization_details"]
    resp, login = await world.proxy.authorize(acr_values=ACR_A, authorization_details=value)
    params = app_redirect_params(resp)
    assert (params["error"], params["error_description"], params["state"]) == (
        "invalid_request", "authorization_details is too long", login.state)


async def test_a_bank_that_takes_neither(bankid_world: BankIdWorldFactory) -> None:
    """Bank B lists no types and names no permission type: the merchant hears which bank,
    before any redirect to it."""
    world: BankIdWorld = await bankid_world()
    resp, login = await world.proxy.authorize(acr_values=ACR_B,
                                              authorization_details=details(PAYMENT))
    params = app_redirect_params(resp)
    assert (params["error"], params["state"]) == (ERROR, login.state)
    assert params["error_description"] == "Bank B cannot take these authorization_details"
    assert not [r for r in world.bank_b.requests if r.path == "/authorize"]


async def test_a_bank_that_cannot_take_them_is_not_fallen_back_from(
    bankid_world: BankIdWorldFactory,
) -> None:
    world: BankIdWorld = await bankid_world(
        permissions=None, assertion=None, fallback_acr=ACR_A)  # BankID without permissions
    resp, login = await world.start(authorization_details=details(PAYMENT))
    params = app_redirect_params(resp)
    assert (params["error"], params["error_description"], params["state"]) == (
        ERROR, "BankID cannot take these authorization_details", login.state)
    assert not world.bank_a.requests


# -- what is granted, and who sees it ----------------------------------------------------


async def test_the_banks_answer_is_what_the_grant_records(
    bankid_world: BankIdWorldFactory,
) -> None:
    world: BankIdWorld = await bankid_world()
    approved = {**PAYMENT, "debtorAccount": {"iban": "NO9386011117947"}}
    world.bank_a.rar_answer = [approved]
    tokens = await tokens_of(world.proxy, await login_at_a(world, PAYMENT))
    assert tokens["authorization_details"] == [approved]
    assert (await world.proxy.introspect(tokens["access_token"]))[
        "authorization_details"] == [approved]


async def test_an_answer_the_bank_was_not_asked_for(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    world.bank_a.rar_answer = [{"type": "account_information"}]
    resp, login = await world.proxy.authorize(acr_values=ACR_A,
                                              authorization_details=details(PAYMENT))
    final = await world.proxy.follow(resp)
    params = app_redirect_params(final)
    assert (params["error"], params["state"]) == ("server_error", login.state)
    assert "code" not in params


async def test_narrowing_on_refresh(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    proxy = world.proxy
    tokens = await tokens_of(proxy, await login_at_a(world, PAYMENT, SHOES))
    assert tokens["authorization_details"] == [PAYMENT, SHOES]

    async def refresh(**extra: str) -> Any:
        resp = await proxy.post("/token", {"grant_type": "refresh_token", "client_id": PUBLIC,
                                           "refresh_token": tokens["refresh_token"], **extra})
        body = await resp.json()
        if resp.status == 200:
            tokens["refresh_token"] = body["refresh_token"]
        return resp.status, body

    # fewer: the access token carries only those
    status, body = await refresh(authorization_details=details(SHOES))
    assert (status, body["authorization_details"]) == (200, [SHOES])
    info = await proxy.introspect(body["access_token"], rs=RS_PAY)
    assert info["active"] is False  # no resource was asked: not an RS_PAY token
    info = await proxy.introspect(body["access_token"])
    assert info["authorization_details"] == []  # SHOES is for the payments API only
    # the grant is unchanged: a refresh without the parameter gets all of it again
    status, body = await refresh()
    assert (status, body["authorization_details"]) == (200, [PAYMENT, SHOES])
    # never wider: another object, a changed one, or one granted once asked twice
    for wider in (details({**PAYMENT, "creditorName": "Someone Else"}),
                  details({**SHOES, "instructedAmount": {"currency": "EUR",
                                                         "amount": "599.00"}}),
                  details(SHOES, SHOES), "[]", "not json"):
        status, body = await refresh(authorization_details=wider)
        assert (status, body["error"]) == (400, ERROR), wider
    # the refused requests did not use up the refresh token
    status, body = await refresh()
    assert status == 200


async def test_narrowing_at_the_code_exchange(bankid_world: BankIdWorldFactory) -> None:
    world: BankIdWorld = await bankid_world()
    login = await login_at_a(world, PAYMENT, SHOES)
    tokens = await tokens_of(world.proxy, login, authorization_details=details(PAYMENT))
    assert tokens["authorization_details"] == [PAYMENT]
    # the refresh token keeps the whole grant
    resp = await world.proxy.refresh(tokens["refresh_token"])
    assert (await resp.json())["authorization_details"] == [PAYMENT, SHOES]
    # a login without details: asking for some at the token endpoint is refused
    login = await world.proxy.login(acr_values=ACR_A)
    resp = await world.proxy.exchange(login, authorization_details=details(PAYMENT))
    assert (resp.status, (await resp.json())["error"]) == (400, ERROR)


async def test_what_each_resource_server_sees(bankid_world: BankIdWorldFactory) -> None:
    """An object naming locations is for those APIs; one without, for every API that sees
    the token (RFC 9396 §9.2, "filtered ... for the RS making the introspection request")."""
    world: BankIdWorld = await bankid_world()
    proxy = world.proxy
    # a token for the payments API (RFC 8707 resource): only RS_PAY sees it, and both objects
    login = await login_at_a(world, PAYMENT, SHOES, resource=PAY_AUDIENCE)
    tokens = await tokens_of(proxy, login)
    info = await proxy.introspect(tokens["access_token"], rs=RS_PAY)
    assert info["authorization_details"] == [PAYMENT, SHOES]
    assert (await proxy.introspect(tokens["access_token"], rs=RS_PLAIN))["active"] is False
    # a token for no API in particular: the APIs without an audience see what is theirs
    tokens = await tokens_of(proxy, await login_at_a(world, PAYMENT, SHOES))
    for rs in (RS_PLAIN, RS_BANK):
        info = await proxy.introspect(tokens["access_token"], rs=rs)
        assert info["authorization_details"] == [PAYMENT]
    # RFC 9701: the same object, signed
    resp = await proxy.http.post(f"{proxy.issuer}/introspect",
                                 data={"token": tokens["access_token"]},
                                 headers={"Accept": "application/token-introspection+jwt",
                                          "Authorization": _basic(RS_PLAIN)})
    claims = jwt.decode(await resp.text(), options={"verify_signature": False})
    assert claims["token_introspection"]["authorization_details"] == [PAYMENT]


def _basic(credentials: tuple[str, str]) -> str:
    return aiohttp.encode_basic_auth(*credentials)


@pytest.mark.parametrize("id_token", [False, True])
async def test_the_id_token_only_where_the_operator_asks(bankid_world: BankIdWorldFactory,
                                                         id_token: bool) -> None:  # fmt: skip
    world: BankIdWorld = await bankid_world(id_token=id_token)
    tokens = await tokens_of(world.proxy, await login_at_a(world, PAYMENT))
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims.get("authorization_details") == ([PAYMENT] if id_token else None)


async def test_what_a_request_leaves_in_the_store(bankid_world: BankIdWorldFactory,
                                                  redis_url: str) -> None:  # fmt: skip
    """The largest pushed request, now with authorization_details and device_info at their
    limits, still leaves a record under the bound of tests/flows/test_request_size.py."""
    world: BankIdWorld = await bankid_world()
    many = [PAYMENT]
    while len(details(*many, PAYMENT)) <= PARAMETER_LIMITS["authorization_details"]:
        many.append(PAYMENT)
    _, form = new_request(client_id=SERVER, acr_values=ACR_BANKID, login_hint=NNIN,
                          device_info=DEVICE_INFO, authorization_details=details(*many),
                          state="s" * PARAMETER_LIMITS["state"],
                          nonce="n" * PARAMETER_LIMITS["nonce"],
                          login_hint_token="t" * PARAMETER_LIMITS["login_hint_token"],
                          binding_message="B" * PARAMETER_LIMITS["binding_message"])
    junk = (MAX_BODY - sum(len(k) + len(v) + 2 for k, v in form.items()) - 4096) // 1000
    form.update({f"unknown_{i}": "j" * 985 for i in range(junk)})
    resp = await world.proxy.post("/par", form, auth=(SERVER, SERVER_SECRET))
    assert resp.status == 201, await resp.text()
    handle = (await resp.json())["request_uri"].rsplit(":", 1)[1]
    client = aioredis.Redis.from_url(redis_url)
    try:
        size = await client.strlen(record_key(world.proxy.config.store.prefix, "par", handle))
    finally:
        await client.aclose()
    assert 4096 < size < 12 * 1024


async def test_a_session_bank_takes_none(redis_url: str, store_prefix: str) -> None:
    """itsme through a broker's REST session API has no place for them: refused before
    the session is created."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    broker = new_broker(f"{issuer}/callback/itsme")
    async with serve_broker(broker), aiohttp.ClientSession() as http:
        config = make_config(issuer, StoreSettings(url=redis_url, prefix=store_prefix),
                             [session_settings(broker)])
        config = dataclasses.replace(
            config, authorization_details_types=(payment_type(),),
            clients=tuple(dataclasses.replace(c, authorization_details_types=(
                "payment_initiation",)) for c in config.clients))
        async with run_proxy(config, port):
            resp, login = await Proxy(issuer, config, http).authorize(
                acr_values=ACR_ITSME, authorization_details=details(PAYMENT))
    params = app_redirect_params(resp)
    assert (params["error"], params["state"], params["error_description"]) == (
        ERROR, login.state, "itsme cannot take these authorization_details")
    assert not broker.sessions
