"""The whole demo walked in Chromium as a user clicks through it, at a phone's and a
desktop's size: the playground's landing page, the bank picker, a redirect login, a
decoupled login (its interstitial reloaded), a denied login, itsme, Back after a
login, the buttons that refresh, revoke and introspect, and the browser-less flow.
Every page fits the window, logs no console error and passes axe-core.

The README's screenshots (docs/screenshots/) are taken here, so they show the demo as
it is: ``scripts/screenshots`` writes them there (a plain run keeps its own copies).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.config import load_config
from proxy.ops.demo import DEMO_ENV, _prepare, demo_servers, use_ports
from tests.browser.conftest import SIZES, Chromium, Tab
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """`app2app-proxy demo` on free ports; the URL it prints to start."""
    for name in (*DEMO_ENV, "PORT", "ISSUER", "SANDBOX_ISSUER", "DEMO_APP_REDIRECT",
                 "DEMO_APP_HOME"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(ROOT / "docs" / "schemas", tmp_path / "docs" / "schemas")
    use_ports(free_port(), free_port(), free_port())
    _prepare(tmp_path / "config.yaml")
    async with demo_servers(load_config(tmp_path / "config.yaml")) as start_url:
        yield start_url


def h1(tab: Tab) -> str:
    return tab.page.locator("h1").inner_text()


def follow(tab: Tab, role: str, name: str, where: str) -> str:
    """Click the link or button ``name``, wait for the page, check it; its heading."""
    getter = tab.page.get_by_role(role, name=name, exact=True)  # type: ignore[arg-type]
    getter.first.click()
    tab.page.wait_for_load_state()
    tab.check(where)
    return h1(tab)


@pytest.mark.parametrize("size", list(SIZES))
async def test_the_demo_walked_in_a_browser(demo: str, chromium: Chromium, size: str) -> None:
    phone = size == "phone"

    def walk(tab: Tab) -> list[str]:
        page = tab.page
        seen = []
        page.goto(demo)
        tab.check("the landing page")
        if not phone:
            tab.screenshot("playground-landing")
        # picker -> the bank's website -> Approve -> what the login showed
        seen.append(follow(tab, "link", "Log in: choose a bank", "the picker"))
        if phone:
            tab.screenshot("picker-phone")
        seen.append(follow(tab, "link", "Sandbox Bank Log in on the bank's website",
                           "the bank's consent page"))
        bank = page.url.split("/authorize")[0]
        seen.append(follow(tab, "button", "Approve", "the login's page"))
        assert page.get_by_text("signature valid").count() >= 1
        if not phone:
            tab.screenshot("playground-login")
        # the buttons; then Back: the bank's page and the picker, both answered
        follow(tab, "button", "Refresh the tokens", "after a refresh")
        follow(tab, "button", "Revoke the grant", "after the revocation")
        assert '"active": false' in page.locator("#after ~ pre").last.inner_text()
        follow(tab, "button", "Introspect again", "after introspecting again")
        while not page.url.startswith(bank):  # the buttons' pages, the login's own
            page.go_back()
        page.wait_for_load_state()
        seen.append(h1(tab))
        tab.check("Back to the bank's page")
        page.go_back()
        page.wait_for_load_state()
        seen.append(h1(tab))
        tab.check("Back to the picker")

        # picker -> the decoupled bank: its interstitial with the code, reloaded, then
        # its app
        page.goto(demo)
        follow(tab, "link", "Log in: choose a bank", "the picker again")
        follow(tab, "link", "Sandbox Bank Approve in the Sandbox Bank app", "the interstitial")
        interstitial = page.url
        code = page.locator(".code").inner_text()
        page.reload()
        page.reload()
        assert page.url == interstitial and page.locator(".code").inner_text() == code
        if phone:
            tab.screenshot("interstitial-phone")
        follow(tab, "link", "Continue to Sandbox Bank", "the bank's app")
        assert code in page.content()  # the bank's app shows the same code
        seen.append(follow(tab, "button", "Approve", "the decoupled login's page"))
        # three loads of the interstitial, one push to the user's phone
        assert page.content().count("/bc-authorize</code>") == 1

        # Deny at the bank (a login started for one bank, no picker): the error reaches
        # Demo Shop
        page.goto(demo)
        follow(tab, "link", "Log in with Sandbox Bank (redirect)",
               "the bank's consent page again")
        seen.append(follow(tab, "button", "Deny", "the denied login's page"))
        assert "access_denied" in page.content()

        # itsme through the sandbox broker
        page.goto(demo)
        follow(tab, "link", "Log in with itsme (eID session)", "the itsme app")
        seen.append(follow(tab, "button", "Approve", "the itsme login's page"))

        # the browser-less flow, one button per step
        page.goto(demo)
        follow(tab, "link", "The browser-less flow, step by step", "the browser-less start")
        follow(tab, "button", "Start: the backend pushes the request", "its first step")
        for name in ("Next: ask the proxy for the next step", "Next: choose Sandbox Bank",
                     "Next: approve in the bank's app",
                     "Next: call the URL the bank's app opened", "Next: redeem the code"):
            follow(tab, "button", name, name)
        seen.append(page.locator("h2").last.inner_text())
        return seen

    seen = await chromium.run(walk, size=SIZES[size])
    assert seen == [
        "Choose your bank", "Sign in with Sandbox Bank", "Logged in as Alice Sandbox",
        "You already answered", "This login has ended", "Logged in as Alice Sandbox",
        "The login did not complete", "Logged in as Maxence Legrand", "The ID token",
    ]
