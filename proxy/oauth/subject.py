"""The merchant ``sub``: the same in the ID token, userinfo and introspection."""

from __future__ import annotations

import hashlib
import hmac

from proxy.config.settings import Subject
from proxy.model.tokens import b64url


def merchant_subject(rule: Subject, bank_id: str, bank_sub: str) -> str:
    """``pairwise``: an HMAC of the bank and the bank's sub, so the bank's identifier
    never reaches the merchant and two banks' subjects never collide (OIDC Core §8.1
    asks that a pairwise identifier not be reversible). ``bank``: the bank's own sub."""
    if rule.type == "bank":
        return bank_sub
    if not rule.salt:
        raise ValueError("subject.salt is required for pairwise subjects")
    mac = hmac.new(rule.salt.encode(), f"{bank_id}\x00{bank_sub}".encode(), hashlib.sha256)
    return b64url(mac.digest())
