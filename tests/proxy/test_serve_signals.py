"""The real ``app2app-proxy serve`` in a subprocess: SIGHUP reloads the config file,
``--workers 2`` shares one port, every signal reaches every worker, SIGTERM stops them
all (exit 0), and a worker that dies takes the others down (exit 1)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest

from federation.sandbox import SandboxBank, serve_sandbox
from tests.flows.harness import PUBLIC, new_request
from tests.ports import free_port
from tests.proxy.serve_harness import (
    ConfigFile,
    Served,
    sandbox_bank,
    start_serve,
    wait_until_serving,
)

OLD_CLIENT = "merchant-old"
NEW_CLIENT = "merchant-new"
DRAIN = ("--drain-delay", "0.2")


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def setup(stack: AsyncExitStack, tmp_path: Path, redis_url: str, prefix: str
                ) -> tuple[ConfigFile, SandboxBank, aiohttp.ClientSession]:  # fmt: skip
    file = ConfigFile(tmp_path, free_port(), redis_url, prefix)
    bank = sandbox_bank(file.issuer, "bank-a")
    await stack.enter_async_context(serve_sandbox(bank))
    file.write(banks={"bank-a": bank}, clients=[PUBLIC, OLD_CLIENT], keys=["k1"])
    # a new connection for every request: with SO_REUSEPORT each may reach another worker
    http = await stack.enter_async_context(
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    )
    return file, bank, http


async def serve(stack: AsyncExitStack, file: ConfigFile, http: aiohttp.ClientSession,
                *args: str, env: dict[str, str] | None = None) -> Served:  # fmt: skip
    served = await start_serve(file, *DRAIN, *args, env=env)
    stack.push_async_callback(served.stop)
    await wait_until_serving(http, file.issuer, served)
    return served


async def authorize_status(http: aiohttp.ClientSession, issuer: str, client_id: str) -> int:
    _, query = new_request(client_id=client_id)
    async with http.get(f"{issuer}/authorize", params=query, allow_redirects=False) as resp:
        return resp.status


async def jwks_kids(http: aiohttp.ClientSession, issuer: str) -> list[str]:
    async with http.get(f"{issuer}/jwks") as resp:
        return [key["kid"] for key in (await resp.json())["keys"]]


async def test_sighup_reloads_and_an_invalid_file_is_refused(
    tmp_path: Path, redis_url: str, store_prefix: str, stack: AsyncExitStack
) -> None:
    file, bank, http = await setup(stack, tmp_path, redis_url, store_prefix)
    served = await serve(stack, file, http)
    assert await authorize_status(http, file.issuer, OLD_CLIENT) == 302

    file.write(banks={"bank-a": bank}, clients=[PUBLIC, NEW_CLIENT], keys=["k2", "k1"])
    served.signal(signal.SIGHUP)
    reloaded = (await served.wait_for("config_reloaded"))[0]
    assert reloaded["clients_removed"] == [OLD_CLIENT]
    assert await authorize_status(http, file.issuer, OLD_CLIENT) == 400
    assert await authorize_status(http, file.issuer, NEW_CLIENT) == 302
    assert await jwks_kids(http, file.issuer) == [file.kids["k2"], file.kids["k1"]]

    file.path.write_text(file.path.read_text() + "\nunknown_section: 1\n")
    file.path.write_text(file.path.read_text().replace("salt: test-salt", "salt: "))
    served.signal(signal.SIGHUP)
    refused = (await served.wait_for("config_reload_refused"))[0]
    assert len(refused["problems"]) == 2, refused["problems"]
    assert any("unknown_section" in p for p in refused["problems"])
    assert any("subject.salt" in p for p in refused["problems"])
    assert await authorize_status(http, file.issuer, NEW_CLIENT) == 302

    served.signal(signal.SIGTERM)
    assert await asyncio.wait_for(served.process.wait(), 10) == 0, served.log_file.read_text()


async def test_two_workers_share_the_port_and_get_every_signal(
    tmp_path: Path, redis_url: str, store_prefix: str, stack: AsyncExitStack
) -> None:
    file, bank, http = await setup(stack, tmp_path, redis_url, store_prefix)
    temp = tmp_path / "tmp"
    temp.mkdir()
    served = await serve(stack, file, http, "--workers", "2", env={"TMPDIR": str(temp)})
    started = await served.wait_for("serving", 2)
    pids = {line["pid"] for line in started}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {(line["host"], line["port"]) for line in started} == {("127.0.0.1", file.port)}
    assert {line["worker"] for line in started} == {0, 1}
    # one metrics folder for the workers, while they run
    (metrics_dir,) = temp.glob("app2app-proxy-metrics-*")

    # both answer on the one port (the kernel spreads new connections)
    for _ in range(200):
        assert (await http.get(f"{file.issuer}/healthz")).status == 200
        answered = {line["pid"] for line in served.events("request")}
        if answered == pids:
            break
    else:
        pytest.fail(f"only {answered} of {pids} answered")
    assert (await http.get(f"{file.issuer}/metrics")).status == 200

    file.write(banks={"bank-a": bank}, clients=[PUBLIC, NEW_CLIENT], keys=["k1"])
    served.signal(signal.SIGHUP)
    reloaded = await served.wait_for("config_reloaded", 2)
    assert {line["pid"] for line in reloaded} == pids
    for _ in range(10):  # whichever worker answers has the new config
        assert await authorize_status(http, file.issuer, NEW_CLIENT) == 302
        assert await authorize_status(http, file.issuer, OLD_CLIENT) == 400

    served.signal(signal.SIGTERM)
    assert await asyncio.wait_for(served.process.wait(), 10) == 0, served.log_file.read_text()
    assert {line["pid"] for line in served.events("draining")} == pids
    log = served.log_file.read_text()
    assert {line["pid"] for line in served.events("stopped")} == pids, log
    assert [line["exit_code"] for line in served.events("workers_stopped")] == [0], log
    assert not served.events("worker_died")
    assert not metrics_dir.exists()


async def test_a_worker_that_dies_stops_the_others_and_exits_1(
    tmp_path: Path, redis_url: str, store_prefix: str, stack: AsyncExitStack
) -> None:
    file, _, http = await setup(stack, tmp_path, redis_url, store_prefix)
    served = await serve(stack, file, http, "--workers", "2")
    started = await served.wait_for("serving", 2)
    victim, survivor = (line["pid"] for line in started)

    os.kill(victim, signal.SIGKILL)
    assert await asyncio.wait_for(served.process.wait(), 10) == 1
    (died,) = served.events("worker_died")
    assert died["worker_pid"] == victim and died["exit_code"] == -signal.SIGKILL
    assert "unexpectedly" in died["detail"]
    # the survivor was stopped the graceful way
    assert [line["pid"] for line in served.events("stopped")] == [survivor]


async def test_a_signal_while_the_workers_start_waits_for_them(
    tmp_path: Path, redis_url: str, store_prefix: str, stack: AsyncExitStack
) -> None:
    """A worker blocks the signals it inherits until it handles them: a SIGHUP sent while
    it still imports does not kill it (SIGHUP's default action), it reloads once up."""
    file, _, http = await setup(stack, tmp_path, redis_url, store_prefix)
    served = await start_serve(file, *DRAIN, "--workers", "2")
    stack.push_async_callback(served.stop)
    await served.wait_for("worker_started", 2)
    assert not served.events("serving")
    served.signal(signal.SIGHUP)

    reloaded = await served.wait_for("config_reloaded", 2)
    assert {line["pid"] for line in reloaded} == {
        line["pid"] for line in await served.wait_for("serving", 2)}  # fmt: skip
    await wait_until_serving(http, file.issuer, served)
    assert not served.events("worker_died")
    served.signal(signal.SIGTERM)
    assert await asyncio.wait_for(served.process.wait(), 10) == 0, served.log_file.read_text()
