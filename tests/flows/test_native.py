"""Browser-less App2App (draft-zehavi-oauth-app2app-browserless): the merchant app
drives every step itself; every answer is JSON."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.flows.harness import (
    ACR_A,
    ACR_C,
    APP,
    APP_REDIRECT,
    NATIVE_CALLBACK,
    SERVER,
    SERVER_SECRET,
    Login,
    World,
    WorldFactory,
    new_request,
    query_of,
)

# the merchant backend that pushed the request redeems the code
SERVER_AUTH = {"client_id": SERVER, "client_secret": SERVER_SECRET}


async def action(resp: aiohttp.ClientResponse, expected: str) -> str:
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    body: dict[str, Any] = await resp.json()
    assert body["action"] == expected, body
    url: str = body["url"]
    return url


async def finish(world: World, login: Login, url: str, client_id: str = APP,
                 **auth: str) -> dict[str, Any]:
    """The final ``call`` is the merchant's own redirect_uri: exchange its code."""
    assert url.startswith(APP_REDIRECT + "?"), url
    login.params = query_of(url)
    assert login.params["state"] == login.state
    assert login.params["iss"] == world.proxy.issuer
    resp = await world.proxy.exchange(login, client_id=client_id, **auth)
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


async def test_deep_link_to_a_redirect_bank_then_callback_then_call(world: World) -> None:
    proxy = world.proxy
    resp, login = await proxy.native(acr_values=ACR_A)
    deep_link = await action(resp, "deep_link")
    assert deep_link.startswith(world.bank_a.issuer + "/authorize?")
    assert "native_callback_uri" not in query_of(deep_link)  # the bank has no native endpoint

    # the bank app answers to /callback/bank-a; the merchant app claims that URL (AASA)
    # and calls it asking for JSON, without cookies
    bank_app = await proxy.http.get(deep_link, allow_redirects=False)
    callback = bank_app.headers["Location"]
    assert callback.startswith(f"{proxy.issuer}/callback/bank-a?")
    final = await action(await proxy.call(callback), "call")
    await finish(world, login, final)


async def test_bank_with_its_own_native_endpoint(world: World) -> None:
    world.bank_a.native_endpoint = True
    proxy = world.proxy
    resp, login = await proxy.native(acr_values=ACR_A)
    bank_native = await action(resp, "call")
    assert bank_native.startswith(world.bank_a.issuer + "/native/authorize?")
    # draft §3.4: native_callback_uri is forwarded to the downstream server
    assert query_of(bank_native)["native_callback_uri"] == NATIVE_CALLBACK

    bank_app = await action(await proxy.call(bank_native), "deep_link")
    decided = await proxy.http.post(bank_app + "/decide", data={"decision": "approve"},
                                    allow_redirects=False)
    invoked = decided.headers["Location"]
    assert invoked.startswith(NATIVE_CALLBACK + "?")
    redirect_uri = query_of(invoked)["redirect_uri"]
    assert redirect_uri.startswith(f"{proxy.issuer}/callback/bank-a?")
    final = await action(await proxy.call(redirect_uri), "call")
    await finish(world, login, final)


async def test_prompt_to_choose_a_bank(world: World) -> None:
    proxy = world.proxy
    resp, login = await proxy.native()  # merchant-app2app names no bank
    assert resp.status == 200
    prompt = await resp.json()
    assert prompt["action"] == "prompt"
    assert prompt["response"] == {"post": f"{proxy.issuer}/native/authorize/pick"}
    options = prompt["userPrompt"]["options"]["bank"]
    assert options["values"] == {"bank-a": {"name": "bank-a"}, "bank-b": {"name": "bank-b"}}

    answer = await proxy.post("/native/authorize/pick", {"id": prompt["id"], "bank": "bank-b"})
    deep_link = await action(answer, "deep_link")
    assert deep_link.startswith(world.bank_b.issuer + "/authorize?")
    callback = (await proxy.http.get(deep_link, allow_redirects=False)).headers["Location"]
    await finish(world, login, await action(await proxy.call(callback), "call"))


async def test_bank_that_cannot_do_it(world_factory: WorldFactory) -> None:
    world: World = await world_factory(bank_a_overrides={"native": False})
    resp, _ = await world.proxy.native(acr_values=ACR_A)
    assert resp.status == 400
    assert (await resp.json())["error"] == "native_app2app_unsupported"


async def test_native_callback_uri_must_be_registered(world: World) -> None:
    for value in ["https://evil.example/app2app", None]:
        resp, _ = await world.proxy.native(acr_values=ACR_A, native_callback_uri=value)
        assert resp.status == 400
        body = await resp.json()
        assert body["error"] == "invalid_request"
        assert "native_callback_uri" in body["error_description"]


async def test_errors_for_the_client_are_a_call_to_its_redirect_uri(world: World) -> None:
    resp, login = await world.proxy.native(acr_values=ACR_A, scope="openid payments")
    url = await action(resp, "call")
    params = query_of(url)
    assert url.startswith(APP_REDIRECT + "?")
    assert (params["error"], params["state"]) == ("invalid_scope", login.state)
    # before the client is known: a 4xx JSON error, never a redirect
    unknown, _ = await world.proxy.native(client_id="nobody")
    assert unknown.status == 400
    assert (await unknown.json())["error"] == "invalid_client"


async def test_bank_refusal_comes_back_as_a_call(world: World) -> None:
    world.bank_a.deny = True
    resp, login = await world.proxy.native(acr_values=ACR_A)
    deep_link = await action(resp, "deep_link")
    callback = (await world.proxy.http.get(deep_link, allow_redirects=False)).headers["Location"]
    url = await action(await world.proxy.call(callback), "call")
    params = query_of(url)
    assert (params["error"], params["state"]) == ("access_denied", login.state)


async def test_pushed_request_on_the_native_endpoint(world: World) -> None:
    login, form = new_request(client_id=APP, acr_values=ACR_A)
    pushed = await (await world.proxy.post("/par", form)).json()
    resp = await world.proxy.post("/native/authorize", {
        "client_id": APP, "request_uri": pushed["request_uri"],
        "native_callback_uri": NATIVE_CALLBACK,
    })
    deep_link = await action(resp, "deep_link")
    callback = (await world.proxy.http.get(deep_link, allow_redirects=False)).headers["Location"]
    await finish(world, login, await action(await world.proxy.call(callback), "call"))


async def test_decoupled_bank_with_deep_link(world_factory: WorldFactory) -> None:
    world: World = await world_factory(ciba=True)
    world.ciba.ciba_deep_link = True
    world.ciba.ciba_interval = 1
    proxy = world.proxy
    resp, login = await proxy.native_pushed(acr_values=ACR_C, login_hint="alice")
    bank_app = await action(resp, "deep_link")
    decided = await proxy.http.post(bank_app + "/decide", data={"decision": "approve"},
                                    allow_redirects=False)
    resume = decided.headers["Location"]
    assert resume.startswith(f"{proxy.issuer}/resume/")
    await finish(world, login, await action(await proxy.call(resume), "call"), **SERVER_AUTH)


async def test_decoupled_bank_without_deep_link(world_factory: WorldFactory) -> None:
    world: World = await world_factory(ciba=True)
    world.ciba.ciba_interval = 1
    proxy = world.proxy
    resp, login = await proxy.native_pushed(acr_values=ACR_C, login_hint="alice")
    resume = await action(resp, "call")
    assert resume.startswith(f"{proxy.issuer}/resume/")
    # pending: the proxy holds the call about one interval, then says call again
    again = await action(await proxy.call(resume), "call")
    assert again == resume
    world.ciba.ciba_approve()
    await finish(world, login, await action(await proxy.call(resume), "call"), **SERVER_AUTH)
