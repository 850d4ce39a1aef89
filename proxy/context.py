"""Everything a handler needs, built once per app by :func:`proxy.app.create_app`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from federation.protocol import BankAdapter
from federation.settings import BankSettings
from proxy.clients import ClientRegistry
from proxy.jose import Cipher, Signer
from proxy.settings import Config
from proxy.store import Store


@dataclass
class Services:
    config: Config
    store: Store
    signer: Signer
    cipher: Cipher
    clients: ClientRegistry
    http: aiohttp.ClientSession
    adapters: dict[str, BankAdapter] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.config.issuer

    def bank(self, bank_id: str) -> BankSettings | None:
        return next((b for b in self.config.banks if b.id == bank_id), None)

    @staticmethod
    def now() -> int:
        return int(time.time())


SERVICES = web.AppKey("services", Services)
