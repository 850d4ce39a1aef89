"""Around the login: the bank picker, fallback to another bank, the one-tap
interstitial, and the app association files built from ``apps:``."""

from __future__ import annotations

from html.parser import HTMLParser

from tests.flows.harness import (
    ACR_A,
    ACR_B,
    APP,
    World,
    WorldFactory,
    app_redirect_params,
)


class Form(HTMLParser):
    """The picker's form: its action, hidden fields and the banks' buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.hidden: dict[str, str] = {}
        self.buttons: dict[str, str] = {}  # value -> label
        self.links: list[str] = []
        self._button: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a["action"]
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a["value"]
        elif tag == "button":
            self._button = a["value"]
        elif tag == "a":
            self.links.append(a["href"])

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self.buttons[self._button] = data.strip()
            self._button = None


def parse(html: str) -> Form:
    form = Form()
    form.feed(html)
    return form


async def test_picker_lists_the_clients_banks_and_logs_in_with_the_choice(
    world: World,
) -> None:
    proxy = world.proxy
    resp, login = await proxy.authorize(client_id=APP)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    html = await resp.text()
    assert '<html lang="en">' in html and "<h1>Choose your bank</h1>" in html
    form = parse(html)
    assert form.action == f"{proxy.issuer}/authorize/pick"
    assert form.buttons == {"bank-a": "bank-a", "bank-b": "bank-b"}

    picked = await proxy.post("/authorize/pick", {**form.hidden, "bank": "bank-b"})
    assert picked.status == 302
    assert picked.headers["Location"].startswith(world.bank_b.issuer + "/authorize?")
    final = await proxy.follow(picked)
    login.params = app_redirect_params(final)
    tokens = await (await proxy.exchange(login, client_id=APP)).json()
    info = await proxy.introspect(tokens["access_token"])
    assert (info["acr"], info["bank_id"]) == (ACR_B, "bank-b")


async def test_picker_also_when_no_requested_acr_value_matches(world: World) -> None:
    resp, _ = await world.proxy.authorize(client_id=APP, acr_values="urn:unknown")
    assert resp.status == 200
    assert set(parse(await resp.text()).buttons) == {"bank-a", "bank-b"}


async def test_picker_answers_that_do_not_fit(world: World) -> None:
    proxy = world.proxy
    resp, login = await proxy.authorize(client_id=APP)
    form = parse(await resp.text())
    # a bank that was not offered: the app hears of it at its redirect_uri
    wrong = await proxy.post("/authorize/pick", {**form.hidden, "bank": "bank-z"})
    assert wrong.status == 302
    params = app_redirect_params(wrong)
    assert (params["error"], params["state"]) == ("invalid_request", login.state)
    # an unknown choice id: an HTML page, no redirect
    unknown = await proxy.post("/authorize/pick", {"id": "nope", "bank": "bank-a"})
    assert unknown.status == 400
    assert "<code>invalid_request</code>" in await unknown.text()
    # the browser-less endpoint does not take a browser choice
    native = await proxy.post("/native/authorize/pick", {**form.hidden, "bank": "bank-a"})
    assert native.status == 400
    assert (await native.json())["error"] == "invalid_request"


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
