"""Figures for the core flows on this machine: whole logins and introspection.

    python benchmarks/flows.py [--redis redis://127.0.0.1:6379/0] [--logins 200]
                               [--introspections 5000] [--concurrency 32]

One process runs the sandbox bank, the proxy and the load, so the figures are a
floor for the proxy alone; they are for comparing changes, not for a sales sheet.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp.test_utils import unused_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from federation.sandbox import SandboxBank, SandboxClient, serve_sandbox
from proxy.logs import configure_logging
from proxy.settings import StoreSettings
from tests.flows.harness import (
    ACR_A,
    RS_PLAIN,
    Proxy,
    bank_settings,
    make_config,
    run_proxy,
)


def _summary(name: str, samples: list[float], wall: float) -> None:
    ms = sorted(s * 1000 for s in samples)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    print(f"{name:>14}: {len(ms)} in {wall:.2f} s = {len(ms) / wall:8.1f}/s   "
          f"p50 {p(0.5):6.2f} ms  p95 {p(0.95):6.2f} ms  p99 {p(0.99):6.2f} ms  "
          f"mean {statistics.fmean(ms):6.2f} ms")


async def main(args: argparse.Namespace) -> None:
    configure_logging("warning")  # one line per request would measure the terminal
    port = unused_port()
    issuer = f"http://127.0.0.1:{port}"
    bank = SandboxBank(clients=[SandboxClient("bench", [f"{issuer}/callback/bank-a"],
                                              "client_secret_basic", secret="s" * 32)])
    prefix = f"a2a-bench-{uuid.uuid4().hex}:"
    async with serve_sandbox(bank):
        store = StoreSettings(url=args.redis, prefix=prefix)
        config = make_config(issuer, store, [bank_settings(bank, "bank-a", ACR_A)])
        connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
        async with run_proxy(config, port), aiohttp.ClientSession(connector=connector) as http:
            proxy = Proxy(issuer, config, http)
            samples: list[float] = []
            tokens: list[str] = []
            start = time.perf_counter()
            for _ in range(args.logins):
                t = time.perf_counter()
                body = await proxy.tokens()
                samples.append(time.perf_counter() - t)
                tokens.append(body["access_token"])
                bank.requests.clear()
            _summary("login", samples, time.perf_counter() - start)

            samples = []
            todo = iter(range(args.introspections))

            async def worker() -> None:
                for i in todo:
                    t = time.perf_counter()
                    info = await proxy.introspect(tokens[i % len(tokens)], rs=RS_PLAIN)
                    samples.append(time.perf_counter() - t)
                    assert info["active"] is True

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            _summary("introspect", samples, time.perf_counter() - start)
    import redis

    client = redis.Redis.from_url(args.redis)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--introspections", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    asyncio.run(main(parser.parse_args()))
