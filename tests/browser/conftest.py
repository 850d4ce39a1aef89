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


@dataclass
class Tab:
    """A page in a fresh context, and every console message it logged."""

    page: Page
    console: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return [m for m in self.console
                if "Content Security Policy" in m or "violates" in m]


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

    async def run(self, script: Callable[[Tab], T]) -> T:
        """Run ``script`` in the browser's thread with a new tab in a new context."""

        def in_thread() -> T:
            context: BrowserContext = self._browser.new_context()
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
