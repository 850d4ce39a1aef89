"""Around the login: the bank picker, fallback to another bank, the one-tap
interstitial, and the app association files built from ``apps:``."""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser

import aiohttp

from proxy.config.settings import StoreSettings
from tests.flows.harness import (
    ACR_A,
    ACR_B,
    APP,
    Login,
    Proxy,
    World,
    WorldFactory,
    app_redirect_params,
)


class Page(HTMLParser):
    """The picker: its links (one per bank) and their labels; and any form (none)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms = 0
        self.links: list[str] = []
        self.labels: dict[str, str] = {}  # href -> label
        self._link: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms += 1
        elif tag == "a":
            self.links.append(a["href"])
            self._link = a["href"]

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self.labels[self._link] = data.strip()
            self._link = None

    def bank_links(self, issuer: str) -> dict[str, str]:
        """bank id -> its link; every link is GET /authorize/pick/{pick_id}/{bank_id}."""
        found = {}
        for link in self.links:
            prefix, pick_id, bank_id = link.rsplit("/", 2)
            assert prefix == f"{issuer}/authorize/pick", link
            assert len(pick_id) == 43, link
            found[bank_id] = link
        return found


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


async def picker(world: World, **overrides: str | None) -> tuple[dict[str, str], Login]:
    """The APP client names no bank: the picker's links, by bank id."""
    resp, login = await world.proxy.authorize(client_id=APP, **overrides)
    assert resp.status == 200, await resp.text()
    return parse(await resp.text()).bank_links(world.proxy.issuer), login


async def get(proxy: Proxy, url: str) -> aiohttp.ClientResponse:
    resp = await proxy.http.get(url, allow_redirects=False)
    await resp.read()
    return resp


async def test_picker_lists_the_clients_banks_and_logs_in_with_the_choice(
    world: World,
) -> None:
    proxy = world.proxy
    resp, login = await proxy.authorize(client_id=APP)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "frame-ancestors 'none'", "form-action 'none'"):
        assert directive in csp
    html = await resp.text()
    assert '<html lang="en">' in html and "<h1>Choose your bank</h1>" in html
    page = parse(html)
    assert page.forms == 0  # plain links: no form submission that CSP could block
    links = page.bank_links(proxy.issuer)
    assert set(links) == {"bank-a", "bank-b"}
    assert {page.labels[link] for link in links.values()} == {"bank-a", "bank-b"}
    assert links["bank-a"].rsplit("/", 2)[1] == links["bank-b"].rsplit("/", 2)[1]

    picked = await get(proxy, links["bank-b"])
    assert picked.status == 302
    assert picked.headers["Location"].startswith(world.bank_b.issuer + "/authorize?")
    final = await proxy.follow(picked)
    login.params = app_redirect_params(final)
    tokens = await (await proxy.exchange(login, client_id=APP)).json()
    info = await proxy.introspect(tokens["access_token"])
    assert (info["acr"], info["bank_id"]) == (ACR_B, "bank-b")


async def test_picker_also_when_no_requested_acr_value_matches(world: World) -> None:
    links, _ = await picker(world, acr_values="urn:unknown")
    assert set(links) == {"bank-a", "bank-b"}


async def test_picker_answers_that_do_not_fit(world: World) -> None:
    proxy = world.proxy
    links, login = await picker(world)
    # a bank that was not offered: the app hears of it at its redirect_uri
    wrong = await get(proxy, links["bank-a"].replace("/bank-a", "/bank-z"))
    assert wrong.status == 302
    params = app_redirect_params(wrong)
    assert (params["error"], params["state"]) == ("invalid_request", login.state)
    # an unknown choice id: an HTML page, no redirect
    unknown = await get(proxy, f"{proxy.issuer}/authorize/pick/nope/bank-a")
    assert unknown.status == 400
    assert "<code>invalid_request</code>" in await unknown.text()
    # the browser-less endpoint does not take a browser choice
    links, _ = await picker(world)
    pick_id = links["bank-a"].rsplit("/", 2)[1]
    native = await proxy.post("/native/authorize/pick", {"id": pick_id, "bank": "bank-a"})
    assert native.status == 400
    assert (await native.json())["error"] == "invalid_request"
    # a pick is a GET without side effects for HEAD (none is routed) or POST
    links, _ = await picker(world)
    for method in ("HEAD", "POST"):
        resp = await proxy.http.request(method, links["bank-a"], allow_redirects=False)
        assert resp.status == 405, method
    assert (await get(proxy, links["bank-a"])).status == 302  # still unused


async def test_a_choice_is_taken_once(world: World) -> None:
    proxy = world.proxy
    links, _ = await picker(world)
    first = await get(proxy, links["bank-b"])
    assert first.headers["Location"].startswith(world.bank_b.issuer + "/authorize?")
    # the same link again, or the other bank of the same page: refused, no bank login
    for link in (links["bank-b"], links["bank-a"]):
        again = await get(proxy, link)
        assert again.status == 400
        text = await again.text()
        assert "<code>invalid_request</code>" in text and "already made" in text
    # the browser-less prompt's answer too
    resp, _ = await proxy.native()
    prompt_id = (await resp.json())["id"]
    answered = await proxy.post("/native/authorize/pick", {"id": prompt_id, "bank": "bank-b"})
    assert (answered.status, (await answered.json())["action"]) == (200, "deep_link")
    again = await proxy.post("/native/authorize/pick", {"id": prompt_id, "bank": "bank-b"})
    assert again.status == 400
    body = await again.json()
    assert (body["error"], body["error_description"]) == (
        "invalid_request", "this choice was already made; start again")


async def concurrent_picks(world: World, link: str, n: int = 8) -> list[aiohttp.ClientResponse]:
    return list(await asyncio.gather(*(get(world.proxy, link) for _ in range(n))))


async def test_concurrent_picks_start_one_login_on_redis(world_factory: WorldFactory) -> None:
    world: World = await world_factory(ciba=True)
    # the merchant backend pushes a request naming the user and no bank: the picker;
    # eight picks of the decoupled bank at once: one push to the user's phone
    resp, _ = await world.proxy.authorize_pushed(login_hint="alice")
    links = parse(await resp.text()).bank_links(world.proxy.issuer)
    answers = await concurrent_picks(world, links["bank-c"])
    assert sorted(r.status for r in answers) == [302] + [400] * 7
    assert len([r for r in world.ciba.requests if r.path == "/bc-authorize"]) == 1


async def test_concurrent_picks_start_one_login_on_the_memory_store(
    world_factory: WorldFactory,
) -> None:
    world: World = await world_factory(store=StoreSettings(url="memory://"))
    links, _ = await picker(world)
    answers = await concurrent_picks(world, links["bank-b"])
    assert sorted(r.status for r in answers) == [302] + [400] * 7
    started = [r for r in answers if r.status == 302]
    assert started[0].headers["Location"].startswith(world.bank_b.issuer + "/authorize?")


async def test_a_client_with_one_bank_gets_no_picker(world: World) -> None:
    # merchant-ios has default_acr: it goes straight to bank A
    resp, _ = await world.proxy.authorize()
    assert resp.status == 302
    assert resp.headers["Location"].startswith(world.bank_a.issuer)


async def test_fallback_when_app2app_cannot_start(world_factory: WorldFactory) -> None:
    # bank A cannot be reached; its fallback_acr sends the login to bank B instead
    world: World = await world_factory(bank_a_overrides={
        "issuer": "http://127.0.0.1:9", "fallback_acr": ACR_B, "authentication_level": "qes",
    })
    tokens = await world.proxy.tokens(acr_values=ACR_A)
    info = await world.proxy.introspect(tokens["access_token"])
    assert (info["acr"], info["bank_id"], info["authentication_level"]) == (
        ACR_B, "bank-b", "sca")


async def test_no_fallback_means_the_error_reaches_the_app(world_factory: WorldFactory) -> None:
    world: World = await world_factory(bank_a_overrides={"issuer": "http://127.0.0.1:9"})
    resp, login = await world.proxy.authorize(acr_values=ACR_A)
    assert resp.status == 302
    params = app_redirect_params(resp)
    assert (params["error"], params["state"]) == ("temporarily_unavailable", login.state)


async def test_interstitial_is_one_tap_to_the_bank(world_factory: WorldFactory) -> None:
    world: World = await world_factory(
        bank_a_overrides={"interstitial": True, "name": "Bank A <Mobile>"})
    resp, login = await world.proxy.authorize()
    assert resp.status == 200
    html = await resp.text()
    assert "Continue to Bank A &lt;Mobile&gt;" in html
    links = parse(html).links
    assert len(links) == 1
    bank_url = links[0].replace("&amp;", "&")
    assert bank_url.startswith(world.bank_a.issuer + "/authorize?")
    tapped = await world.proxy.http.get(bank_url, allow_redirects=False)
    final = await world.proxy.follow(tapped)
    assert app_redirect_params(final)["state"] == login.state


async def test_app_association_files_come_from_config(world: World) -> None:
    http, issuer = world.proxy.http, world.proxy.issuer
    aasa = await (await http.get(f"{issuer}/.well-known/apple-app-site-association")).json()
    assert aasa == {"applinks": {"details": [{
        "appIDs": ["TEAMID.com.merchant.app"],
        "components": [{"/": "/callback/*"}, {"/": "/resume/*"}],
    }]}}
    links = await (await http.get(f"{issuer}/.well-known/assetlinks.json")).json()
    assert links == [{
        "relation": ["delegate_permission/common.handle_all_urls"],
        "target": {"namespace": "android_app", "package_name": "com.merchant.app",
                   "sha256_cert_fingerprints": [":".join(["AB"] * 32)]},
    }]
