"""Ports for the servers a test starts, chosen so that nothing takes them before the
server binds.

``aiohttp.test_utils.unused_port`` binds port 0 and closes the socket: the kernel hands
out a port from its ephemeral range, the very range it also draws from for the local end
of every outgoing connection. Between that close and the server's bind, any connection
opened on the machine (a Redis client, a browser, another test run) may take the port,
and the server then fails with "address already in use" (seen in a clean-clone CI run).

So ports come from outside the ephemeral range, which no outgoing connection uses; a
byte-range lock on one shared file (byte N for port N) keeps two concurrent test runs
from being handed the same port in the moment before it is bound; and a process never
hands out a port twice.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
BUS_OFFSET = 10000  # a Redis Cluster node also listens on its port + 10000
LOWEST = 10000
HIGHEST = 65535
HELD_FOR = 60.0  # seconds a lock lasts: the port is bound (so not bindable) long before

_LOCK_FILE = Path(tempfile.gettempdir()) / "app2app-proxy-test-ports.lock"
_given: set[int] = set()
_held: list[tuple[float, int]] = []
_fd: int | None = None
_pid: int | None = None


def ephemeral_range(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> range:
    """The ports the kernel picks for the local end of outgoing connections."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


def free_port(*, with_bus: bool = False) -> int:
    """A port nothing listens on, outside the ephemeral range, not handed out before.

    ``with_bus``: its cluster bus port (port + 10000) is free and outside the range too.
    """
    ephemeral = ephemeral_range()
    _release_expired()
    for _ in range(5000):
        port = random.randint(LOWEST, HIGHEST - (BUS_OFFSET if with_bus else 0))
        ports = (port, port + BUS_OFFSET) if with_bus else (port,)
        if any(p in ephemeral or p in _given for p in ports):
            continue
        if not all(_bindable(p) for p in ports):
            continue
        locked = [p for p in ports if _lock(p)]
        if len(locked) < len(ports):
            for p in locked:
                _unlock(p)
            continue
        _given.update(ports)
        now = time.monotonic()
        _held.extend((now, p) for p in ports)
        return port
    raise RuntimeError(f"found no free port in {LOWEST}-{HIGHEST} outside the ephemeral range "
                       f"{ephemeral.start}-{ephemeral.stop - 1}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _lock_fd() -> int:
    """One descriptor per process (a forked child opens its own: record locks are not
    inherited); never closed, since closing any descriptor of the file drops them all."""
    global _fd, _pid
    if _fd is None or _pid != os.getpid():
        _fd = os.open(_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        _pid = os.getpid()
    return _fd


def _lock(port: int) -> bool:
    try:
        fcntl.lockf(_lock_fd(), fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
    except OSError:
        return False  # another test run is about to bind it
    return True


def _unlock(port: int) -> None:
    fcntl.lockf(_lock_fd(), fcntl.LOCK_UN, 1, port)


def _release_expired() -> None:
    cutoff = time.monotonic() - HELD_FOR
    while _held and _held[0][0] < cutoff:
        _unlock(_held.pop(0)[1])
