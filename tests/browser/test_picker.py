"""The bank picker in a real browser (Chromium): every kind of login starts from it.

A real bank is always another origin; here the sandbox banks listen on other ports
of 127.0.0.1, which are other origins too. A form posted to the proxy and answered
with a redirect to another origin is blocked by Chromium under CSP ``form-action
'self'``; the picker is links, and its pages allow no form at all. Every step is
checked for where the browser really arrived and for CSP violations in the console.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from tests.browser.conftest import Chromium, Tab
from tests.flows.harness import APP, APP_REDIRECT, SERVER, World, WorldFactory, new_request


async def world_with_every_kind(world_factory: WorldFactory) -> World:
    """Bank A (redirect, stops at its consent page), bank B (redirect, approves at
    once), bank C (decoupled, with the one-tap interstitial before its app's link)."""
    world: World = await world_factory(ciba=True, bank_c_overrides={"interstitial": True})
    world.bank_a.auto_approve = False
    world.ciba.ciba_interval = 1
    return world


def choose(tab: Tab, start_url: str, bank_name: str) -> None:
    """Open the authorization request, see the picker, choose a bank as a user does."""
    tab.page.goto(start_url)
    assert tab.page.locator("h1").inner_text() == "Choose your bank"
    tab.page.get_by_text(bank_name, exact=True).click()
    tab.page.wait_for_load_state()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_the_picker_starts_every_kind_of_login(
    world_factory: WorldFactory, chromium: Chromium
) -> None:
    world = await world_with_every_kind(world_factory)
    proxy = world.proxy

    def app_request() -> str:
        """A public app naming no bank: the picker offers bank-a, bank-b and Bank C."""
        _, params = new_request(client_id=APP, state="st-app")
        return f"{proxy.issuer}/authorize?{urlencode(params)}"

    # a redirect bank: the browser arrives at the bank's own page (another origin)
    def redirect_bank(tab: Tab) -> tuple[str, str, list[str]]:
        choose(tab, app_request(), "bank-a")
        return tab.page.url, tab.page.content(), tab.csp_violations()

    url, html, violations = await chromium.run(redirect_bank)
    assert url.startswith(world.bank_a.issuer + "/authorize?"), url
    assert "Approve" in html
    assert violations == []

    # a redirect bank that approves at once: on through /callback to the merchant app
    def round_trip(tab: Tab) -> tuple[str, list[str]]:
        choose(tab, app_request(), "bank-b")
        tab.page.wait_for_url(APP_REDIRECT + "?*")
        return tab.page.url, tab.csp_violations()

    url, violations = await chromium.run(round_trip)
    params = query(url)
    assert params["code"].startswith("a2a_ac_") and params["state"] == "st-app"
    assert violations == []

    # a bank whose start fails (the decoupled bank needs a login_hint, which a bare app
    # request may not send it): back at the merchant's redirect_uri with the error
    def failed_start(tab: Tab) -> tuple[str, list[str]]:
        choose(tab, app_request(), "Bank C")
        tab.page.wait_for_url(APP_REDIRECT + "?*")
        return tab.page.url, tab.csp_violations()

    url, violations = await chromium.run(failed_start)
    params = query(url)
    assert (params["error"], params["state"], params["iss"]) == (
        "invalid_request", "st-app", proxy.issuer)
    assert violations == []

    # a decoupled bank, from the merchant backend's pushed request: the waiting page
    async def pushed_start() -> str:
        request_uri, _ = await proxy.push(login_hint="alice", binding_message="A1B2")
        return f"{proxy.issuer}/authorize?" + urlencode(
            {"client_id": SERVER, "request_uri": request_uri})

    start = await pushed_start()

    def decoupled_bank(tab: Tab) -> tuple[str, str, list[str]]:
        choose(tab, start, "Bank C")
        return tab.page.url, tab.page.locator("h1").inner_text(), tab.csp_violations()

    url, heading, violations = await chromium.run(decoupled_bank)
    assert url.startswith(f"{proxy.issuer}/resume/"), url
    assert heading == "Waiting for your bank"
    assert violations == []

    # a decoupled bank with its app's universal link: the interstitial, one tap, the app
    world.ciba.ciba_deep_link = True
    start = await pushed_start()

    def interstitial(tab: Tab) -> tuple[str, str, str, list[str]]:
        choose(tab, start, "Bank C")
        heading = tab.page.locator("h1").inner_text()
        tab.page.get_by_role("link", name="Continue to Bank C").click()
        tab.page.wait_for_load_state()
        return heading, tab.page.url, tab.page.content(), tab.csp_violations()

    heading, url, html, violations = await chromium.run(interstitial)
    assert heading == "Continue to Bank C"
    assert url.startswith(world.ciba.issuer + "/app2app/"), url
    assert "A1B2" in html  # the bank app shows the binding message
    assert violations == []


async def test_a_choice_made_twice_is_refused_in_the_browser(
    world_factory: WorldFactory, chromium: Chromium
) -> None:
    """Back to the picker page from the bank (the page as it was, from history) and
    choose again: the choice is used up; the proxy says so on its error page."""
    world = await world_with_every_kind(world_factory)
    proxy = world.proxy
    resp, _ = await proxy.authorize(client_id=APP)
    picker = await resp.text()

    def twice(tab: Tab) -> tuple[str, str, list[str]]:
        tab.page.route(f"{proxy.issuer}/picker-copy", lambda route: route.fulfill(
            status=200, content_type="text/html", body=picker))
        tab.page.goto(f"{proxy.issuer}/picker-copy")
        tab.page.get_by_text("bank-a", exact=True).click()
        tab.page.wait_for_url(world.bank_a.issuer + "/**")
        tab.page.goto(f"{proxy.issuer}/picker-copy")
        tab.page.get_by_text("bank-b", exact=True).click()
        tab.page.wait_for_load_state()
        return tab.page.url, tab.page.content(), tab.csp_violations()

    url, html, violations = await chromium.run(twice)
    assert url.startswith(f"{proxy.issuer}/authorize/pick/"), url
    assert "<code>invalid_request</code>" in html and "already made" in html
    assert violations == []
