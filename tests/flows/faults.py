"""Time and store faults for whole logins, on either store.

``Clock`` replaces the clock every rule reads (:func:`proxy.oauth.services.wall_clock`):
a test moves time on instead of sleeping. ``FaultyStore`` wraps the store a proxy opens
and makes one chosen call fail as a stalled Redis makes it fail: with
:class:`StoreUnavailable`, either before the call reached the store (it did nothing) or
after it ran (its answer was lost). ``tests/security/test_faults.py`` makes the same
faults on the wire, in front of a real Redis.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest

import proxy.app
from proxy.config.settings import StoreSettings
from proxy.store import Store, StoreUnavailable, open_store

When = Literal["before", "after"]


class Clock:
    """Real time plus an offset a test moves on (``advance``), or one moment held still
    (``freeze``)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.frozen: float | None = None

    def __call__(self) -> float:
        return self.frozen if self.frozen is not None else time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if self.frozen is not None:
            self.frozen += seconds
        else:
            self.offset += seconds

    def freeze(self, at: float | None = None) -> float:
        self.frozen = round(time.time() if at is None else at, 3)
        return self.frozen


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("proxy.oauth.services.wall_clock", fake)
    return fake


@dataclass
class Fault:
    method: str
    when: When
    skip: int  # calls of ``method`` that go through before the one that fails


class FaultyStore:
    """A store that passes every call on, except the one a test armed with :meth:`fail`.
    ``calls`` counts the calls of each method; ``added`` the ``add`` calls that wrote,
    by kind."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.added: Counter[str] = Counter()
        self._faults: list[Fault] = []

    def fail(self, method: str, when: When, *, skip: int = 0) -> None:
        self._faults.append(Fault(method, when, skip))

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target) or name == "scan":
            return target

        # add_many is the adds of one round trip: armed and counted as add
        method = "add" if name == "add_many" else name

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[method] += 1
            fault = self._take(method)
            if fault is not None and fault.when == "before":
                raise StoreUnavailable(f"test: {name} did not reach the store")
            result = await target(*args, **kwargs)
            if name == "add" and result:
                self.added[args[0]] += 1
            if name == "add_many":
                for (kind, *_), written in zip(args[0], result, strict=True):
                    self.added[kind] += written
            if fault is not None:
                raise StoreUnavailable(f"test: the answer to {name} was lost")
            return result

        return call

    def _take(self, name: str) -> Fault | None:
        for fault in self._faults:
            if fault.method != name:
                continue
            if fault.skip:
                fault.skip -= 1
                return None
            self._faults.remove(fault)
            return fault
        return None


@pytest.fixture
def faulty_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], FaultyStore]]:
    """Every proxy the test starts from now on opens its store wrapped in a FaultyStore;
    ``faulty_store()`` is the last one opened."""
    opened: list[FaultyStore] = []

    def wrapped(settings: StoreSettings, **kwargs: Any) -> Store:
        store = FaultyStore(open_store(settings, **kwargs))
        opened.append(store)
        return store  # type: ignore[return-value]  # passes every Store call on

    monkeypatch.setattr(proxy.app, "open_store", wrapped)

    def last() -> FaultyStore:
        assert opened, "no proxy opened a store yet"
        return opened[-1]

    yield last
