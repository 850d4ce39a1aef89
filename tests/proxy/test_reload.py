"""Reloading config.yaml into a running server (proxy.ops.reload; ``serve`` on SIGHUP).

A valid file swaps in at once (banks, clients, keys); an invalid one is refused with
every problem logged and the running config kept; a request that arrived before the
reload finishes with the config it started with. Here the reload is called directly
on an app served in this process; tests/proxy/test_serve_signals.py sends real signals.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from federation.sandbox import SandboxBank, serve_sandbox
from proxy.app import create_app
from proxy.config import load_config
from proxy.config.keys import token_key_id
from proxy.oauth.services import SERVICES
from proxy.ops.reload import reload_config
from proxy.web.server import ProxyRunner
from tests.flows.harness import PUBLIC, Proxy, app_redirect_params, new_request
from tests.ports import free_port
from tests.proxy.serve_harness import ConfigFile, acr, sandbox_bank

OLD_CLIENT = "merchant-old"
NEW_CLIENT = "merchant-new"


@dataclass
class Running:
    app: web.Application
    file: ConfigFile
    proxy: Proxy
    bank_a: SandboxBank
    bank_b: SandboxBank

    async def reload(self) -> tuple[bool, list[dict[str, Any]]]:
        with capture_logs() as logs:
            done = await reload_config(self.app, self.file.path)
        return done, logs

    async def status(self, client_id: str, **params: str) -> int:
        resp, _ = await self.proxy.authorize(client_id=client_id, **params)
        return resp.status

    async def jwks_kids(self) -> list[str]:
        jwks = await (await self.proxy.http.get(f"{self.proxy.issuer}/jwks")).json()
        return [key["kid"] for key in jwks["keys"]]

    def write_new(self) -> None:
        """bank-a and merchant-old go; bank-b, merchant-new and key k2 (first: it signs)
        come."""
        self.file.write(banks={"bank-b": self.bank_b}, clients=[PUBLIC, NEW_CLIENT],
                        keys=["k2", "k1"])  # fmt: skip


@pytest.fixture
async def running(tmp_path: Path, redis_url: str, store_prefix: str) -> AsyncIterator[Running]:
    async with AsyncExitStack() as stack:
        port = free_port()
        file = ConfigFile(tmp_path, port, redis_url, store_prefix)
        bank_a = sandbox_bank(file.issuer, "bank-a")
        bank_b = sandbox_bank(file.issuer, "bank-b")
        await stack.enter_async_context(serve_sandbox(bank_a))
        await stack.enter_async_context(serve_sandbox(bank_b))
        file.write(banks={"bank-a": bank_a}, clients=[PUBLIC, OLD_CLIENT], keys=["k1"])
        config = load_config(file.path)
        app = create_app(config)
        runner = ProxyRunner(app)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, "127.0.0.1", port).start()
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Running(app, file, Proxy(file.issuer, config, http), bank_a, bank_b)


async def test_a_reload_swaps_in_new_clients_banks_and_keys(running: Running) -> None:
    assert await running.status(OLD_CLIENT) == 302
    assert await running.status(NEW_CLIENT) == 400
    assert await running.jwks_kids() == [running.file.kids["k1"]]

    running.write_new()
    done, logs = await running.reload()

    assert done
    reloaded = next(line for line in logs if line["event"] == "config_reloaded")
    assert reloaded["banks_added"] == ["bank-b"] and reloaded["banks_removed"] == ["bank-a"]
    assert reloaded["clients_added"] == [NEW_CLIENT]
    assert reloaded["clients_removed"] == [OLD_CLIENT]
    # a removed client is refused, a new one is served; logins go to the new bank
    assert await running.status(OLD_CLIENT) == 400
    assert await running.status(NEW_CLIENT) == 302
    assert await running.status(PUBLIC, acr_values=acr("bank-a")) == 302  # unknown acr: default
    resp, _ = await running.proxy.authorize()
    assert resp.headers["Location"].startswith(running.bank_b.issuer)
    callback = await running.proxy.http.get(f"{running.proxy.issuer}/callback/bank-a")
    assert callback.status == 404
    discovery = await (await running.proxy.http.get(
        f"{running.proxy.issuer}/.well-known/openid-configuration")).json()  # fmt: skip
    assert discovery["acr_values_supported"] == [acr("bank-b")]
    # both keys are published; the new one signs
    assert await running.jwks_kids() == [running.file.kids["k2"], running.file.kids["k1"]]
    tokens = await running.proxy.tokens()
    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == running.file.kids["k2"]


async def test_an_invalid_file_is_refused_with_every_problem(running: Running) -> None:
    running.file.write(banks={"bank-a": running.bank_a}, clients=[PUBLIC, NEW_CLIENT],
                       keys=["k1"], extra="unknown_section: 1\nlifetimes: {access_token: -5}")
    done, logs = await running.reload()

    assert not done
    refused = next(line for line in logs if line["event"] == "config_reload_refused")
    assert refused["log_level"] == "error"
    problems = refused["problems"]
    assert len(problems) == 2, problems
    assert any("unknown_section" in p for p in problems)
    assert any("lifetimes.access_token" in p for p in problems)
    assert not any(line["event"] == "config_reloaded" for line in logs)
    # the old config still serves, none of the new file's
    assert await running.status(OLD_CLIENT) == 302
    assert await running.status(NEW_CLIENT) == 400

    # a file that is not even YAML, and one that is missing, alike
    running.file.path.write_text("issuer: [unclosed\n")
    assert not (await running.reload())[0]
    running.file.path.unlink()
    done, logs = await running.reload()
    assert not done and "cannot read the config file" in logs[0]["problems"][0]
    assert await running.status(OLD_CLIENT) == 302


async def test_the_issuer_cannot_change_and_listen_store_wait_for_a_restart(
    running: Running,
) -> None:
    running.file.write(banks={"bank-a": running.bank_a}, clients=[PUBLIC, NEW_CLIENT],
                       keys=["k1"], issuer="https://login.elsewhere.example")
    done, logs = await running.reload()
    assert not done
    assert "issuer: cannot change while running" in logs[0]["problems"][0]
    assert await running.status(NEW_CLIENT) == 400

    running.file.write(banks={"bank-a": running.bank_a}, clients=[PUBLIC, NEW_CLIENT],
                       keys=["k1"], port=free_port())
    done, logs = await running.reload()
    assert done
    restart = next(line for line in logs if line["event"] == "config_needs_restart")
    assert restart["settings"] == ["listen"] and restart["log_level"] == "warning"
    assert await running.status(NEW_CLIENT) == 302  # the rest is applied
    assert running.app[SERVICES].config.listen.port == running.file.port


async def test_a_request_in_flight_finishes_with_the_config_it_started_with(
    running: Running,
) -> None:
    # a login whose callback waits at bank-a's token endpoint while bank-a is removed
    running.bank_a.token_delay = 1.0
    login, query = new_request()
    http = running.proxy.http
    resp = await http.get(f"{running.proxy.issuer}/authorize", params=query,
                          allow_redirects=False)  # fmt: skip
    at_bank = await http.get(resp.headers["Location"], allow_redirects=False)
    in_flight = asyncio.create_task(http.get(at_bank.headers["Location"], allow_redirects=False))
    for _ in range(200):
        if any(r.path == "/token" for r in running.bank_a.requests):
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the callback never reached the bank's token endpoint")

    running.write_new()
    assert (await running.reload())[0]
    assert not in_flight.done()
    # new requests see the new config at once ...
    assert await running.status(OLD_CLIENT) == 400
    # ... while the one in flight completes with bank-a, which it started with
    done = await in_flight
    assert done.status == 302, await done.text()
    login.params = app_redirect_params(done)
    assert login.params["state"] == login.state
    exchanged = await running.proxy.exchange(login)
    assert exchanged.status == 200, await exchanged.text()
    assert jwt.get_unverified_header((await exchanged.json())["id_token"])["kid"] == (
        running.file.kids["k2"])  # fmt: skip



def kid(key: str) -> str:
    return token_key_id(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)))


async def test_the_token_encryption_key_rotates_through_reloads(running: Running) -> None:
    """keys.token_encryption: [new, old] reloads (new values sealed with the new key, old
    ones still open); a file without the key that encrypts now is refused; removing a
    key that only decrypts is applied with a warning, and what it still sealed is a
    clean invalid_grant, never a 500."""
    old, new = running.file.token_encryption, secrets.token_urlsafe(32)
    refreshed, untouched = await running.proxy.tokens(), await running.proxy.tokens()

    running.file.token_encryption = new  # the running key left out
    running.file.write(banks={"bank-a": running.bank_a}, clients=[PUBLIC, NEW_CLIENT],
                       keys=["k1"])
    done, logs = await running.reload()
    assert not done
    assert logs[0]["problems"][0].startswith(
        f"keys.token_encryption: the key that encrypts now (kid {kid(old)}) is not in the file")
    assert await running.status(NEW_CLIENT) == 400  # nothing of the file was applied

    running.file.token_encryption = f"[{new}, {old}]"
    running.file.write(banks={"bank-a": running.bank_a}, clients=[PUBLIC, NEW_CLIENT],
                       keys=["k1"])
    done, logs = await running.reload()
    assert done, logs
    reloaded = next(line for line in logs if line["event"] == "config_reloaded")
    assert reloaded["token_encryption_keys"] == [kid(new), kid(old)]
    assert await running.status(NEW_CLIENT) == 302
    # a grant sealed with the old key still refreshes, and is sealed again with the new
    rotated = await running.proxy.refresh(refreshed["refresh_token"])
    assert rotated.status == 200, await rotated.text()
    fresh = await running.proxy.tokens()  # sealed with the new key

    running.file.token_encryption = f"[{new}]"
    running.file.write(banks={"bank-a": running.bank_a}, clients=[PUBLIC, NEW_CLIENT],
                       keys=["k1"])
    done, logs = await running.reload()
    assert done, logs
    (removed,) = [line for line in logs if line["event"] == "token_encryption_key_removed"]
    assert (removed["kid"], removed["log_level"]) == (kid(old), "warning")
    for tokens in (await rotated.json(), fresh):
        again = await running.proxy.refresh(tokens["refresh_token"])
        assert again.status == 200, await again.text()
    with capture_logs() as lines:
        stale = await running.proxy.refresh(untouched["refresh_token"])
    assert stale.status == 400 and (await stale.json())["error"] == "invalid_grant"
    (unreadable,) = [line for line in lines if line["event"] == "sealed_value_unreadable"]
    assert unreadable["kid"] == kid(old)
    # refused before the refresh token was used: it is refused the same way again
    assert (await running.proxy.refresh(untouched["refresh_token"])).status == 400
