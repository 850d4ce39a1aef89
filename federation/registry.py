"""``kind:`` -> adapter factory (dex: a map from connector type to constructor)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import aiohttp

from federation.bankid import BankIdAdapter
from federation.ciba import CibaAdapter
from federation.oidc import OidcRedirectAdapter
from federation.protocol import BankAdapter
from federation.session import SessionAdapter
from federation.settings import BankSettings

AdapterFactory = Callable[[BankSettings, aiohttp.ClientSession], BankAdapter]


def decoupled(settings: BankSettings, session: aiohttp.ClientSession) -> BankAdapter:
    """CIBA poll mode; BankID with biometrics when the bank registers permissions."""
    if settings.permissions is not None:
        return BankIdAdapter(settings, session)
    return CibaAdapter(settings, session)


# "oidc": redirect (authorization code + PKCE, optionally PAR or browser-less App2App);
# "ciba": decoupled (CIBA poll mode; with permissions:, BankID's app-authorize);
# "session": a redirect to an eID app through a broker's REST session API (itsme).
ADAPTERS: dict[str, AdapterFactory] = {
    "oidc": OidcRedirectAdapter,
    "ciba": decoupled,
    "session": SessionAdapter,
}


def build_adapters(
    banks: Iterable[BankSettings], session: aiohttp.ClientSession
) -> dict[str, BankAdapter]:
    """One adapter per bank, by bank id. A kind without a factory is a config error."""
    adapters: dict[str, BankAdapter] = {}
    for bank in banks:
        factory = ADAPTERS.get(bank.kind)
        if factory is None:
            raise ValueError(f"banks[{bank.id}].kind: {bank.kind!r} is not supported yet")
        adapters[bank.id] = factory(bank, session)
    return adapters
