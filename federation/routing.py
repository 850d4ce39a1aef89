"""Which bank a merchant login goes to, by ``acr_values``."""

from __future__ import annotations

from collections.abc import Sequence

from federation.settings import BankSettings


def pick_bank(
    requested_acr_values: Sequence[str],
    allowed: Sequence[str] | None,
    default_acr: str | None,
    banks: Sequence[BankSettings],
) -> tuple[BankSettings, str] | None:
    """The bank for this login and the merchant acr value that routed it, or None.

    - The first requested acr value that names a bank the client may use
      (``allowed`` is the client's ``acr_values``; None: every bank).
    - Only when none is requested: the client's ``default_acr``, else the
      client's only bank (routed by its first acr value).
    - Values were requested but none is usable: None. The merchant asked for a
      specific way of logging in; quietly sending the user to another bank
      would give it an identity from a source it did not ask for.
    """
    by_acr: dict[str, BankSettings] = {}
    for bank in banks:
        for acr in bank.acr_values:
            by_acr.setdefault(acr, bank)  # config validation rejects duplicates

    def usable(acr: str) -> bool:
        return acr in by_acr and (allowed is None or acr in allowed)

    if requested_acr_values:
        for acr in requested_acr_values:
            if usable(acr):
                return by_acr[acr], acr
        return None
    if default_acr is not None:
        return (by_acr[default_acr], default_acr) if usable(default_acr) else None
    candidates = (
        [acr for acr in allowed if acr in by_acr]
        if allowed is not None
        else [bank.acr_values[0] for bank in banks if bank.acr_values]
    )
    if len({by_acr[acr].id for acr in candidates}) == 1:
        return by_acr[candidates[0]], candidates[0]
    return None


def bank_choices(
    allowed: Sequence[str] | None, banks: Sequence[BankSettings]
) -> list[tuple[BankSettings, str]]:
    """The banks a client may use, each once with the acr value that routes there (the
    first one the client lists, or the bank's first): what the bank picker offers."""
    choices: dict[str, tuple[BankSettings, str]] = {}
    for bank in banks:
        usable = [a for a in bank.acr_values if allowed is None or a in allowed]
        if usable:
            preferred = min(usable, key=allowed.index) if allowed is not None else usable[0]
            choices[bank.id] = (bank, preferred)
    return list(choices.values())
