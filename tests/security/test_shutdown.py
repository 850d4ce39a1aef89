"""``app2app-proxy serve`` on SIGTERM: out of the load balancer at once, then every
request in flight finishes, then the process exits 0. Nothing is lost: a login that
was at the bank when the signal came completes, and its code is redeemed elsewhere.

The real command in a subprocess, with a config file pointing at the test Redis and
a sandbox bank served here.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest

from federation.sandbox import SandboxBank, SandboxClient, serve_sandbox
from proxy.config import load_config
from proxy.ops.keys import generate_signing_key
from tests.flows.harness import (
    APP_REDIRECT,
    PUBLIC,
    Proxy,
    app_redirect_params,
    new_request,
    run_proxy,
)
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
BANK_SECRET = "bank-a-secret-" + "s" * 20
DRAIN_DELAY = 0.5
TOKEN_DELAY = 1.5  # the bank's token endpoint: the login is still in flight after the drain


def write_config(tmp_path: Path, issuer: str, port: int, redis_url: str, prefix: str,
                 bank: SandboxBank) -> Path:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "signing.jwk").write_text(
        generate_signing_key("ES256").export(private_key=True)
    )
    path = tmp_path / "config.yaml"
    path.write_text(f"""
issuer: {issuer}
listen: {{host: 127.0.0.1, port: {port}}}
store: {{url: "{redis_url}", prefix: "{prefix}"}}
keys:
  signing: [{{file: keys/signing.jwk}}]
  token_encryption: {secrets.token_urlsafe(32)}
subject: {{type: pairwise, salt: test-salt}}
banks:
  - id: bank-a
    acr_values: [urn:merchant:acr:bank-a]
    kind: oidc
    issuer: {bank.issuer}
    timeout: {TOKEN_DELAY + 3}
    client_id: merchant-at-a
    client_auth: client_secret_basic
    client_secret: {BANK_SECRET}
    scopes: [openid, profile]
    authentication_level: sca
clients:
  - client_id: {PUBLIC}
    type: public
    redirect_uris: [{APP_REDIRECT}]
    default_acr: urn:merchant:acr:bank-a
    scopes: [openid, profile, offline_access]
""")
    return path


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def wait_until_serving(http: aiohttp.ClientSession, issuer: str,
                             process: asyncio.subprocess.Process) -> None:
    for _ in range(400):
        assert process.returncode is None, "app2app-proxy serve exited at start"
        try:
            async with http.get(f"{issuer}/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    pytest.fail("app2app-proxy serve did not start")


async def test_sigterm_drains_then_finishes_in_flight_logins(
    tmp_path: Path, redis_url: str, store_prefix: str, stack: AsyncExitStack
) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    bank = SandboxBank(clients=[SandboxClient(
        "merchant-at-a", [f"{issuer}/callback/bank-a"], "client_secret_basic",
        secret=BANK_SECRET,
    )])
    await stack.enter_async_context(serve_sandbox(bank))
    config_file = write_config(tmp_path, issuer, port, redis_url, store_prefix, bank)
    log_file = tmp_path / "serve.log"
    with log_file.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "serve", "--config", str(config_file),
            "--drain-delay", str(DRAIN_DELAY),
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    async def stop_process() -> None:
        if process.returncode is None:
            process.kill()
            await process.wait()

    stack.push_async_callback(stop_process)
    http = await stack.enter_async_context(aiohttp.ClientSession())
    await wait_until_serving(http, issuer, process)

    # a login that reaches the bank's (slow) token endpoint before the signal
    bank.token_delay = TOKEN_DELAY
    login, query = new_request()
    resp = await http.get(f"{issuer}/authorize", params=query, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    at_bank = await http.get(resp.headers["Location"], allow_redirects=False)
    callback = at_bank.headers["Location"]
    assert callback.startswith(f"{issuer}/callback/bank-a?")
    in_flight = asyncio.create_task(http.get(callback, allow_redirects=False))
    for _ in range(200):
        if any(r.path == "/token" for r in bank.requests):
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the callback never reached the bank's token endpoint")

    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.05)
    # out of the load balancer at once ...
    ready = await http.get(f"{issuer}/readyz")
    assert ready.status == 503
    assert (await ready.json())["status"] == "draining"
    # ... yet what still arrives during the drain delay is served
    assert (await http.get(f"{issuer}/healthz")).status == 200
    assert time.monotonic() - signalled < DRAIN_DELAY

    # the listener closed while the login was still at the bank; it completes anyway
    done = await in_flight
    finished = time.monotonic() - signalled
    assert finished > DRAIN_DELAY
    assert done.status == 302, await done.text()
    login.params = app_redirect_params(done)
    assert login.params["state"] == login.state
    assert login.code

    # then the process exits, cleanly, soon after its last request
    exit_code = await asyncio.wait_for(process.wait(), 5)
    exited = time.monotonic() - signalled
    assert exit_code == 0, log_file.read_text()
    assert exited < TOKEN_DELAY + 1.0, exited
    with pytest.raises(aiohttp.ClientConnectionError):
        await http.get(f"{issuer}/healthz")

    # nothing lost: another instance on the same Redis redeems the code
    other_port = free_port()
    await stack.enter_async_context(run_proxy(load_config(config_file), other_port))
    other = Proxy(f"http://127.0.0.1:{other_port}", load_config(config_file), http)
    tokens = await other.exchange(login)
    assert tokens.status == 200, await tokens.text()
    assert (await tokens.json())["token_type"] == "Bearer"
