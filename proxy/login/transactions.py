"""Taking a login's transaction: once, atomically, whichever way the user comes back."""

from __future__ import annotations

from proxy.model.records import Transaction
from proxy.oauth.errors import OAuthError
from proxy.oauth.services import Services


async def take_transaction(svc: Services, key: str) -> Transaction:
    """The transaction under ``key`` (the proxy's state toward the bank, or a decoupled
    login's handle), consumed: a second attempt finds the marker and is refused."""
    consumed = await svc.store.consume(Transaction.kind, key, now=svc.now(), marker_ttl=None)
    if consumed is None:
        raise OAuthError("invalid_request", "this login is unknown or has expired; start again")
    if consumed.replay:
        raise OAuthError("invalid_request", "this login was already completed; start again")
    return Transaction.from_json(consumed.payload)
