"""Everything a handler needs, built once per app by :func:`proxy.app.create_app`.

What comes from ``config.yaml`` (the config, the signer, the cipher, the client
registry, the bank adapters) is one immutable :class:`State`; a reload (SIGHUP,
:mod:`proxy.ops.reload`) builds a new one and swaps it in with one assignment. The store
and the HTTP session are not part of it: they live as long as the app.

Handlers keep reading ``request.app[SERVICES]`` and its attributes. Each request is
pinned to the state current when it arrived (:func:`proxy.app.request_middleware` sets a
context variable for the request's task), so every read in one request, in every
function it calls and every task it starts, sees the same state, old or new, never
a mix; a request that arrived before a reload finishes with the state it started
with. Outside a request (start-up, the reload itself) the current state is read.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from federation.protocol import BankAdapter
from federation.settings import BankSettings
from proxy.config.settings import Config
from proxy.oauth.clients import ClientRegistry
from proxy.oauth.jose import Cipher, Signer
from proxy.store import Store


@dataclass(frozen=True)
class State:
    """One config and everything built from it; never changed, only replaced."""

    config: Config
    signer: Signer
    cipher: Cipher
    clients: ClientRegistry
    # the adapters own nothing that needs closing (they share Services.http), so an old
    # state is simply dropped once the last request holding it is done
    adapters: dict[str, BankAdapter]


# (the Services it was pinned for, the state): one app's pin never leaks into another's
_PINNED: ContextVar[tuple[Services, State] | None] = ContextVar("pinned_state", default=None)


def wall_clock() -> float:
    """Seconds since the epoch: the one clock the rules read (tests replace it)."""
    return time.time()


class Services:
    def __init__(self, state: State, *, store: Store, http: aiohttp.ClientSession) -> None:
        self.store = store
        self.http = http
        self._current = state

    @property
    def state(self) -> State:
        """The state this request is pinned to; outside a request, the current one."""
        pinned = _PINNED.get()
        if pinned is not None and pinned[0] is self:
            return pinned[1]
        return self._current

    @property
    def current(self) -> State:
        return self._current

    def swap(self, state: State) -> State:
        """Make ``state`` current (one assignment: requests arriving from now on see all
        of it); returns the previous one, which requests in flight keep using."""
        previous, self._current = self._current, state
        return previous

    def pin(self) -> Token[tuple[Services, State] | None]:
        """Pin the calling task (the request) to the current state; ``unpin`` with the
        token it returns, in a ``finally``."""
        return _PINNED.set((self, self._current))

    @staticmethod
    def unpin(token: Token[tuple[Services, State] | None]) -> None:
        _PINNED.reset(token)

    @property
    def config(self) -> Config:
        return self.state.config

    @property
    def signer(self) -> Signer:
        return self.state.signer

    @property
    def cipher(self) -> Cipher:
        return self.state.cipher

    @property
    def clients(self) -> ClientRegistry:
        return self.state.clients

    @property
    def adapters(self) -> dict[str, BankAdapter]:
        return self.state.adapters

    @property
    def issuer(self) -> str:
        return self.config.issuer

    def bank(self, bank_id: str) -> BankSettings | None:
        return next((b for b in self.config.banks if b.id == bank_id), None)

    @staticmethod
    def now() -> int:
        return int(wall_clock())

    @staticmethod
    def moment() -> float:
        """Now, in seconds to the millisecond: for a window that must hold exactly (a
        consume's ``consumed_at`` and the ``refresh_grace`` measured from it)."""
        return round(wall_clock(), 3)


SERVICES = web.AppKey("services", Services)
