"""The merchant ``sub``: the same in the ID token, userinfo and introspection."""

from __future__ import annotations

import hashlib
import hmac

from proxy.config.settings import ClientSettings, Subject
from proxy.model.tokens import b64url


def merchant_subject(rule: Subject, client: ClientSettings | None, client_id: str,
                     bank_id: str, bank_sub: str) -> str:
    """The sub of the bank's user ``bank_sub`` for ``client``.

    ``pairwise``: OIDC Core §8.1, "When pairwise Subject Identifiers are used, the OpenID
    Provider MUST calculate a unique sub (subject) value for each Sector Identifier. The
    Subject Identifier value MUST NOT be reversible by any party other than the OpenID
    Provider." An HMAC under the salt of the client's sector, the bank and the bank's
    sub: clients of one sector see one sub, clients of two sectors cannot correlate the
    user, the bank's identifier never reaches the merchant, and two banks' subjects
    never collide. A client without a sector (the config check requires one; this is a
    client removed by a reload while its user was at the bank) gets a sub of its own.
    ``bank``: the bank's own sub, the same for every client (``public``)."""
    if rule.type == "bank":
        return bank_sub
    if not rule.salt:
        raise ValueError("subject.salt is required for pairwise subjects")
    sector = client.sector if client is not None else None
    space = f"sector:{sector}" if sector is not None else f"client:{client_id}"
    mac = hmac.new(rule.salt.encode(), f"{space}\x00{bank_id}\x00{bank_sub}".encode(),
                   hashlib.sha256)
    return b64url(mac.digest())
