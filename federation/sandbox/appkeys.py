"""Typed application keys of the sandbox app."""

from __future__ import annotations

from aiohttp import web

from federation.sandbox.bank import SandboxBank

BANK = web.AppKey("sandbox_bank", SandboxBank)
