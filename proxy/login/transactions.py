"""Taking a login's transaction: once, atomically, whichever way the user comes back;
and where its answer may go, checked again when it goes."""

from __future__ import annotations

from proxy.model.records import Transaction
from proxy.oauth.authorize_checks import check_client, check_redirect_uri
from proxy.oauth.errors import OAuthError, RedirectTarget
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


def answer_target(svc: Services, txn: Transaction) -> RedirectTarget:
    """Where the login's answer goes: its redirect_uri, verified again against the client
    as the config has it now. The transaction outlives the request that checked it (the
    user is at the bank for minutes, a decoupled bank's answer is kept), and a reload in
    between may have removed the client or that redirect_uri: then nothing goes there,
    code or error (RFC 6749 §4.1.2.1: the server "MUST NOT automatically redirect the
    user-agent to the invalid redirection URI"); the same errors as at /authorize."""
    client = check_client(svc.clients.get(txn.client_id), {"client_id": txn.client_id})
    check_redirect_uri(client, {"redirect_uri": txn.redirect_uri})
    return RedirectTarget(txn.redirect_uri, txn.state, svc.issuer, native=txn.native)
