"""Typed application keys of the sandbox app."""

from __future__ import annotations

from aiohttp import web

from federation.sandbox.bank import SandboxBank
from federation.sandbox.broker import SandboxBroker

BANK = web.AppKey("sandbox_bank", SandboxBank)
BROKER = web.AppKey("sandbox_broker", SandboxBroker)
