"""Decoupled banks (CIBA poll mode, and BankID's app-authorize with its deep link):
the proxy polls only when asked (/resume, /authorize/status), at most once per
interval across instances, and sends the user back with a code or an error."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from tests.flows.harness import (
    ACR_A,
    ACR_C,
    RS_BANK,
    SERVER,
    SERVER_SECRET,
    Login,
    Proxy,
    World,
    WorldFactory,
    app_redirect_params,
    run_proxy,
)
from tests.ports import free_port

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
# BankID's device_info: URL-safe base64 of {"p":"ios","ma":"Apple","mo":"iPhone11,2"}
DEVICE_INFO = "eyJwIjoiaW9zIiwibWEiOiJBcHBsZSIsIm1vIjoiaVBob25lMTEsMiJ9"


async def ciba_world(world_factory: WorldFactory, interval: int = 1, **bank_c: Any) -> World:
    world: World = await world_factory(ciba=True, bank_c_overrides=bank_c)
    world.ciba.ciba_interval = interval
    return world


async def start(world: World, **overrides: str | None) -> tuple[str, Login]:
    """A browser login at bank C, pushed by the merchant backend (a request that names
    its user reaches a decoupled bank only so); the URL the proxy sent the browser to."""
    params: dict[str, str | None] = {"acr_values": ACR_C, "login_hint": "alice"}
    params.update(overrides)
    resp, login = await world.proxy.authorize_pushed(**params)
    assert resp.status == 302, await resp.text()
    return resp.headers["Location"], login


async def exchange(proxy: Proxy, login: Login) -> dict[str, Any]:
    resp = await proxy.exchange(login, client_id=SERVER, client_secret=SERVER_SECRET)
    tokens: dict[str, Any] = await resp.json()
    assert resp.status == 200, tokens
    return tokens


async def status(proxy: Proxy, resume_url: str) -> dict[str, Any]:
    handle = resume_url.rsplit("/", 1)[1]
    resp = await proxy.http.get(f"{proxy.issuer}/authorize/status/{handle}")
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def polls(world: World) -> int:
    return sum(1 for r in world.ciba.requests
               if r.path == "/token" and r.form.get("grant_type") == CIBA_GRANT)


async def test_ciba_approve(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory)
    url, login = await start(world, binding_message="A1B2")
    proxy = world.proxy
    assert url.startswith(f"{proxy.issuer}/resume/")
    sent = world.ciba.last("/bc-authorize").form
    assert sent["login_hint"] == "alice"
    assert sent["binding_message"] == "A1B2"
    assert sent["app_callback_uri"] == url
    assert sent["requested_expiry"] == "600"
    assert sent["scope"] == "openid profile"

    waiting = await proxy.http.get(url, allow_redirects=False)
    assert waiting.status == 200
    page = await waiting.text()
    # no refresh by itself (WCAG F41): a link checks again; the code to compare is shown
    assert 'http-equiv="refresh"' not in page
    assert f'<a class="action primary" href="{url}">Check again</a>' in page
    assert "Approve the login in the Bank C app" in page
    assert '<p class="code" aria-describedby="binding">A1B2</p>' in page
    assert await status(proxy, url) == {"status": "pending", "interval": 1}

    world.ciba.ciba_approve()
    await asyncio.sleep(1.1)
    assert await status(proxy, url) == {"status": "complete", "interval": 1}
    done = await proxy.http.get(url, allow_redirects=False)
    assert done.status == 302
    login.params = app_redirect_params(done)
    assert login.params["state"] == login.state
    assert login.params["iss"] == proxy.issuer
    tokens = await exchange(proxy, login)
    info = await proxy.introspect(tokens["access_token"], rs=RS_BANK)
    assert (info["acr"], info["bank_id"]) == (ACR_C, "bank-c")
    assert info["bank_access_token"]
    # the login is taken once: a browser coming back is told it has ended (no second
    # redirect, no code); an app asking for JSON gets the error
    again = await proxy.http.get(url, allow_redirects=False)
    assert again.status == 200 and "Location" not in again.headers
    assert "<h1>This login has ended</h1>" in await again.text()
    again = await proxy.call(url)
    assert again.status == 400 and (await again.json())["error"] == "invalid_request"


async def test_ciba_deny(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory, 1)
    world.ciba.ciba_decision = "deny"
    url, login = await start(world)
    assert (await status(world.proxy, url))["status"] == "failed"
    resp = await world.proxy.http.get(url, allow_redirects=False)
    assert resp.status == 302
    params = app_redirect_params(resp)
    assert (params["error"], params["state"]) == ("access_denied", login.state)


async def test_ciba_expires(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory)
    world.ciba.ciba_expires_in = 1
    url, _ = await start(world)
    assert (await status(world.proxy, url))["status"] == "pending"
    await asyncio.sleep(1.2)
    before = polls(world)
    assert (await status(world.proxy, url))["status"] == "failed"
    assert polls(world) == before  # expired: the proxy knows without asking the bank
    params = app_redirect_params(await world.proxy.http.get(url, allow_redirects=False))
    assert params["error"] == "access_denied"
    assert "expired" in params["error_description"]


async def test_ciba_slow_down_raises_the_interval(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory)
    world.ciba.ciba_slow_down = 1
    url, _ = await start(world)
    # CIBA §11: slow_down means the interval "MUST be increased by at least 5 seconds"
    assert await status(world.proxy, url) == {"status": "pending", "interval": 6}
    assert polls(world) == 1
    world.ciba.ciba_approve()
    await asyncio.sleep(1.2)
    # the old interval has passed, the new one has not: no poll yet
    assert (await status(world.proxy, url))["status"] == "pending"
    assert polls(world) == 1


async def test_bankid_deep_link_and_resume(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory, pass_through=("device_info",))
    world.ciba.ciba_deep_link = True
    url, login = await start(world, device_info=DEVICE_INFO, login_hint=None,
                             login_hint_token="permission-token")
    assert url.startswith(world.ciba.issuer + "/app2app/")
    sent = world.ciba.last("/bc-authorize").form
    assert sent["device_info"] == DEVICE_INFO
    assert sent["login_hint_token"] == "permission-token"
    assert "login_hint" not in sent

    # the bank app: approve, then it opens app_callback_uri, the proxy's /resume
    http = world.proxy.http
    decided = await http.post(url + "/decide", data={"decision": "approve"},
                              allow_redirects=False)
    assert decided.status == 302
    resume = decided.headers["Location"]
    assert resume.startswith(f"{world.proxy.issuer}/resume/")
    done = await http.get(resume, allow_redirects=False)
    assert done.status == 302
    login.params = app_redirect_params(done)
    await exchange(world.proxy, login)


async def test_interstitial_before_the_deep_link(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory, interstitial=True)
    world.ciba.ciba_deep_link = True
    resp, _ = await world.proxy.authorize_pushed(acr_values=ACR_C, login_hint="alice")
    assert resp.status == 200
    html = await resp.text()
    assert "Continue to Bank C" in html
    assert f'href="{world.ciba.issuer}/app2app/' in html


async def test_bank_issuing_only_an_id_token(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory)
    world.ciba.ciba_id_token_only = True
    world.ciba.ciba_decision = "approve"
    url, login = await start(world)
    done = await world.proxy.http.get(url, allow_redirects=False)
    login.params = app_redirect_params(done)
    tokens = await exchange(world.proxy, login)
    info = await world.proxy.introspect(tokens["access_token"], rs=RS_BANK)
    assert info["active"] is True
    assert "bank_access_token" not in info


async def test_refused_start_falls_back(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory, fallback_acr=ACR_A)
    world.ciba.ciba_refuse = "unknown_user_id"  # e.g. the device does not match the user
    resp, login = await world.proxy.authorize_pushed(acr_values=ACR_C, login_hint="alice")
    login.params = app_redirect_params(await world.proxy.follow(resp))
    tokens = await exchange(world.proxy, login)
    info = await world.proxy.introspect(tokens["access_token"])
    assert (info["acr"], info["bank_id"]) == (ACR_A, "bank-a")


async def test_refused_start_without_fallback(world_factory: WorldFactory) -> None:
    world = await ciba_world(world_factory)
    resp, login = await world.proxy.authorize(acr_values=ACR_C)  # no login_hint
    params = app_redirect_params(resp)
    assert (params["error"], params["state"]) == ("invalid_request", login.state)
    assert "login_hint" in params["error_description"]


async def test_two_instances_poll_the_bank_once_per_interval(
    world_factory: WorldFactory,
) -> None:
    world = await ciba_world(world_factory, interval=2)
    other = await world.another_proxy()
    url, _ = await start(world)
    assert polls(world) == 0

    async def burst() -> list[dict[str, Any]]:
        return await asyncio.gather(*(status(p, url) for p in [world.proxy, other] * 5))

    assert {s["status"] for s in await burst()} == {"pending"}
    assert polls(world) == 1
    assert {s["status"] for s in await burst()} == {"pending"}
    assert polls(world) == 1  # within the interval, on either instance: no poll
    world.ciba.ciba_approve()
    await asyncio.sleep(2.1)
    results = await burst()
    assert polls(world) == 2
    assert {s["status"] for s in results} <= {"pending", "complete"}
    assert (await status(other, url))["status"] == "complete"
    assert polls(world) == 2


async def test_status_of_an_unknown_login(world: World) -> None:
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/authorize/status/nope")
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_request"
    page = await world.proxy.http.get(f"{world.proxy.issuer}/resume/nope")
    assert page.status == 400
    assert page.content_type == "text/html"


async def test_a_login_at_a_bank_another_instance_no_longer_has(
    world_factory: WorldFactory,
) -> None:
    # a rolling config change: the login started on an instance that knew bank C, the
    # user comes back to one whose config removed it: a clean error, never a 500
    world = await ciba_world(world_factory)
    world.ciba.ciba_decision = "approve"
    url, login = await start(world)
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = dataclasses.replace(
        world.proxy.config, issuer=world.proxy.issuer,
        banks=tuple(b for b in world.proxy.config.banks if b.id != "bank-c"),
    )
    await world.stack.enter_async_context(run_proxy(config, port))
    other = Proxy(issuer, config, world.proxy.http)
    assert (await status(other, url))["status"] == "failed"
    resp = await other.http.get(url.replace(world.proxy.issuer, issuer),
                                allow_redirects=False)
    params = app_redirect_params(resp)
    assert (params["error"], params["state"]) == ("server_error", login.state)
