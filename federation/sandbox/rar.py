"""RFC 9396 at the sandbox bank's redirect flow: ``authorization_details`` at /authorize
(and /par), shown on the consent page, answered in the token response; and BankID's
OIDC provider's permission items (``[{type: "payment.v1", permission}]``), taken "only in
PAR requests", approved with a ``permission_digest`` in the ID token.

Which types it takes is the knob ``SandboxBank.rar_types`` (its metadata lists them).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from federation.sandbox.bank import SandboxBank
from federation.sandbox.bankid import PERMISSION_TYPES

Details = tuple[dict[str, Any], ...]


class DetailsError(ValueError):
    """RFC 9396 §5: the request's authorization_details are refused."""


def parse(bank: SandboxBank, raw: str | None, *, pushed: bool) -> Details:
    """The request's authorization_details, each of a type the bank takes; a permission
    item only when the request was pushed."""
    if raw is None:
        return ()
    try:
        details = json.loads(raw)
    except ValueError as exc:
        raise DetailsError("authorization_details is not JSON") from exc
    if not isinstance(details, list) or not details or not all(
        isinstance(d, dict) and isinstance(d.get("type"), str) for d in details
    ):
        raise DetailsError("authorization_details must be an array of objects with a type")
    for detail in details:
        if detail["type"] not in bank.rar_types:
            raise DetailsError("an authorization_details type this bank does not take")
        if detail["type"] in PERMISSION_TYPES:
            if not pushed:
                raise DetailsError("a permission is only taken in a pushed request")
            if _statement(detail) is None:
                raise DetailsError("a permission item needs a base64url permission")
    return tuple(details)


def _statement(detail: Mapping[str, Any]) -> dict[str, Any] | None:
    value = detail.get("permission")
    if not isinstance(value, str):
        return None
    try:
        statement = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError):
        return None
    return statement if isinstance(statement, dict) else None


def permission_of(details: Details) -> str | None:
    """The statement of the request's permission item, if it had one."""
    return next((str(d["permission"]) for d in details if d["type"] in PERMISSION_TYPES), None)


def passed(details: Details) -> Details:
    """The details answered in the token response as they were asked (not permissions)."""
    return tuple(d for d in details if d["type"] not in PERMISSION_TYPES)


def describe(details: Details) -> list[str]:
    """What the consent page shows: each payment's amount, currency and creditor."""
    lines: list[str] = []
    for detail in details:
        if detail["type"] in PERMISSION_TYPES:
            statement = _statement(detail) or {}
            for p in statement.get("payments") or ():
                lines.append(f"Pay {p.get('amount')} {p.get('currency')} to "
                             f"{p.get('creditorName')}")
            if isinstance(statement.get("text"), str):
                lines.append(statement["text"])
            continue
        amount = detail.get("instructedAmount")
        if isinstance(amount, dict):
            lines.append(f"Pay {amount.get('amount')} {amount.get('currency')} to "
                         f"{detail.get('creditorName')}")
        else:
            lines.append(f"Allow {detail['type']}")
    return lines
