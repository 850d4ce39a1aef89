"""Fixtures for whole logins; the harness itself is in :mod:`tests.flows.harness`
(imported once, under one name, so its keys are the same everywhere)."""

from tests.flows.harness import world, world_factory

__all__ = ["world", "world_factory"]
