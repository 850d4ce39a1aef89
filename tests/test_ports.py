"""The ports test servers get: outside the kernel's ephemeral range (which outgoing
connections draw from), never the same twice, and never one another test run holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import ports

ROOT = Path(__file__).resolve().parents[1]


def test_ports_are_outside_the_ephemeral_range_and_never_repeat() -> None:
    ephemeral = ports.ephemeral_range()
    given = [ports.free_port() for _ in range(300)]
    assert len(set(given)) == len(given)
    assert not [port for port in given if port in ephemeral]
    assert all(ports.LOWEST <= port <= ports.HIGHEST for port in given)


def test_a_cluster_port_has_its_bus_port_free_and_outside_the_range_too() -> None:
    ephemeral = ports.ephemeral_range()
    for _ in range(50):
        port = ports.free_port(with_bus=True)
        assert port not in ephemeral and port + ports.BUS_OFFSET not in ephemeral
        assert port + ports.BUS_OFFSET <= ports.HIGHEST
        assert ports._bindable(port + ports.BUS_OFFSET)


def _other_run_can_lock(port: int) -> bool:
    child = subprocess.run(
        [sys.executable, "-c", f"from tests import ports; print(ports._lock({port}))"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    return child.stdout.strip() == "True"


def test_a_port_just_handed_out_is_locked_against_another_test_run() -> None:
    port = ports.free_port()
    assert not _other_run_can_lock(port)
    ports._unlock(port)
    assert _other_run_can_lock(port)


def test_the_range_is_read_from_the_kernel_or_defaults_to_linuxs(tmp_path: Path) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("40000\t50000\n")
    assert ports.ephemeral_range(setting) == range(40000, 50001)
    assert ports.ephemeral_range(tmp_path / "missing") == range(32768, 61000)
