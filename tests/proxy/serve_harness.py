"""A config file that a test rewrites (banks, clients, signing keys), and the real
``app2app-proxy serve`` in a subprocess reading it, for the reload and worker tests."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from federation.sandbox import SandboxBank, SandboxClient
from proxy.ops.keys import generate_signing_key
from tests.flows.harness import APP_REDIRECT

ROOT = Path(__file__).resolve().parents[2]
BANK_CLIENT = "merchant-at-bank"
BANK_SECRET = "bank-secret-" + "s" * 20


def acr(bank_id: str) -> str:
    return f"urn:merchant:acr:{bank_id}"


def sandbox_bank(issuer: str, bank_id: str) -> SandboxBank:
    """A bank that knows the proxy at ``issuer`` as its client, calling back to
    /callback/{bank_id}."""
    return SandboxBank(clients=[SandboxClient(
        BANK_CLIENT, [f"{issuer}/callback/{bank_id}"], "client_secret_basic", secret=BANK_SECRET,
    )])  # fmt: skip


@dataclass
class ConfigFile:
    """``config.yaml`` and its key files in ``folder``; :meth:`write` replaces the file."""

    folder: Path
    port: int
    redis_url: str
    prefix: str
    issuer: str = ""
    token_encryption: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    kids: dict[str, str] = field(default_factory=dict)  # key file name -> kid

    def __post_init__(self) -> None:
        self.issuer = self.issuer or f"http://127.0.0.1:{self.port}"
        (self.folder / "keys").mkdir(exist_ok=True)

    @property
    def path(self) -> Path:
        return self.folder / "config.yaml"

    def key(self, name: str) -> str:
        """The kid of signing key ``name`` (made on first use)."""
        if name not in self.kids:
            key = generate_signing_key("ES256")
            (self.folder / "keys" / f"{name}.jwk").write_text(key.export(private_key=True))
            self.kids[name] = str(key["kid"])
        return self.kids[name]

    def write(self, *, banks: dict[str, SandboxBank], clients: Sequence[str],
              keys: Sequence[str], issuer: str | None = None, port: int | None = None,
              extra: str = "") -> None:
        for name in keys:
            self.key(name)
        default = acr(next(iter(banks)))
        bank_entries = "".join(f"""
  - id: {bank_id}
    acr_values: [{acr(bank_id)}]
    kind: oidc
    issuer: {bank.issuer}
    timeout: 5
    client_id: {BANK_CLIENT}
    client_auth: client_secret_basic
    client_secret: {BANK_SECRET}
    scopes: [openid, profile]
    authentication_level: sca
    claims: {{name: name}}""" for bank_id, bank in banks.items())
        client_entries = "".join(f"""
  - client_id: {client_id}
    type: public
    redirect_uris: [{APP_REDIRECT}]
    default_acr: {default}
    scopes: [openid, profile, offline_access]""" for client_id in clients)
        key_entries = ", ".join(f"{{file: keys/{name}.jwk}}" for name in keys)
        text = f"""
issuer: {issuer or self.issuer}
listen: {{host: 127.0.0.1, port: {port or self.port}}}
store: {{url: "{self.redis_url}", prefix: "{self.prefix}"}}
keys:
  signing: [{key_entries}]
  token_encryption: {self.token_encryption}
subject: {{type: pairwise, salt: test-salt}}
banks:{bank_entries}
clients:{client_entries}
{extra}"""
        # write then rename: a reader never sees half a file
        partial = self.folder / "config.yaml.partial"
        partial.write_text(text)
        partial.replace(self.path)


@dataclass
class Served:
    """``app2app-proxy serve`` in a subprocess; its JSON log lines in ``log_file``."""

    process: asyncio.subprocess.Process
    log_file: Path

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log_file.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return found

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == name]

    async def wait_for(self, name: str, count: int = 1, within: float = 10.0
                       ) -> list[dict[str, Any]]:  # fmt: skip
        for _ in range(int(within / 0.05)):
            found = self.events(name)
            if len(found) >= count:
                return found
            assert self.process.returncode is None, self.log_file.read_text()
            await asyncio.sleep(0.05)
        pytest.fail(f"no {count} {name!r} log line(s):\n{self.log_file.read_text()}")

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def start_serve(config: ConfigFile, *args: str, env: dict[str, str] | None = None
                      ) -> Served:  # fmt: skip
    log_file = config.folder / f"serve-{secrets.token_hex(4)}.log"
    with log_file.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "serve", "--config", str(config.path), *args,
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )
    return Served(process, log_file)


async def wait_until_serving(http: aiohttp.ClientSession, issuer: str, served: Served) -> None:
    for _ in range(400):
        assert served.process.returncode is None, served.log_file.read_text()
        try:
            async with http.get(f"{issuer}/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    pytest.fail(f"app2app-proxy serve did not start:\n{served.log_file.read_text()}")

