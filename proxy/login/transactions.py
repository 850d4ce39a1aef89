"""A login's transaction: how it is kept, taking it back once, atomically, whichever way
the user comes back, and where its answer may go, checked again when it goes.

The store keeps it with what would let a reader of a Redis dump act for the proxy
toward the bank sealed (the one cipher, :class:`proxy.oauth.jose.Cipher`): the bank
adapter's state for this login (``conn_data``: the PKCE ``code_verifier`` and the nonce
toward the bank) and a decoupled login's ``auth_req_id`` (with which the bank's token
endpoint hands out the user's tokens, CIBA §10.1). The record holds ``conn_data: {}``
and ``auth_req_id: ""`` in their place, and the sealed value under ``sealed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.model.records import Transaction
from proxy.oauth.authorize_checks import check_client, check_redirect_uri
from proxy.oauth.errors import OAuthError, RedirectTarget
from proxy.oauth.jose import Unreadable
from proxy.oauth.once import take_once
from proxy.oauth.services import Services
from proxy.observability.tracing import continue_trace

SEALED = "sealed"


def unknown_login() -> OAuthError:
    return OAuthError("invalid_request", "this login is unknown or has expired; start again")


def stored(svc: Services, txn: Transaction) -> dict[str, Any]:
    """``txn`` as the store keeps it: its secrets sealed."""
    data = txn.to_json()
    secret: dict[str, Any] = {"conn_data": data["conn_data"]}
    data["conn_data"] = {}
    poll = data.get("poll")
    if poll is not None:
        secret["auth_req_id"] = poll["auth_req_id"]
        data["poll"] = {**poll, "auth_req_id": ""}
    data[SEALED] = svc.cipher.encrypt(secret)
    return data


def loaded(svc: Services, data: Mapping[str, Any]) -> Transaction:
    """The transaction a stored record holds; a record whose sealed part no configured key
    opens (a key removed too early) is a login that cannot go on."""
    sealed = data.get(SEALED)
    if sealed is None:  # written before transactions were sealed
        return Transaction.from_json(data)
    try:
        secret = svc.cipher.decrypt(str(sealed))
    except Unreadable as exc:
        raise unknown_login() from exc
    opened = {**data, "conn_data": secret.get("conn_data", {})}
    poll = data.get("poll")
    if poll is not None:
        opened["poll"] = {**poll, "auth_req_id": secret.get("auth_req_id", "")}
    return Transaction.from_json(opened)


async def take_transaction(svc: Services, key: str) -> Transaction:
    """The transaction under ``key`` (the proxy's state toward the bank, or a decoupled
    login's handle), consumed: a second attempt finds the marker and is refused."""
    txn = loaded(svc, await take_once(
        svc, Transaction.kind, key, marker_ttl=None, unknown=unknown_login(),
        used=OAuthError("invalid_request", "this login was already completed; start again")))
    continue_trace(txn.trace)  # traces on: this request is a step of the login's trace
    return txn


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
