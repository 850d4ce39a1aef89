"""BankID's permissions: what the user is asked to approve, registered upfront.

A BankID with biometrics login starts with a permission the merchant backend (here the
proxy) registers at the permissions API (the seed, step 5); its ``permissionToken`` is
the ``login_hint_token`` of app-authorize. The permission carries a statement, "URL safe
Base64 encoding" of a JSON object with a unique ``nonce``: ``authentication.v1`` for a
plain login, ``payment.v1`` for payments, ``text.v1`` for a text to approve. The same
statement may go to BankID's own OIDC provider inside RFC 9396 ``authorization_details``
(``[{type, permission}]``, in PAR only). BankID then puts ``permission_digest``, "a
SHA-256 hash of the permission statement", into the ID token: it must be the statement
the proxy wrote.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federation.protocol import BankError, Details
from federation.rar import cannot_carry
from federation.settings import BankSettings, Permissions

AUTHENTICATION = "authentication.v1"
PAYMENT = "payment.v1"
TEXT = "text.v1"
# the permission types whose statement the proxy can write
TYPES = (AUTHENTICATION, PAYMENT, TEXT)
# the seed: "The amount is a decimal amount represented as a string and must use the
# dot as the decimal separator."
_AMOUNT = re.compile(r"[0-9]{1,15}(\.[0-9]{1,4})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
DIGEST_DESCRIPTION = "the bank approved another permission than the one the proxy registered"


@dataclass(frozen=True)
class Statement:
    """One permission: its type and its statement, URL-safe base64 (no padding)."""

    type: str
    permission: str

    def digests(self) -> list[str]:
        """What ``permission_digest`` may be, base64url: SHA-256 of the statement as
        registered (its base64url text), or of the JSON it encodes. BankID's
        documentation says "a SHA-256 hash of the permission statement" without saying
        which form; both commit to exactly these bytes."""
        raw = base64.urlsafe_b64decode(self.permission + "=" * (-len(self.permission) % 4))
        return [_b64(hashlib.sha256(self.permission.encode("ascii")).digest()),
                _b64(hashlib.sha256(raw).digest())]


def statement_for(bank: BankSettings, permissions: Permissions,
                  details: Details) -> Statement:  # fmt: skip
    """The permission of a login: ``login_type`` without details; otherwise the one
    permission type every detail's type maps to (``permissions.types``), its statement
    made from them. BankError invalid_authorization_details when they do not fit one."""
    if not details:
        return _statement(permissions.login_type, {})
    kinds = {permissions.types.get(str(d["type"])) for d in details}
    if len(kinds) != 1 or None in kinds:
        raise cannot_carry(bank, "permissions: the details do not map to one permission type")
    kind = kinds.pop()
    assert kind is not None
    return _statement(kind, _body(bank, kind, details))


def statement_of(bank: BankSettings, kind: str, details: Details) -> Statement:
    """The statement of a permission of ``kind`` made of ``details`` (BankID's OIDC
    provider: a ``[{type, permission}]`` authorization_details item)."""
    return _statement(kind, _body(bank, kind, details))


def _statement(kind: str, body: Mapping[str, Any]) -> Statement:
    # the seed: "The nonce must be a unique value for each permission you register."
    content = {"nonce": secrets.token_urlsafe(16), **body}
    text = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    return Statement(kind, _b64(text.encode("utf-8")))


def _body(bank: BankSettings, kind: str, details: Details) -> dict[str, Any]:
    if kind == PAYMENT:
        return {"payments": [_payment(bank, d) for d in details]}
    if kind == TEXT:
        texts = [d.get("text") for d in details]
        if len(texts) != 1 or not isinstance(texts[0], str) or not texts[0]:
            raise cannot_carry(bank, "permissions: text.v1 takes one detail with a text")
        return {"text": texts[0]}
    raise cannot_carry(bank, f"permissions: no statement of type {kind[:32]} from details")


def _payment(bank: BankSettings, detail: Mapping[str, Any]) -> dict[str, str]:
    """An RFC 9396 ``payment_initiation`` object as a payment of ``payment.v1``: amount and
    currency from ``instructedAmount``, ``creditorName``, and the merchant's reference
    (``endToEndIdentification``) as ``paymentId``, which BankID does not show the user."""
    instructed = detail.get("instructedAmount")
    amount = instructed.get("amount") if isinstance(instructed, dict) else None
    currency = instructed.get("currency") if isinstance(instructed, dict) else None
    creditor = detail.get("creditorName")
    if not (isinstance(amount, str) and _AMOUNT.fullmatch(amount)
            and isinstance(currency, str) and _CURRENCY.fullmatch(currency)
            and isinstance(creditor, str) and creditor):
        raise cannot_carry(bank, "permissions: a payment without a dot-decimal amount, "
                           "currency or creditorName")  # fmt: skip
    payment = {"amount": amount, "currency": currency, "creditorName": creditor}
    reference = detail.get("endToEndIdentification")
    if isinstance(reference, str) and reference:
        payment = {"paymentId": reference, **payment}
    return payment


def check_digest(claims: Mapping[str, Any], digests: Sequence[str]) -> None:
    """Where the ID token carries ``permission_digest``, it must be the one of the
    statement registered for this login; anything else is server_error, never a code."""
    claimed = claims.get("permission_digest")
    if claimed is None:
        return
    got = _decode(claimed)
    if got is None or not any(
        hmac.compare_digest(got, _decode(d) or b"") for d in digests
    ):
        raise BankError("server_error", DIGEST_DESCRIPTION,
                        "id_token: permission_digest does not match the permission registered")


def _decode(value: Any) -> bytes | None:
    """A SHA-256 digest in base64 or base64url, padded or not (BankID's example is
    padded standard base64); None for anything else."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9+/_-]{43}=?", value):
        return None
    try:
        raw = base64.urlsafe_b64decode(value.replace("+", "-").replace("/", "_").rstrip("=")
                                       + "=")
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
