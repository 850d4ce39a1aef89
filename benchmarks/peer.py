"""The peer: node ``oidc-provider`` (pinned in benchmarks/peer/package-lock.json), its own
introspection endpoint measured in the same rounds as the proxy's.

``npm ci`` installs it once into benchmarks/peer/node_modules (git-ignored; again when
the lock file changes); ``server.mjs`` configures a client-credentials client and a
resource server that introspects, its tokens kept in the run's Redis
(``redis_adapter.mjs``, as a deployed oidc-provider keeps them: its in-memory adapter is
for development only), so each introspection costs it one Redis round trip, as the
proxy's costs the proxy. The suite mints the peer's opaque access tokens by client
credentials and runs wrk against ``/token/introspection`` with the proxy's connections
and duration, the server pinned to the proxy's core. Where node or npm is missing, the
suite says how to install them and goes on without the peer.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from benchmarks import fixtures as fx
from benchmarks.wrk import run_wrk, write_script

FOLDER = Path(__file__).resolve().parent / "peer"
INSTALL = "apt-get install -y nodejs npm"
CLIENT = ("peer-client", "peer-client-secret-" + "c" * 20)
RS = ("peer-api", "peer-api-secret-" + "p" * 20)
INTROSPECT_PATH = "/token/introspection"
# as many live tokens as the proxy's introspection cycles over
TOKENS = 2000
PREFIX = "peer:"


@dataclass
class Peer:
    base: str
    lines: Path  # form bodies, token=...
    headers: dict[str, str]
    version: str

    @property
    def url(self) -> str:
        return self.base + INTROSPECT_PATH


def missing() -> str | None:
    """Why the peer cannot run here, or None."""
    absent = [name for name in ("node", "npm") if shutil.which(name) is None]
    if absent:
        return (f"{' and '.join(absent)} not found: the peer (node oidc-provider) is left "
                f"out of this run; to include it: {INSTALL}")
    return None


def install() -> None:
    """``npm ci`` from the lock file, once (and again after the lock file changes)."""
    marker = FOLDER / "node_modules" / ".package-lock.json"
    lock = FOLDER / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    print("peer: npm ci (oidc-provider, from benchmarks/peer/package-lock.json) ...",
          file=sys.stderr, flush=True)
    npm = shutil.which("npm")
    assert npm is not None
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],  # noqa: S603
                   cwd=FOLDER, check=True, stdout=subprocess.DEVNULL)


def version() -> str:
    text = (FOLDER / "node_modules" / "oidc-provider" / "package.json").read_text()
    return str(json.loads(text)["version"])


@asynccontextmanager
async def running(folder: Path, http: aiohttp.ClientSession, cpus: str | None,
                  load_cpus: str, log: Path, redis_url: str) -> AsyncIterator[Peer | None]:
    """The peer on ``cpus``, its tokens in ``redis_url``, holding ``TOKENS`` live access
    tokens and warmed up (wrk on ``load_cpus``); None where node or npm is missing (said
    on stderr)."""
    why = missing()
    if why is not None:
        print(f"peer: {why}", file=sys.stderr, flush=True)
        yield None
        return
    await asyncio.to_thread(install)
    node = shutil.which("node")
    assert node is not None
    port = fx.free_port()
    base = f"http://127.0.0.1:{port}"
    command = fx.pinned([node, str(FOLDER / "server.mjs"), str(port), CLIENT[1], RS[1],
                         redis_url, PREFIX], cpus)
    async with fx.process(command, f"{base}/.well-known/openid-configuration", log):
        tokens = await mint(http, base, TOKENS)
        lines = folder / "peer-introspect.txt"
        lines.write_text("".join(f"token={t}\n" for t in tokens))
        headers = {"Authorization": aiohttp.BasicAuth(*RS).encode(),
                   "Content-Type": "application/x-www-form-urlencoded"}
        peer = Peer(base, lines, headers, version())
        await sanity(http, peer, tokens)
        # node compiles its hot functions as they run: a few seconds of load first, not
        # measured, or the peer's first round measures its JIT
        await run_wrk(peer.url, lines, write_script(folder), method="POST", duration=3,
                      connections=32, headers=headers, cpus=load_cpus)
        yield peer


async def mint(http: aiohttp.ClientSession, base: str, count: int) -> list[str]:
    auth = aiohttp.BasicAuth(*CLIENT)
    form = {"grant_type": "client_credentials", "scope": "api"}

    async def one() -> str:
        async with http.post(f"{base}/token", data=form, auth=auth) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return str(body["access_token"])

    tokens: list[str] = []
    for start in range(0, count, 32):
        tokens += await asyncio.gather(*(one() for _ in range(min(32, count - start))))
    return tokens


async def sanity(http: aiohttp.ClientSession, peer: Peer, tokens: list[str]) -> None:
    """Every minted token answers active (a fast ``active: false`` is no figure)."""
    for token in (tokens[0], tokens[-1]):
        async with http.post(peer.url, data=f"token={token}", headers=peer.headers) as resp:
            body = await resp.json()
            assert resp.status == 200 and body.get("active") is True, body
