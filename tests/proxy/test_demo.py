"""`app2app-proxy demo`: the repo's config.yaml, the embedded store, whole logins through
the playground (over HTTP here; in Chromium in tests/browser/test_demo.py), its fixed
demo values, its ports and its one-line answer to a port in use."""

from __future__ import annotations

import html
import re
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from proxy.config import load_config
from proxy.config.settings import Config
from proxy.ops.cli import main
from proxy.ops.demo import DEMO_ENV, DEMO_SECRETS, _prepare, banner, demo_servers, use_ports
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Ports:
    proxy: int
    bank: int
    app: int


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables `demo` reads or sets: unset now, and as they were after the test."""
    for name in (*DEMO_ENV, "PORT", "ISSUER", "SANDBOX_ISSUER", "DEMO_APP_REDIRECT",
                 "DEMO_APP_HOME", "DEMO_SHOP_REDIRECT"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


@pytest.fixture
def demo_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Config, Ports]]:
    """config.yaml as `demo` reads it, on free ports (as --proxy-port etc. set them)."""
    ports = Ports(free_port(), free_port(), free_port())
    clean_environment(monkeypatch)
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(ROOT / "docs" / "schemas", tmp_path / "docs" / "schemas")
    use_ports(ports.proxy, ports.bank, ports.app)
    _prepare(tmp_path / "config.yaml")
    yield load_config(tmp_path / "config.yaml"), ports


@asynccontextmanager
async def running(config: Config) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    async with demo_servers(config) as start_url, aiohttp.ClientSession() as http:
        yield start_url, http


def links(html: str, pattern: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(f'href="({pattern})"', html)]


async def test_demo_values_are_fixed_and_printed(demo_config: tuple[Config, Ports],
                                                 tmp_path: Path) -> None:
    config, ports = demo_config
    assert (tmp_path / "keys" / "signing.jwk").stat().st_mode & 0o077 == 0
    assert config.store.url == "memory://"
    # the same values at every start: a token can be introspected with a printed secret,
    # and the user's pairwise sub stays the same across restarts
    assert config.subject.salt == DEMO_SECRETS["SUBJECT_SALT"]
    assert {rs.client_id: rs.client_secret for rs in config.resource_servers} == {
        "demo-api": DEMO_SECRETS["DEMO_API_SECRET"],
        "demo-api-basic": DEMO_SECRETS["DEMO_API_BASIC_SECRET"]}
    text = banner(config, f"http://127.0.0.1:{ports.app}/")
    for shown in (DEMO_SECRETS["DEMO_APP_SECRET"], DEMO_SECRETS["DEMO_API_SECRET"],
                  DEMO_SECRETS["DEMO_API_BASIC_SECRET"],
                  "demo-subject-salt", f"http://127.0.0.1:{ports.app}/",
                  f"http://127.0.0.1:{ports.proxy}/.well-known/openid-configuration",
                  "app2app-proxy demo --help"):
        assert shown in text, shown


async def test_a_redirect_login_through_the_playground(
    demo_config: tuple[Config, Ports],
) -> None:
    config, ports = demo_config
    async with running(config) as (start_url, http):
        landing = await http.get(start_url)
        page = await landing.text()
        assert landing.status == 200 and "<title>" in page and 'name="viewport"' in page
        for link in ("/.well-known/openid-configuration", "/jwks", "/docs/app2app.md"):
            assert link in page
        # "Log in: choose a bank": the backend pushes, the proxy shows its picker
        picker = await http.get(start_url + "login")
        body = await picker.text()
        assert str(picker.url).startswith(f"{config.issuer}/authorize/pick/")
        choices = links(body, r"[^\"]+/authorize/pick/[^\"/]+/[a-z-]+")
        assert sorted(c.rsplit("/", 1)[1] for c in choices) == ["itsme", "sandbox",
                                                               "sandbox-app"]
        assert "Log in on the bank&#x27;s website" in body
        # the sandbox's consent page, Approve: Demo Shop's page for the login
        consent = await http.get(next(c for c in choices if c.endswith("/sandbox")))
        handle = re.search(r'name="handle" value="([^"]+)"', await consent.text())
        assert handle is not None
        done = await http.post(f"http://127.0.0.1:{ports.bank}/authorize/decide",
                               data={"handle": handle.group(1), "decision": "approve"})
        result = await done.text()
        assert done.status == 200 and str(done.url).startswith(start_url + "logins/")
        assert "<h1>Logged in as Alice Sandbox</h1>" in result
        for section in ("The hops, in order", "The ID token", "The token response",
                        "What each API sees", "the RFC 9701 form", "signature valid"):
            assert section in result, section
        assert "\\u2026" not in result and DEMO_SECRETS["DEMO_APP_SECRET"] not in result
        # the buttons: revoke, and the APIs see the token inactive
        revoked = await http.post(str(done.url) + "/revoke")
        assert revoked.status == 200
        text = html.unescape(await revoked.text())
        assert '"active": false' in text and "/revoke" in text


async def test_the_second_app_logs_in_through_demo_shop_without_the_bank(
    demo_config: tuple[Config, Ports],
) -> None:
    """Issue 17 in the playground: demo-app's code exchange bound its device key; its
    login approves demo-shop's on the same device; the bank is not asked again."""
    config, ports = demo_config
    async with running(config) as (start_url, http):
        consent = await http.get(start_url + "login?acr=urn:merchant:acr:sandbox")
        handle = re.search(r'name="handle" value="([^"]+)"', await consent.text())
        assert handle is not None
        done = await http.post(f"http://127.0.0.1:{ports.bank}/authorize/decide",
                               data={"handle": handle.group(1), "decision": "approve"})
        result = await done.text()
        assert done.status == 200 and "x_app2app_device_key_jwt" in result
        (second,) = links(result, r"/logins/[^\"/]+/second-app")
        shop = await http.get(start_url + second.lstrip("/"))
        text = html.unescape(await shop.text())
        assert shop.status == 200, text
        assert str(shop.url).startswith(start_url + "second-app/")
        assert "logged in through Demo Shop" in text and "Alice Sandbox" in text
        assert '"app2app"' in text  # amr: how the login came
        assert "urn:app2app-proxy:params:oauth:grant-type:app2app" in text
        # the approval answered the shop's request: none of its hops went to the bank
        assert f"127.0.0.1:{ports.bank}" not in text


async def test_pay_with_bankid_carries_the_payment_into_the_tokens(
    demo_config: tuple[Config, Ports],
) -> None:
    """Issue 16 in the playground: demo-pay pushes the NNIN, the phone and the payment;
    the sandbox's BankID app shows it; the tokens and introspection carry it."""
    config, ports = demo_config
    async with running(config) as (start_url, http):
        landing = await (await http.get(start_url)).text()
        assert 'href="/pay"' in landing
        bankid_app = await http.get(start_url + "pay")
        page = await bankid_app.text()
        assert str(bankid_app.url).startswith(f"http://127.0.0.1:{ports.bank}/app2app/"), page
        assert "Pay 123.45 NOK to Scrooge McDuck" in page
        done = await http.post(str(bankid_app.url) + "/decide", data={"decision": "approve"})
        text = html.unescape(await done.text())
        assert done.status == 200 and str(done.url).startswith(start_url + "logins/"), text
        assert '"authorization_details"' in text and "Scrooge McDuck" in text
        assert '"123.45"' in text


async def test_a_denied_login_shows_the_error(demo_config: tuple[Config, Ports]) -> None:
    config, ports = demo_config
    async with running(config) as (start_url, http):
        consent = await http.get(start_url + "login?acr=urn:merchant:acr:sandbox")
        handle = re.search(r'name="handle" value="([^"]+)"', await consent.text())
        assert handle is not None
        done = await http.post(f"http://127.0.0.1:{ports.bank}/authorize/decide",
                               data={"handle": handle.group(1), "decision": "deny"})
        text = await done.text()
        assert done.status == 200 and "The login did not complete" in text
        assert "<code>access_denied</code>" in text


async def test_the_browser_less_flow_step_by_step(demo_config: tuple[Config, Ports]) -> None:
    config, _ = demo_config
    async with running(config) as (start_url, http):
        run = await http.post(start_url + "native")
        url = str(run.url)
        assert url.startswith(start_url + "native/")
        for step, expected in ((None, '"action": "prompt"'), ("sandbox", '"action": "deep_link"'),
                               (None, '"opens": '), (None, '"action": "call"'),
                               (None, "The ID token")):
            data = {"bank": step} if step else {}
            page = await http.post(url + "/next", data=data)
            assert expected in html.unescape(await page.text()), expected
        assert "signature valid" in await page.text()


def test_help_lists_the_ports(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = capsys.readouterr().out
    for line in ("8080  the proxy", "9090  the sandbox bank", "8081  the demo app",
                 "--proxy-port N", "--bank-port N", "--app-port N"):
        assert line in text, line


def test_a_port_in_use_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    clean_environment(monkeypatch)
    # (the demo sets up logging to stdout, which pytest captures and later closes)
    monkeypatch.setattr("proxy.ops.demo.configure_logging", lambda level: None)
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(ROOT / "docs" / "schemas", tmp_path / "docs" / "schemas")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["demo", "--config", str(tmp_path / "config.yaml"), "--proxy-port",
                     str(port), "--bank-port", str(free_port()), "--app-port",
                     str(free_port())])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [f"demo: 127.0.0.1:{port} (the proxy) is already in use: stop what listens "
                   "there, or give the demo another port (--proxy-port N; app2app-proxy demo "
                   "--help)"]
