"""A real nginx (Debian's package, with its auth_request module) on loopback, run from a
folder of its own with the configuration docs/gateways.md gives; never the system's
service."""

from __future__ import annotations

import asyncio
import base64
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "gateways.md"
INSTALL = ("nginx is not installed: apt-get install -y nginx (Debian's package has the "
           "auth_request module these tests need)")


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)),
        None)
    if found is None:
        pytest.fail(INSTALL)
    return found


def documented_config() -> str:
    """The ```nginx block of docs/gateways.md."""
    found = re.search(r"```nginx\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert found, "docs/gateways.md has no nginx configuration"
    return found.group(1)


def replaced(text: str, changes: Mapping[str, str]) -> str:
    for old, new in changes.items():
        assert text.count(old) == 1, f"docs/gateways.md: {old!r} is not there once"
        text = text.replace(old, new)
    return text


def gateway_config(folder: Path, *, port: int, proxy_port: int, api_port: int,
                   credentials: tuple[str, str]) -> Path:  # fmt: skip
    """A whole nginx.conf in ``folder``: the documented http block, on loopback ports."""
    folder.mkdir(parents=True, exist_ok=True)
    basic = base64.b64encode(":".join(credentials).encode()).decode()
    http = replaced(documented_config(), {
        "/var/cache/nginx/gateway": str(folder / "cache"),
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{proxy_port};",
        "server 127.0.0.1:9000;": f"server 127.0.0.1:{api_port};",
        "listen 8443;": f"listen 127.0.0.1:{port};",
        "b3JkZXJzLWFwaTpvcmRlcnMtc2VjcmV0": basic,
    })
    # as root, the worker runs as root too: this folder is not for other users
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    temp = "\n".join(f"    {name}_temp_path {folder / name};"
                     for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    path = folder / "nginx.conf"
    path.write_text(f"""daemon off;
master_process on;
worker_processes 1;
{user}
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} info;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp}
{http}
}}
""")
    return path


@asynccontextmanager
async def running_nginx(config: Path, port: int) -> AsyncIterator[None]:
    """nginx with the nginx.conf ``config`` until the block ends (SIGTERM, nginx's fast
    shutdown; SIGKILL after 5 s)."""
    folder = config.parent
    log = folder / "error.log"
    process = subprocess.Popen(  # noqa: ASYNC220 (it runs alongside: never waited on here)
        [nginx_binary(), "-p", f"{folder}/", "-e", str(log), "-c", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"nginx did not start: {error}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            break
        else:
            pytest.fail("nginx did not listen within 5 seconds")
        yield
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 5)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
        if process.stderr:
            process.stderr.close()
