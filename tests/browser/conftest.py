"""A real browser for the tests: Debian's Chromium (``/usr/bin/chromium``), driven by
Playwright's sync API in a thread of its own.

One browser for the whole session; each test gets fresh browser contexts (no cookies,
no cache). The proxy under test serves on the test's event loop, so the browser must
never block that loop: :meth:`Chromium.run` hands a function to the browser's thread
and awaits it. Nothing is downloaded: the browser is the system's (``apt-get install
chromium``; ``.ci/run`` installs it when missing), never ``playwright install``.
Requests may go to loopback addresses only; the merchant app's redirect URI is
answered inside the browser (Playwright routing), so a login that ends there never
leaves the machine.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    sync_playwright,
)

from tests.flows.harness import APP_REDIRECT, world_factory

__all__ = ["chromium", "world_factory"]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MERCHANT_PAGE = "<!doctype html><title>merchant app</title><h1>merchant app</h1>"
T = TypeVar("T")


PHONE = (390, 844)
DESKTOP = (1280, 800)
NARROWEST = (320, 640)
SIZES = {"phone": PHONE, "desktop": DESKTOP}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
_RUN_SHOTS = Path(tempfile.mkdtemp(prefix="a2a-screenshots-"))
_AXE = Axe()  # axe-core from the axe-playwright-python wheel: nothing is fetched


@dataclass
class Tab:
    """A page in a fresh context, and every console message it logged."""

    page: Page
    console: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return [m for m in self.console
                if "Content Security Policy" in m or "violates" in m]

    def errors(self) -> list[str]:
        """Console errors and uncaught exceptions (a failed load of any resource is one)."""
        return [m for m in self.console if m.startswith(("error:", "pageerror:"))]

    def accessibility_violations(self) -> list[str]:
        """What axe-core finds on the page as it is now: ``id (impact): targets``."""
        results = _AXE.run(self.page)
        return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
                for v in results.response["violations"]]

    def overflow(self) -> int:
        """How many CSS pixels the page is wider than the window (0: it fits)."""
        # (a phone widens its layout viewport to the content: compare with the window
        # the context was given, not window.innerWidth)
        window = self.page.viewport_size
        assert window is not None
        content: int = self.page.evaluate("document.documentElement.scrollWidth")
        return content - window["width"]

    def check(self, where: str) -> None:
        """The page as a user meets it: fits the window, no console error, no CSP
        violation, nothing axe-core objects to."""
        assert self.overflow() <= 0, f"{where}: {self.overflow()} px wider than the window"
        assert self.errors() == [], f"{where}: {self.errors()}"
        assert self.accessibility_violations() == [], (
            f"{where}: {self.accessibility_violations()}")
        self.console.clear()

    def screenshot(self, name: str) -> None:
        """The window (not the whole page) as a PNG. With ``UPDATE_SCREENSHOTS=1`` it is
        docs/screenshots/{name}.png, which README shows (scripts/screenshots); otherwise a
        file of the test run's own, so a run leaves the tree as it found it (the pictures
        hold random ports and tokens, different at every run)."""
        folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else _RUN_SHOTS
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(folder / f"{name}.png"))
        assert (folder / f"{name}.png").stat().st_size > 0


def _route(route: Route) -> None:
    """Loopback only; the merchant's redirect URI gets a stub page."""
    url = route.request.url
    if url.startswith(APP_REDIRECT):
        route.fulfill(status=200, content_type="text/html", body=MERCHANT_PAGE)
    elif urlsplit(url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


class Chromium:
    def __init__(self, executor: ThreadPoolExecutor, browser: Browser) -> None:
        self._executor = executor
        self._browser = browser

    async def run(self, script: Callable[[Tab], T], *,
                  size: tuple[int, int] = DESKTOP) -> T:
        """Run ``script`` in the browser's thread with a new tab in a new context, its
        window ``size`` (width, height) CSS pixels."""

        def in_thread() -> T:
            width, height = size
            context: BrowserContext = self._browser.new_context(
                viewport={"width": width, "height": height}, is_mobile=width < 600,
                has_touch=width < 600, device_scale_factor=1)
            try:
                context.route("**/*", _route)
                page = context.new_page()
                page.set_default_timeout(10_000)
                tab = Tab(page)

                def log(message: ConsoleMessage) -> None:
                    tab.console.append(f"{message.type}: {message.text}")

                page.on("console", log)
                page.on("pageerror", lambda exc: tab.console.append(f"pageerror: {exc}"))
                return script(tab)
            finally:
                context.close()

        return await asyncio.get_running_loop().run_in_executor(self._executor, in_thread)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium. Install it "
            "with `apt-get install -y chromium` (never `playwright install`, which "
            "downloads a browser of its own)", pytrace=False,
        )
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
    profile = tempfile.TemporaryDirectory(prefix="chromium-")

    def start() -> tuple[Playwright, Browser]:
        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True,
            env={**os.environ, "HOME": profile.name}, downloads_path=profile.name,
        )
        return playwright, browser

    playwright, browser = executor.submit(start).result(timeout=60)
    try:
        yield Chromium(executor, browser)
    finally:
        def stop() -> None:
            browser.close()
            playwright.stop()

        executor.submit(stop).result(timeout=60)
        executor.shutdown()
        profile.cleanup()
