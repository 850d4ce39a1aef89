"""RFC 9396 (Rich Authorization Requests) toward a bank: whether it takes the merchant's
``authorization_details`` as they are, and what it says the user granted.

The proxy checked the merchant's objects against the operator's schemas before any
adapter sees them; here they are only carried. A bank takes them as they are when its
metadata lists every type in ``authorization_details_types_supported`` (RFC 9396 §10:
"the supported list of authorization details types is included in the AS metadata
response ... using the metadata parameter authorization_details_types_supported").
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from federation.protocol import BankError, Details
from federation.settings import BankSettings

ERROR = "invalid_authorization_details"


def types_of(details: Details) -> set[str]:
    return {str(d["type"]) for d in details}


def listed(doc: Mapping[str, Any], details: Details) -> bool:
    """The bank's metadata lists every type of ``details``."""
    supported = doc.get("authorization_details_types_supported")
    return isinstance(supported, list) and types_of(details) <= {
        t for t in supported if isinstance(t, str)}


def cannot_carry(bank: BankSettings, detail: str) -> BankError:
    """RFC 9396 §5: the AS "MUST refuse to process any unknown authorization details
    type": a bank that takes neither the merchant's types nor a permission made of them
    cannot serve this login. The description names the bank (from the config), never
    the request; the proxy does not fall back to another bank for it."""
    return BankError(ERROR, f"{bank.display_name} cannot take these authorization_details",
                     detail)


def encoded(details: Details) -> str:
    """The request parameter: "the parameter is encoded using the
    application/x-www-form-urlencoded format of the serialized JSON" (RFC 9396 §3); the
    form encoding is the caller's."""
    return json.dumps([dict(d) for d in details], separators=(",", ":"), ensure_ascii=False)


def granted(body: Mapping[str, Any], kinds: Collection[str]) -> Details | None:
    """RFC 9396 §7: the token response's ``authorization_details``, "as granted by the
    resource owner and assigned to the respective access token"; None when the bank left
    them out. The bank's answer is what the user approved, so it is kept as the bank gave
    it (§7.1: it "MAY differ from what the client requests"), but only in the types the
    merchant asked for (``kinds``): anything else is not an answer to this request."""
    answer = body.get("authorization_details")
    if answer is None:
        return None
    if not isinstance(answer, list) or not all(
        isinstance(d, dict) and isinstance(d.get("type"), str) and d["type"] in kinds
        for d in answer
    ):
        raise BankError("server_error", "the bank's answer could not be used",
                        "token response: authorization_details not of the requested types")
    return tuple(dict(d) for d in answer)
