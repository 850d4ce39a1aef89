"""Every page the proxy shows, in Chromium at a phone's and a desktop's size (and the
narrowest phone, 320 px): it fits the window, logs no console error and no CSP
violation, and axe-core finds nothing; a reload or Back shows the same login and
starts no other (issue 18)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.browser.conftest import NARROWEST, SIZES, Chromium, Tab
from tests.flows.harness import ACR_C, APP, SERVER, World, WorldFactory, new_request


async def world_with_every_page(world_factory: WorldFactory) -> World:
    world: World = await world_factory(ciba=True, bank_c_overrides={"interstitial": True})
    world.bank_a.auto_approve = False
    world.ciba.ciba_deep_link = True
    world.ciba.ciba_interval = 1
    return world


def bank_c_requests(world: World) -> int:
    return len([r for r in world.ciba.requests if r.path == "/bc-authorize"])


@pytest.mark.parametrize("size", [*SIZES, "narrowest"])
async def test_every_page_of_the_proxy(
    world_factory: WorldFactory, chromium: Chromium, size: str
) -> None:
    world = await world_with_every_page(world_factory)
    proxy = world.proxy
    _, params = new_request(client_id=APP)
    app_request = f"{proxy.issuer}/authorize?{urlencode(params)}"
    request_uri, _ = await proxy.push(acr_values=ACR_C, login_hint="alice",
                                      binding_message="DEMO-1")
    decoupled = f"{proxy.issuer}/authorize?" + urlencode(
        {"client_id": SERVER, "request_uri": request_uri})
    request_uri, _ = await proxy.push(acr_values=ACR_C, login_hint="bob")
    waiting_login = f"{proxy.issuer}/authorize?" + urlencode(
        {"client_id": SERVER, "request_uri": request_uri})

    def every_page(tab: Tab) -> tuple[str, str]:
        page = tab.page
        # the picker, reloaded: the same page
        page.goto(app_request)
        picker = page.url
        assert page.locator("h1").inner_text() == "Choose your bank"
        tab.check("the picker")
        page.reload()
        assert page.url == picker and page.locator("h1").inner_text() == "Choose your bank"
        # a choice: the bank's page; Back: the picker shows the choice, links on to it
        page.get_by_role("link", name="bank-a").click()
        page.wait_for_url(world.bank_a.issuer + "/**")
        page.go_back()
        assert page.url == picker
        assert page.locator("h1").inner_text() == "You chose bank-a"
        tab.check("the picker, chosen")
        # the decoupled bank's interstitial, with the code to compare; reloaded twice
        page.goto(decoupled)
        interstitial = page.url
        assert "/authorize/continue/" in interstitial
        assert page.locator(".code").inner_text() == "DEMO-1"
        tab.check("the interstitial")
        page.reload()
        page.reload()
        assert page.url == interstitial
        # its second link: the waiting page, with the code again
        page.get_by_role("link", name="I approved on another device").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Waiting for your bank"
        assert page.locator(".code").inner_text() == "DEMO-1"
        tab.check("the waiting page")
        # a login that has ended: its pages say so
        page.goto(waiting_login)
        waiting = page.url
        page.get_by_role("link", name="I approved on another device").click()
        page.wait_for_load_state()
        tab.check("the waiting page without a code")
        # errors: an unknown client (no way back to name), an unknown page
        page.goto(f"{proxy.issuer}/authorize?client_id=nobody")
        assert page.locator("h1").inner_text() == "We could not complete the login"
        tab.console.clear()  # the 400 itself is logged as a failed load
        assert tab.accessibility_violations() == []
        assert tab.overflow() <= 0
        page.goto(f"{proxy.issuer}/")
        assert page.locator("h1").inner_text() == "Page not found"
        tab.console.clear()
        assert tab.accessibility_violations() == []
        return interstitial, waiting

    window = NARROWEST if size == "narrowest" else SIZES[size]
    await chromium.run(every_page, size=window)
    # three loads of the interstitial, one push to the user's phone (and one for the
    # other login)
    assert bank_c_requests(world) == 2


async def test_the_ended_login_pages(world_factory: WorldFactory, chromium: Chromium) -> None:
    """Back from the merchant's app after a decoupled login: the interstitial and the
    picker say the login has ended; nothing to click starts it again."""
    world = await world_with_every_page(world_factory)
    proxy = world.proxy
    request_uri, _ = await proxy.push(login_hint="alice", binding_message="A-1")
    start = f"{proxy.issuer}/authorize?" + urlencode(
        {"client_id": SERVER, "request_uri": request_uri})

    def login_then_back(tab: Tab) -> list[str]:
        page = tab.page
        page.goto(start)
        page.get_by_role("link", name="Bank C").click()
        page.wait_for_url("**/authorize/continue/*")
        page.get_by_role("link", name="Continue to Bank C").click()
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url("https://app.merchant.example/**")
        headings = []
        for _ in range(3):  # the bank app's page, the interstitial, the picker
            page.go_back()
            page.wait_for_load_state()
            headings.append(page.locator("h1").inner_text())
            tab.check(f"back to {page.url}")
        return headings

    headings = await chromium.run(login_then_back, size=SIZES["phone"])
    assert headings == ["You already answered", "This login has ended", "This login has ended"]
    assert bank_c_requests(world) == 1
