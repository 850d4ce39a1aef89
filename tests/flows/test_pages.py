"""The proxy's pages as a browser reloads them and comes back to them (issue 18): each
page of a login has a URL of its own that shows the same login however often it is
opened (post/redirect/get), and never starts another; pages of an ended login, and
error pages, have a way forward; a 404 is a plain page, not a failed login."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from urllib.parse import urlencode

import aiohttp

from tests.flows.harness import (
    ACR_C,
    APP,
    SERVER,
    Proxy,
    World,
    WorldFactory,
    app_redirect_params,
    new_request,
    run_proxy,
)
from tests.ports import free_port

HOME = "https://shop.merchant.example/"


async def get(proxy: Proxy, url: str) -> aiohttp.ClientResponse:
    resp = await proxy.http.get(url, allow_redirects=False)
    await resp.read()
    return resp


def hrefs(html: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', html)]


async def with_homes(world: World) -> Proxy:
    """A second instance (the same issuer and store) whose clients have a name and a home
    page (client_uri)."""
    config = world.proxy.config
    clients = tuple(dataclasses.replace(c, client_name="Merchant Shop", client_uri=HOME)
                    for c in config.clients)
    port = free_port()
    config = dataclasses.replace(config, clients=clients)
    await world.stack.enter_async_context(run_proxy(config, port))
    return Proxy(f"http://127.0.0.1:{port}", config, world.proxy.http)


async def test_the_picker_is_a_page_of_its_own_that_a_reload_shows_again(
    world: World,
) -> None:
    proxy = world.proxy
    _, params = new_request(client_id=APP)
    # POST /authorize: post/redirect/get, so Back never asks to send the form again
    posted = await proxy.http.post(f"{proxy.issuer}/authorize", data=params,
                                   allow_redirects=False)
    assert posted.status == 303
    page_url = posted.headers["Location"]
    assert re.fullmatch(re.escape(proxy.issuer) + r"/authorize/pick/[A-Za-z0-9_-]{43}",
                        page_url)
    first, again = await get(proxy, page_url), await get(proxy, page_url)
    assert first.status == again.status == 200
    assert await first.text() == await again.text()  # the same choice, not a new one
    links = [h for h in hrefs(await first.text()) if h.startswith(page_url + "/")]
    assert sorted(link.rsplit("/", 1)[1] for link in links) == ["bank-a", "bank-b"]

    world.bank_a.auto_approve = False
    picked = await get(proxy, page_url + "/bank-a")
    assert picked.status == 302
    bank_url = picked.headers["Location"]
    # Back to the picker: the choice made, a link on to the same login; no second login
    chosen = await get(proxy, page_url)
    html = await chosen.text()
    assert chosen.status == 200 and "<h1>You chose bank-a</h1>" in html
    assert bank_url in hrefs(html)
    assert not any("/authorize/pick/" in h for h in hrefs(html))
    # the login ends (the bank approves): the picker says so
    world.bank_a.auto_approve = True
    final = await proxy.follow(await get(proxy, bank_url))
    assert "code" in app_redirect_params(final)
    ended = await get(proxy, page_url)
    assert "<h1>This login has ended</h1>" in await ended.text()


async def test_a_reload_of_the_interstitial_starts_no_second_login(
    world_factory: WorldFactory,
) -> None:
    """The decoupled bank with its app's link: three loads of the interstitial, one
    push to the user's phone, and the code to compare shown each time."""
    world: World = await world_factory(ciba=True, bank_c_overrides={"interstitial": True})
    world.ciba.ciba_deep_link = True
    world.ciba.ciba_interval = 1
    proxy = world.proxy
    request_uri, login = await proxy.push(acr_values=ACR_C, login_hint="alice",
                                          binding_message="DEMO-1")
    start = await get(proxy, f"{proxy.issuer}/authorize?" + urlencode(
        {"client_id": SERVER, "request_uri": request_uri}))
    assert start.status == 303
    page_url = start.headers["Location"]
    assert page_url.startswith(f"{proxy.issuer}/authorize/continue/")
    pages = [await (await get(proxy, page_url)).text() for _ in range(3)]
    assert pages[0] == pages[1] == pages[2]
    assert len([r for r in world.ciba.requests if r.path == "/bc-authorize"]) == 1
    html = pages[0]
    assert "<h1>Continue to Bank C</h1>" in html
    assert '<p class="code" aria-describedby="binding">DEMO-1</p>' in html
    app_link, waiting = hrefs(html)
    assert app_link.startswith(world.ciba.issuer + "/app2app/")
    assert waiting.startswith(f"{proxy.issuer}/resume/")
    # the waiting page shows the code too; approving there finishes the login
    wait = await get(proxy, waiting)
    assert "DEMO-1" in await wait.text()
    world.ciba.ciba_approve()
    await asyncio.sleep(1.1)  # one poll per interval
    done = await proxy.follow(await get(proxy, waiting))
    assert app_redirect_params(done)["state"] == login.state
    # then the interstitial says the login has ended, and starts nothing; so does the
    # waiting page (Back to it), while an unknown handle is still an error
    ended = await (await get(proxy, page_url)).text()
    assert "<h1>This login has ended</h1>" in ended
    again = await get(proxy, waiting)
    assert again.status == 200 and "<h1>This login has ended</h1>" in await again.text()
    unknown = await get(proxy, f"{proxy.issuer}/resume/unknown-handle")
    assert unknown.status == 400 and "<code>invalid_request</code>" in await unknown.text()
    assert len([r for r in world.ciba.requests if r.path == "/bc-authorize"]) == 1


async def test_error_pages_link_back_to_the_clients_home(world: World) -> None:
    proxy = await with_homes(world)
    # a registered client with an unregistered redirect_uri: an error page (never a
    # redirect) whose way forward is the client's home page
    resp, _ = await proxy.authorize(client_id=APP, redirect_uri="https://evil.example/cb")
    html = await resp.text()
    assert resp.status == 400 and "Location" not in resp.headers
    assert f'<a class="action" href="{HOME}">Back to Merchant Shop</a>' in html
    assert "<code>invalid_request</code>" in html
    # an unknown client: no home to go back to; the page says where to start again
    resp, _ = await proxy.authorize(client_id="nobody")
    html = await resp.text()
    assert "<code>invalid_client</code>" in html and HOME not in html
    assert "Go back to the app or website where you started" in html
    # an ended login's picker links back home too
    resp, _ = await proxy.authorize(client_id=APP)
    page_url = str(resp.url)
    assert page_url.startswith(proxy.issuer)
    final = await proxy.follow(await get(proxy, page_url + "/bank-b"))
    assert "code" in app_redirect_params(final)
    html = await (await get(proxy, page_url)).text()
    assert "<h1>This login has ended</h1>" in html
    assert f'<a class="action" href="{HOME}">Back to Merchant Shop</a>' in html


async def test_a_404_is_a_plain_page_not_a_failed_login(world: World) -> None:
    proxy = world.proxy
    for path in ("/", "/nothing-here", "/authorize/continue/nope/extra"):
        resp = await proxy.http.get(proxy.issuer + path, headers={"Accept": "text/html"})
        html = await resp.text()
        assert resp.status == 404, path
        assert "<h1>Page not found</h1>" in html, path
        assert "could not complete the login" not in html
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    # an API caller still gets JSON
    resp = await proxy.http.get(proxy.issuer + "/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["error"] == "invalid_request"


async def test_an_unknown_page_handle_is_an_error_page(world: World) -> None:
    proxy = world.proxy
    for path in ("/authorize/pick/nope", "/authorize/continue/nope"):
        resp = await get(proxy, proxy.issuer + path)
        assert resp.status == 400, path
        assert "<code>invalid_request</code>" in await resp.text()
        assert "Location" not in resp.headers
