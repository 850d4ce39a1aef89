"""Who may name the user to a decoupled bank, and how often (proxy.login.hints).

A decoupled bank pushes to the phone of the user that ``login_hint`` or
``login_hint_token`` names, showing ``binding_message``. Only a confidential
client's pushed request may name them; a bare front-channel request, a public
client's push and a picker choice of such a request are refused before the bank is
called. Each (bank, hint) is asked at most ``login_hint_limit.logins`` times per
window. ``binding_message`` is checked as CIBA §7.1 asks.
"""

from __future__ import annotations

import dataclasses
import re

import aiohttp
import redis.asyncio as aioredis

from proxy.config.settings import LoginHintLimit
from tests.flows.harness import (
    ACR_A,
    ACR_C,
    APP,
    PUBLIC,
    SERVER,
    SERVER_SECRET,
    Proxy,
    World,
    WorldFactory,
    app_redirect_params,
    new_request,
    query_of,
    run_proxy,
)
from tests.ports import free_port

NAMING = [{"login_hint": "alice"}, {"login_hint_token": "permission-token"},
          {"binding_message": "A1B2"}]  # fmt: skip


def backchannel_calls(world: World) -> int:
    return sum(1 for r in world.ciba.requests if r.path == "/bc-authorize")


async def ciba_world(world_factory: WorldFactory) -> World:
    world: World = await world_factory(ciba=True)
    world.ciba.ciba_interval = 1
    return world


def refused(params: dict[str, str], state: str) -> None:
    assert (params["error"], params["state"]) == ("invalid_request", state), params
    assert "/par" in params["error_description"]


async def test_a_bare_front_channel_request_may_not_name_the_user(
    world_factory: WorldFactory,
) -> None:
    world = await ciba_world(world_factory)
    proxy = world.proxy
    for naming in NAMING:
        # GET /authorize, public client
        resp, login = await proxy.authorize(acr_values=ACR_C, **naming)
        assert resp.status == 302, await resp.text()
        refused(app_redirect_params(resp), login.state)
        # a confidential client's id on a bare request proves nothing either
        resp, login = await proxy.authorize(client_id=SERVER, acr_values=ACR_C, **naming)
        refused(app_redirect_params(resp), login.state)
        # POST /native/authorize: the error is the JSON call to the redirect_uri
        resp, login = await proxy.native(acr_values=ACR_C, **naming)
        body = await resp.json()
        assert (resp.status, body["action"]) == (200, "call"), body
        refused(query_of(body["url"]), login.state)
    assert backchannel_calls(world) == 0


async def test_a_public_clients_push_may_not_name_the_user(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory)
    proxy = world.proxy
    login, form = new_request(acr_values=ACR_C, login_hint="alice")
    pushed = await proxy.post("/par", form)
    assert pushed.status == 201, await pushed.text()  # a public client may push ...
    resp = await proxy.http.get(f"{proxy.issuer}/authorize", allow_redirects=False, params={
        "client_id": PUBLIC, "request_uri": (await pushed.json())["request_uri"]})
    refused(app_redirect_params(resp), login.state)  # ... but its push proves nothing
    assert backchannel_calls(world) == 0


async def test_a_confidential_clients_push_names_the_user(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory)
    resp, _ = await world.proxy.authorize_pushed(acr_values=ACR_C, login_hint="alice",
                                                 binding_message="A1B2")
    assert resp.headers["Location"].startswith(f"{world.proxy.issuer}/resume/")
    sent = world.ciba.last("/bc-authorize").form
    assert (sent["login_hint"], sent["binding_message"]) == ("alice", "A1B2")
    # the same through the browser-less endpoint
    resp, _ = await world.proxy.native_pushed(acr_values=ACR_C, login_hint="bob")
    assert (await resp.json())["url"].startswith(f"{world.proxy.issuer}/resume/")
    assert world.ciba.last("/bc-authorize").form["login_hint"] == "bob"


async def test_a_picker_choice_keeps_where_the_request_came_from(
    world_factory: WorldFactory,
) -> None:
    world = await ciba_world(world_factory)
    proxy = world.proxy
    # a public app's bare request with a login_hint: the redirect bank takes the hint ...
    resp, _ = await proxy.authorize(client_id=APP, login_hint="alice")
    links = picker_links(await resp.text())
    at_bank = await proxy.http.get(links["bank-a"], allow_redirects=False)
    assert query_of(at_bank.headers["Location"])["login_hint"] == "alice"
    # ... the decoupled bank refuses it, before it is called
    resp, login = await proxy.authorize(client_id=APP, login_hint="alice")
    links = picker_links(await resp.text())
    picked = await proxy.http.get(links["bank-c"], allow_redirects=False)
    refused(app_redirect_params(picked), login.state)
    assert backchannel_calls(world) == 0
    # the backend's push (it names no bank) goes through the picker and stays trusted
    resp, _ = await proxy.authorize_pushed(login_hint="alice")
    links = picker_links(await resp.text())
    picked = await proxy.http.get(links["bank-c"], allow_redirects=False)
    assert picked.headers["Location"].startswith(f"{proxy.issuer}/resume/")
    assert world.ciba.last("/bc-authorize").form["login_hint"] == "alice"


def picker_links(html: str) -> dict[str, str]:
    """bank id -> the picker's link for it."""
    return {m.group(2): m.group(1)
            for m in re.finditer(r'href="([^"]*/authorize/pick/[^"/]+/([a-z0-9-]+))"', html)}


async def test_logins_per_hint_are_limited(world_factory: WorldFactory, redis_url: str) -> None:
    world = await ciba_world(world_factory)
    port = free_port()
    config = dataclasses.replace(world.proxy.config,
                                 login_hint_limit=LoginHintLimit(logins=2, window=60))
    await world.stack.enter_async_context(run_proxy(config, port))
    proxy = Proxy(f"http://127.0.0.1:{port}", config, world.proxy.http)
    for _ in range(2):
        resp, _ = await proxy.authorize_pushed(acr_values=ACR_C, login_hint="alice")
        assert resp.headers["Location"].startswith(f"{config.issuer}/resume/")
    resp, login = await proxy.authorize_pushed(acr_values=ACR_C, login_hint="alice")
    params = app_redirect_params(resp)
    assert (params["error"], params["state"]) == ("temporarily_unavailable", login.state)
    assert backchannel_calls(world) == 2  # the third was refused before the bank
    # another user is not held up, nor is the same hint as a login_hint_token
    resp, _ = await proxy.authorize_pushed(acr_values=ACR_C, login_hint="bob")
    assert resp.headers["Location"].startswith(f"{config.issuer}/resume/")
    resp, _ = await proxy.authorize_pushed(acr_values=ACR_C, login_hint=None,
                                           login_hint_token="alice")
    assert resp.headers["Location"].startswith(f"{config.issuer}/resume/")
    # the counters are in the store, keyed by a hash: no hint appears in a key
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() async for k in client.scan_iter(match=f"{world.store.prefix}hint:*")]
    finally:
        await client.aclose()
    assert len(keys) == 3
    assert not any("alice" in k or "bob" in k for k in keys)


BAD_MESSAGES = [
    "x" * 65,                     # longer than 64 characters
    "Pay\n10 EUR",                # a line break
    "\tA1B2",                     # a tab
    " A1B2",                      # leading space
    "<b>A1B2</b>",                # markup
    "A1B2 \u202eRUE 01",          # a bidi override (shows as "10 EUR")
    "A1\u200bB2",                 # a zero-width space
    'say "yes"',                  # quotes
]
GOOD_MESSAGES = ["A1B2", "Zahlung 10,00 EUR an Müller #4711", "支払い 4711", "x" * 64]


async def push(proxy: Proxy, **overrides: str | None) -> aiohttp.ClientResponse:
    _, form = new_request(client_id=SERVER, **overrides)
    return await proxy.post("/par", form, auth=(SERVER, SERVER_SECRET))


async def test_binding_message_is_short_plain_text(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory)
    proxy = world.proxy
    for message in BAD_MESSAGES:
        resp = await push(proxy, acr_values=ACR_C, login_hint="alice", binding_message=message)
        body = await resp.json()
        assert (resp.status, body["error"]) == (400, "invalid_binding_message"), message
        assert message not in body["error_description"]
        # at /authorize too, once the redirect_uri is verified: a redirect
        resp, login = await proxy.authorize(acr_values=ACR_A, binding_message=message)
        params = app_redirect_params(resp)
        assert (params["error"], params["state"]) == ("invalid_binding_message", login.state)
    for message in GOOD_MESSAGES:
        resp, _ = await proxy.authorize_pushed(acr_values=ACR_C, login_hint=f"u{len(message)}",
                                               binding_message=message)
        assert resp.status == 302, await resp.text()
        assert world.ciba.last("/bc-authorize").form["binding_message"] == message
