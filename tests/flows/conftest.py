"""Fixtures for whole logins; the harness itself is in :mod:`tests.flows.harness`
(imported once, under one name, so its keys are the same everywhere)."""

import io
from collections.abc import Iterator

import pytest

from proxy.observability.logs import configure_logging, flush_logs, reset_logging
from tests.flows.bankid_world import bankid_world
from tests.flows.harness import world, world_factory
from tests.flows.session_world import session_world

__all__ = ["bankid_world", "log_buffer", "session_world", "world", "world_factory"]


class LogBuffer(io.StringIO):
    """The proxy's stdout: read as an operator's terminal shows it, once the lines that
    wait for the end of the event loop's round are written (LineWriter)."""

    def getvalue(self) -> str:
        flush_logs()
        return super().getvalue()


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """Every log line, debug and up, as the JSON text written to the proxy's stdout."""
    buffer = LogBuffer()
    configure_logging("debug", stream=buffer)
    yield buffer
    reset_logging()
