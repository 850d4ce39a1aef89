"""Fixtures for whole logins; the harness itself is in :mod:`tests.flows.harness`
(imported once, under one name, so its keys are the same everywhere)."""

from tests.flows.conftest import log_buffer
from tests.flows.harness import world, world_factory

__all__ = ["log_buffer", "world", "world_factory"]
