"""Shared fixtures: a real Redis for the tests, and throwaway ones to stop.

The tests run against a real ``redis-server``: the one on 127.0.0.1:6379 if it
answers, else one started here on a free port. Each test gets its own key
prefix, so concurrent runs sharing a Redis never see each other's keys. The
Redis Cluster and Sentinel tests start their own servers (tests/redisfarm.py).
"""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

if TYPE_CHECKING:  # imported in the fixtures, once ROOT below is on sys.path
    from tests.redisfarm import Cluster, SentinelFarm, Server

ROOT = Path(__file__).resolve().parents[1]
# The project is not installed into the venv; make `import proxy` work from any cwd.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LOCAL_REDIS = ("127.0.0.1", 6379)


def _answers_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.settimeout(0.5)
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` of our own on one port, that a test may stop and start again
    (empty each time: nothing is saved). Started by :class:`tests.redisfarm.Server`."""

    def __init__(self, workdir: Path) -> None:
        from tests.redisfarm import free_port

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._server: Server | None = None

    def start(self) -> None:
        from tests.redisfarm import Server

        if self._server is None:
            self._server = Server(self._workdir, [], port=self.port)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis that answers: the local one on 6379, or one started for this session."""
    if _answers_ping(*LOCAL_REDIS):
        yield "redis://127.0.0.1:6379/0"
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
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
        server = RedisServer(tmp_path_factory.mktemp("redis"))
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
