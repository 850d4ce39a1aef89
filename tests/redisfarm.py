"""Throwaway Redis topologies for the tests: a Redis Cluster, and a master with a
replica watched by a Sentinel.

Everything runs from the ``redis-server`` binary on free ports of 127.0.0.1 (a
sentinel is ``redis-server <conf> --sentinel``) and is wired up with plain
commands through redis-py (``CLUSTER ADDSLOTS``, ``CLUSTER MEET``, ``REPLICAOF``):
no ``redis-cli``, no ``redis-sentinel``. Nothing is saved (``--save ""``,
``--appendonly no``); each farm lives in a temporary directory of its own that
:meth:`stop` removes with the processes.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

INSTALL_HINT = (
    "these tests start their own Redis servers from the redis-server binary, which is "
    "not on PATH: install it (Debian/Ubuntu: `apt-get install redis-server`, macOS: "
    "`brew install redis`), or run a Redis on 127.0.0.1:6379 for the tests that need "
    "only one"
)
HOST = "127.0.0.1"
SLOTS = 16384
SERVICE = "mymaster"
# a port whose cluster bus port (port + 10000) is free too
_BUS_OFFSET = 10000


def redis_server_binary() -> str:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(INSTALL_HINT)
    return executable


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port(*, with_bus: bool = False) -> int:
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if not with_bus or (port + _BUS_OFFSET <= 65535 and _bindable(port + _BUS_OFFSET)):
            return port
    raise RuntimeError("found no free port whose cluster bus port is free too")


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def info(client: redis.Redis, section: str) -> dict[str, str]:
    """``INFO section`` (or ``CLUSTER INFO`` for "cluster"), as text fields."""
    if section == "cluster":
        text = client.execute_command("CLUSTER", "INFO")
    else:
        text = client.execute_command("INFO", section)
    if isinstance(text, dict):  # redis-py parsed it already
        return {k: str(v) for k, v in text.items()}
    fields = (line.partition(":") for line in str(text).splitlines() if ":" in line)
    return {key: value.strip() for key, _, value in fields}


class Server:
    """One ``redis-server`` process (a sentinel too), its output in ``{workdir}/{port}.log``."""

    def __init__(self, workdir: Path, args: list[str], *, port: int | None = None,
                 config: str | None = None) -> None:
        self.port = port or free_port()
        self.log = workdir / f"{self.port}.log"
        common = ["--port", str(self.port), "--bind", HOST, "--dir", str(workdir)]
        if config is None:
            argv = [redis_server_binary(), *common, "--save", "", "--appendonly", "no", *args]
        else:  # a sentinel: its config file first, which it rewrites as it learns
            conf = workdir / f"{self.port}.conf"
            conf.write_text(config)
            argv = [redis_server_binary(), str(conf), "--sentinel", *common, *args]
        with self.log.open("wb") as log:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT
            )
        self.client = redis.Redis(host=HOST, port=self.port, socket_timeout=2,
                                  socket_connect_timeout=1, decode_responses=True)
        try:
            wait_until(f"redis-server on port {self.port}", self._answers, 10)
        except TimeoutError:
            self.stop()
            pytest.fail(f"redis-server on port {self.port} did not start:\n{self.tail()}")

    def _answers(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            raise TimeoutError("exited")
        return bool(self.client.ping())

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to replicas or clients."""
        process, self._process = self._process, None
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        self.client.close()

    def stop(self) -> None:
        process, self._process = self._process, None
        self.client.close()
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Farm:
    """Servers sharing one temporary directory; :meth:`stop` ends them and removes it."""

    def __init__(self, kind: str) -> None:
        redis_server_binary()
        # short and free of spaces: config files and logs of every server go here
        self.workdir = Path(tempfile.mkdtemp(prefix=f"a2a-{kind}-"))
        self.servers: list[Server] = []

    def start(self, args: list[str], *, port: int | None = None,
              config: str | None = None) -> Server:
        server = Server(self.workdir, args, port=port, config=config)
        self.servers.append(server)
        return server

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(f"--- {s.log.name}\n{s.tail()}" for s in self.servers)


class Cluster(Farm):
    """Redis Cluster: ``masters`` primaries sharing the 16384 slots, no replicas."""

    def __init__(self, masters: int = 3) -> None:
        super().__init__("cluster")
        try:
            self.nodes = [
                self.start(
                    ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                     "--cluster-config-file", f"nodes-{port}.conf"],
                    port=port,
                )
                for port in (free_port(with_bus=True) for _ in range(masters))
            ]
            self._form()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """One node; the cluster client discovers the others."""
        return f"redis://{HOST}:{self.nodes[0].port}"

    def _form(self) -> None:
        version = tuple(int(p) for p in info(self.nodes[0].client, "server")[
            "redis_version"].split(".")[:2])
        per_node, extra = divmod(SLOTS, len(self.nodes))
        first = 0
        for epoch, node in enumerate(self.nodes, start=1):
            last = first + per_node - 1 + (1 if epoch <= extra else 0)
            # distinct epochs up front: no collision to resolve by gossip
            node.client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
            if version >= (7, 0):
                node.client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            else:
                node.client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
            first = last + 1
        for node in self.nodes[1:]:
            self.nodes[0].client.execute_command("CLUSTER", "MEET", HOST, node.port)

        def formed() -> bool:
            for node in self.nodes:
                state = info(node.client, "cluster")
                if (state.get("cluster_state") != "ok"
                        or state.get("cluster_known_nodes") != str(len(self.nodes))
                        or state.get("cluster_slots_ok") != str(SLOTS)):
                    return False
            return True

        try:
            wait_until("cluster_state:ok on every node", formed, 20)
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n{self.logs()}") from exc

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host=HOST, port=self.nodes[0].port, decode_responses=True)


class SentinelFarm(Farm):
    """A master, one replica of it, and one sentinel (quorum 1) that fails over fast."""

    DOWN_AFTER_MS = 300
    FAILOVER_TIMEOUT_MS = 3000

    def __init__(self) -> None:
        super().__init__("sentinel")
        try:
            # diskless full sync without the default 5 s wait for more replicas
            self.master = self.start(["--repl-diskless-sync", "yes",
                                      "--repl-diskless-sync-delay", "0"])
            self.replica = self.start(["--replicaof", HOST, str(self.master.port),
                                       "--repl-diskless-sync", "yes",
                                       "--repl-diskless-sync-delay", "0"])
            wait_until("the replica to sync",
                       lambda: info(self.replica.client, "replication").get(
                           "master_link_status") == "up", 10)
            # started once the replica is in sync, so its first look finds a good replica
            self.sentinel = self.start([], config="\n".join([
                f"sentinel monitor {SERVICE} {HOST} {self.master.port} 1",
                f"sentinel down-after-milliseconds {SERVICE} {self.DOWN_AFTER_MS}",
                f"sentinel failover-timeout {SERVICE} {self.FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {SERVICE} 1",
                "",
            ]))
            wait_until("the sentinel to see the replica", self._sees_replica, 10)
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n{self.logs()}") from exc
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"redis+sentinel://{HOST}:{self.sentinel.port}/{SERVICE}"

    def _sees_replica(self) -> bool:
        replicas = self.sentinel.client.sentinel_slaves(SERVICE)
        return any(not r["is_sdown"] and not r["is_disconnected"]
                   and r.get("master-link-status") == "ok" for r in replicas)

    def master_port(self) -> int:
        """The master's port as clients learn it (``SENTINEL MASTERS``, which redis-py
        reads; GET-MASTER-ADDR-BY-NAME names the promoted replica sooner)."""
        return int(self.sentinel.client.sentinel_master(SERVICE)["port"])

    def wait_for_failover(self, timeout: float = 20) -> Server:
        """The replica, once the sentinel tells clients it is the master, and it is."""
        old = self.master.port

        def promoted() -> bool:
            state = self.sentinel.client.sentinel_master(SERVICE)
            if int(state["port"]) == old or state["flags"] != "master":
                return False
            return bool(self.replica.client.execute_command("ROLE")[0] == "master")

        try:
            wait_until("the sentinel to fail over", promoted, timeout)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from exc
        return self.replica

