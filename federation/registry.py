"""``kind:`` -> adapter factory (dex: a map from connector type to constructor)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import aiohttp

from federation.oidc import OidcRedirectAdapter
from federation.protocol import RedirectAdapter
from federation.settings import BankSettings

AdapterFactory = Callable[[BankSettings, aiohttp.ClientSession], RedirectAdapter]

# "ciba" (decoupled) joins when its adapter exists.
ADAPTERS: dict[str, AdapterFactory] = {
    "oidc": OidcRedirectAdapter,
}


def build_adapters(
    banks: Iterable[BankSettings], session: aiohttp.ClientSession
) -> dict[str, RedirectAdapter]:
    """One adapter per bank, by bank id. A kind without a factory is a config error."""
    adapters: dict[str, RedirectAdapter] = {}
    for bank in banks:
        factory = ADAPTERS.get(bank.kind)
        if factory is None:
            raise ValueError(f"banks[{bank.id}].kind: {bank.kind!r} is not supported yet")
        adapters[bank.id] = factory(bank, session)
    return adapters
