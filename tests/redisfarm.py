"""Throwaway Redis topologies for the tests: a Redis Cluster, and a master with a
replica watched by a Sentinel (optionally with passwords, and TLS only, from a
throwaway CA made here with ``cryptography``).

Everything runs from the ``redis-server`` binary on free ports of 127.0.0.1 (a
sentinel is ``redis-server <conf> --sentinel``) and is wired up with plain
commands through redis-py (``CLUSTER ADDSLOTS``, ``CLUSTER MEET``, ``REPLICAOF``):
no ``redis-cli``, no ``redis-sentinel``. Nothing is saved (``--save ""``,
``--appendonly no``); each farm lives in a temporary directory of its own that
:meth:`stop` removes with the processes.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.ports import HOST, free_port

INSTALL_HINT = (
    "these tests start their own Redis servers from the redis-server binary, which is "
    "not on PATH: install it (Debian/Ubuntu: `apt-get install redis-server`, macOS: "
    "`brew install redis`), or run a Redis on 127.0.0.1:6379 for the tests that need "
    "only one"
)
SLOTS = 16384
SERVICE = "mymaster"


def redis_server_binary() -> str:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(INSTALL_HINT)
    return executable


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


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA, and a certificate it signed for 127.0.0.1 and localhost, in PEM."""

    ca: Path
    cert: Path
    key: Path

    def server_args(self, port: int) -> list[str]:
        """TLS only on ``port`` (no plain port); replicas and sentinels connect with TLS
        too; clients need no certificate of their own."""
        return ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(self.cert),
                "--tls-key-file", str(self.key), "--tls-ca-cert-file", str(self.ca),
                "--tls-auth-clients", "no", "--tls-replication", "yes"]


def make_tls_files(folder: Path) -> TlsFiles:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a2a test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=False, content_commitment=False, key_encipherment=False,
              data_encipherment=False, key_agreement=False, key_cert_sign=True,
              crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(folder / "ca.crt", folder / "server.crt", folder / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


class Server:
    """One ``redis-server`` process (a sentinel too), its output in ``{workdir}/{port}.log``.
    ``tls``: TLS only, on ``port``; ``password``: the ``requirepass`` its client uses."""

    def __init__(self, workdir: Path, args: list[str], *, port: int | None = None,
                 config: str | None = None, tls: TlsFiles | None = None,
                 password: str | None = None) -> None:
        self.port = port or free_port()
        self.log = workdir / f"{self.port}.log"
        common = ["--port", str(self.port), "--bind", HOST, "--dir", str(workdir)]
        if tls is not None:
            common = [*common, *tls.server_args(self.port)]
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
        secured: dict[str, Any] = {"password": password}
        if tls is not None:
            secured.update(ssl=True, ssl_ca_certs=str(tls.ca))
        self.client = redis.Redis(host=HOST, port=self.port, socket_timeout=2,
                                  socket_connect_timeout=1, decode_responses=True, **secured)
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

    def start(self, args: list[str], *, port: int | None = None, config: str | None = None,
              tls: TlsFiles | None = None, password: str | None = None) -> Server:
        server = Server(self.workdir, args, port=port, config=config, tls=tls,
                        password=password)
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
    """A master, one replica of it, and one sentinel (quorum 1) that fails over fast.

    ``password``: the master's and the replica's ``requirepass`` (and ``masterauth``);
    ``sentinel_password``: the sentinel's own ``requirepass``; ``tls``: every server
    speaks TLS only, with certificates of a CA made for the farm (``self.tls``)."""

    DOWN_AFTER_MS = 300
    FAILOVER_TIMEOUT_MS = 3000

    def __init__(self, *, password: str | None = None, sentinel_password: str | None = None,
                 tls: bool = False) -> None:
        super().__init__("sentinel")
        self.password = password
        self.sentinel_password = sentinel_password
        self.tls = make_tls_files(self.workdir / "tls") if tls else None
        auth = ["--requirepass", password, "--masterauth", password] if password else []
        secured: dict[str, Any] = {"tls": self.tls, "password": password}
        try:
            # diskless full sync without the default 5 s wait for more replicas
            self.master = self.start(["--repl-diskless-sync", "yes",
                                      "--repl-diskless-sync-delay", "0", *auth], **secured)
            self.replica = self.start(["--replicaof", HOST, str(self.master.port),
                                       "--repl-diskless-sync", "yes",
                                       "--repl-diskless-sync-delay", "0", *auth], **secured)
            wait_until("the replica to sync",
                       lambda: info(self.replica.client, "replication").get(
                           "master_link_status") == "up", 10)
            # started once the replica is in sync, so its first look finds a good replica
            self.sentinel = self.start(
                ["--requirepass", sentinel_password] if sentinel_password else [],
                config="\n".join([
                    f"sentinel monitor {SERVICE} {HOST} {self.master.port} 1",
                    f"sentinel down-after-milliseconds {SERVICE} {self.DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {SERVICE} {self.FAILOVER_TIMEOUT_MS}",
                    f"sentinel parallel-syncs {SERVICE} 1",
                    *([f"sentinel auth-pass {SERVICE} {password}"] if password else []),
                    "",
                ]),
                tls=self.tls, password=sentinel_password,
            )
            wait_until("the sentinel to see the replica", self._sees_replica, 10)
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n{self.logs()}") from exc
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """What the proxy's store.url says to reach this farm's master."""
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        userinfo = f":{quote(self.password, safe='')}@" if self.password else ""
        options = []
        if self.sentinel_password:
            options.append(f"sentinel_password={quote(self.sentinel_password, safe='')}")
        if self.tls:
            options.append(f"ssl_ca_certs={quote(str(self.tls.ca))}")
        query = f"?{'&'.join(options)}" if options else ""
        return f"{scheme}://{userinfo}{HOST}:{self.sentinel.port}/{SERVICE}{query}"

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

