"""Shared fixtures: a real Redis for the tests, and throwaway ones to stop.

The tests run against a real ``redis-server``: the one on 127.0.0.1:6379 if it
answers, else one started here on a free port. Each test gets its own key
prefix, so concurrent runs sharing a Redis never see each other's keys. The
Redis Cluster and Sentinel tests start their own servers (tests/redisfarm.py).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

if TYPE_CHECKING:  # imported in the fixtures, once ROOT below is on sys.path
    from tests.redisfarm import Cluster, SentinelFarm

ROOT = Path(__file__).resolve().parents[1]
# The project is not installed into the venv; make `import proxy` work from any cwd.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LOCAL_REDIS = ("127.0.0.1", 6379)
INSTALL_HINT = (
    "these tests need a Redis server: install redis-server "
    "(Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`) "
    "or run one on 127.0.0.1:6379"
)


def _answers_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.settimeout(0.5)
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` of our own on one port, that a test may stop and start again."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        if self._process is not None:
            return
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail(INSTALL_HINT)
        self._process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not _answers_ping("127.0.0.1", self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis that answers: the local one on 6379, or one started for this session."""
    if _answers_ping(*LOCAL_REDIS):
        yield "redis://127.0.0.1:6379/0"
        return
    server = RedisServer(_free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def store_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"a2a-test-{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], RedisServer]]:
    """``redis_server_factory()`` starts a throwaway Redis on a free port and returns it.

    The test may ``.stop()`` it and ``.start()`` it again on the same port (empty:
    nothing is saved); every server still running is stopped after the test.
    """
    servers: list[RedisServer] = []

    def start_server() -> RedisServer:
        if shutil.which("redis-server") is None:
            pytest.fail(INSTALL_HINT)
        server = RedisServer(_free_port(), tmp_path_factory.mktemp("redis"))
        servers.append(server)
        server.start()
        return server

    yield start_server
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Cluster]:
    """A Redis Cluster of three masters of our own, for the whole session.

    Tests share it: each uses a key prefix of its own, as on ``redis_url``.
    """
    from tests.redisfarm import Cluster

    cluster = Cluster(masters=3)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_prefix(redis_cluster: Cluster) -> Iterator[str]:
    """``store_prefix`` on the Redis Cluster: a key prefix of this test's own."""
    prefix = f"a2a-test-{uuid.uuid4().hex}:"
    yield prefix
    client = redis_cluster.client()
    try:
        for key in list(client.scan_iter(match=f"{prefix}*", count=500)):
            client.delete(key)  # one by one: keys of one test live in many slots
    finally:
        client.close()


@pytest.fixture
def redis_sentinel() -> Iterator[SentinelFarm]:
    """A master, its replica and a sentinel watching them, for one test, which may kill
    the master (``.master.kill()``) and wait for the failover (``.wait_for_failover()``)."""
    from tests.redisfarm import SentinelFarm

    farm = SentinelFarm()
    try:
        yield farm
    finally:
        farm.stop()
