"""`app2app-proxy demo`: the repo's config.yaml, the embedded store, a whole login."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from proxy.config import load_config
from proxy.ops.demo import DEMO_ENV, _prepare, demo_servers

ROOT = Path(__file__).resolve().parents[2]


async def test_demo_login_through_the_sandbox_page(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    proxy_port, bank_port, app_port = unused_port(), unused_port(), unused_port()
    monkeypatch.setenv("ISSUER", f"http://127.0.0.1:{proxy_port}")
    monkeypatch.setenv("PORT", str(proxy_port))
    monkeypatch.setenv("SANDBOX_ISSUER", f"http://127.0.0.1:{bank_port}")
    monkeypatch.setenv("DEMO_APP_REDIRECT", f"http://127.0.0.1:{app_port}/callback")
    for name in DEMO_ENV:
        monkeypatch.delenv(name, raising=False)
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")  # authorization_details_types
    _prepare(tmp_path / "config.yaml")
    assert (tmp_path / "keys" / "signing.jwk").stat().st_mode & 0o077 == 0
    config = load_config(tmp_path / "config.yaml")
    assert config.store.url == "memory://"

    async with demo_servers(config) as start_url, aiohttp.ClientSession() as http:
        home = await (await http.get(start_url)).text()
        assert "href='/login'" in home and "href='/pay'" in home
        login_url = start_url + "login"
        # app -> its backend pushes to /par -> /authorize?request_uri: demo-app names no
        # bank, so the picker links to both
        picker = await http.get(login_url)
        page = await picker.text()
        assert picker.status == 200 and "Choose your bank" in page
        links = dict((bank, url) for url, bank in re.findall(
            r'href="([^"]+/authorize/pick/[^"/]+/([a-z-]+))"', page))
        assert set(links) == {"sandbox", "sandbox-app", "itsme"}
        assert ">Sandbox Bank</a>" in page and ">Sandbox Bank app (decoupled)</a>" in page
        assert ">itsme (sandbox broker)</a>" in page

        # the redirect bank: the sandbox's consent page
        consent = await http.get(links["sandbox"])
        page = await consent.text()
        assert consent.status == 200 and "Approve" in page
        handle = re.search(r'name="handle" value="([^"]+)"', page)
        assert handle is not None
        done = await http.post(f"http://127.0.0.1:{bank_port}/authorize/decide",
                               data={"handle": handle.group(1), "decision": "approve"})
        text = await done.text()
        assert done.status == 200, text
        assert "Logged in through the sandbox bank" in text
        assert "Alice Sandbox" in text

        # the decoupled bank: one tap on the interstitial, approve in the "bank app",
        # which returns to /resume and on to the merchant app
        picker = await http.get(login_url)
        link = re.search(r'href="([^"]+/authorize/pick/[^"/]+/sandbox-app)"', await picker.text())
        assert link is not None
        tap = await http.get(link.group(1))
        link = re.search(r'<a class="action" href="([^"]+)">Continue to', await tap.text())
        assert link is not None
        bank_app = link.group(1)
        assert bank_app.startswith(f"http://127.0.0.1:{bank_port}/app2app/")
        assert "DEMO-1" in await (await http.get(bank_app)).text()
        done = await http.post(bank_app + "/decide", data={"decision": "approve"})
        text = await done.text()
        assert done.status == 200, text
        assert "Alice Sandbox" in text

        # itsme through the sandbox session broker: the proxy creates the session and
        # sends the user to the broker's "itsme app", which returns to /callback/itsme
        picker = await http.get(login_url)
        link = re.search(r'href="([^"]+/authorize/pick/[^"/]+/itsme)"', await picker.text())
        assert link is not None
        itsme = await http.get(link.group(1), allow_redirects=False)
        app_page = itsme.headers["Location"]
        assert app_page.startswith(f"http://127.0.0.1:{bank_port}/itsme/app/")
        page = await (await http.get(app_page)).text()
        assert "Maxence Legrand, confirm your identity with itsme?" in page
        done = await http.post(app_page.split("?")[0] + "/decide", data={"decision": "approve"})
        text = await done.text()
        assert done.status == 200, text
        assert "Maxence Legrand" in text and "81042419835" in text

        # pay 123.45 NOK through BankID with biometrics: demo-pay pushes the NNIN, the
        # phone and the payment; the sandbox's BankID app shows it; the tokens carry it
        bankid_app = await http.get(start_url + "pay")
        page = await bankid_app.text()
        assert str(bankid_app.url).startswith(f"http://127.0.0.1:{bank_port}/app2app/"), page
        assert "Pay 123.45 NOK to Scrooge McDuck" in page
        done = await http.post(str(bankid_app.url) + "/decide", data={"decision": "approve"})
        text = await done.text()
        assert done.status == 200, text
        assert "authorization_details" in text and "Scrooge McDuck" in text
