"""RFC 9396 (OAuth 2.0 Rich Authorization Requests) on the merchant side.

``authorization_details`` is accepted at /authorize, /par and /native/authorize: a JSON
array of objects, each of a type the operator declared (``authorization_details_types``,
with the JSON Schema its objects must match) and the client may use. What the user
approved (the bank's answer where it gave one) is what the grant records; it comes back
in the token response, introspection and, per type, the ID token. A token request may
ask for fewer of the granted objects, never for others.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from jsonschema.exceptions import best_match
from referencing.exceptions import Unresolvable

from federation.protocol import BankResult, Details
from proxy.config.settings import ClientSettings, Config, ResourceServer
from proxy.model.records import Grant, Transaction
from proxy.oauth.errors import OAuthError

PARAMETER = "authorization_details"
# RFC 9396 §5
ERROR = "invalid_authorization_details"
# as long as the authorization request may hold it (PARAMETER_LIMITS)
MAX_LENGTH = 2048


def _refuse(description: str, detail: str = "") -> NoReturn:
    # RFC 9396 §5: "The AS MUST abort processing and respond with an error
    # invalid_authorization_details to the client"; descriptions never quote the request
    raise OAuthError(ERROR, description, detail=detail or description)


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("a member named twice")
    return dict(pairs)


def parse(raw: str) -> Details:
    """RFC 9396 §2: "The request parameter authorization_details contains, in JSON
    notation, an array of objects", and each object's ``type`` "is REQUIRED". Members
    named twice, NaN and Infinity are refused: two readers must see the same objects."""
    if len(raw) > MAX_LENGTH:
        raise OAuthError("invalid_request", "authorization_details is too long")
    try:
        value = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        _refuse(f"{PARAMETER} is not JSON")
    if not isinstance(value, list) or not value:
        _refuse(f"{PARAMETER} must be a non-empty JSON array of objects")
    if not all(isinstance(d, dict) and isinstance(d.get("type"), str) for d in value):
        _refuse(f"each object of {PARAMETER} needs a string type")
    return tuple(value)


def check_request(config: Config, client: ClientSettings, params: Mapping[str, str]) -> None:
    """RFC 9396 §5: "The AS MUST refuse to process any unknown authorization details type
    or authorization details not conforming to the respective type definition": an
    unknown type, "an object of known type but containing unknown fields", "fields of the
    wrong type", "fields with invalid values", "missing required fields" (the type's
    schema says which); and a type this client may not use."""
    raw = params.get(PARAMETER)
    if raw is None:
        return
    types = {t.name: t for t in config.authorization_details_types}
    for detail in parse(raw):
        declared = types.get(detail["type"])
        if declared is None:
            _refuse(f"{PARAMETER} names a type this server does not know")
        if declared.name not in client.authorization_details_types:
            _refuse(f"this client may not use an {PARAMETER} type it names")
        try:
            error = best_match(declared.validator.iter_errors(detail))
        except Unresolvable as exc:  # a reference the config check could not follow
            raise OAuthError("server_error", "the authorization_details schema could not "
                             "be applied", detail=f"{declared.name}: {type(exc).__name__}"
                             ) from exc  # fmt: skip
        if error is not None:
            # the log says where in the schema, never the request's value
            where = "/".join(str(p) for p in error.schema_path)
            _refuse(f"an {PARAMETER} object does not match its type's schema",
                    f"{declared.name}: schema {where} not met")


def requested(params: Mapping[str, str]) -> Details:
    """The request's authorization_details (already checked), or none."""
    raw = params.get(PARAMETER)
    return parse(raw) if raw is not None else ()


def granted(txn: Transaction, result: BankResult) -> Details | None:
    """What the grant records: the bank's answer where it returned one (RFC 9396 §7.1:
    the details "MAY differ from what the client requests"), else what the user was asked
    to approve; None for a login without details."""
    if txn.authorization_details is None:
        return None
    if result.authorization_details is not None:
        return result.authorization_details
    return tuple(txn.authorization_details)


def for_token(form: Mapping[str, str], grant: Grant) -> Details | None:
    """RFC 9396 §6: the token request's authorization_details, checked against the grant:
    "The AS checks whether the underlying grant ... allows the issuance of an access
    token with the requested authorization details. Otherwise, the AS refuses the request
    with the error code invalid_authorization_details". There is no general way to
    compare two objects (§6.1), so a request may name some of the granted objects, each
    exactly as granted, never another one: narrower, never wider. Without the parameter:
    all that was granted (None: the grant has none)."""
    raw = form.get(PARAMETER)
    if raw is None:
        return grant.authorization_details
    asked = parse(raw)
    left = list(grant.authorization_details or ())
    for detail in asked:
        if detail not in left:
            _refuse(f"{PARAMETER} exceeds what was granted")
        left.remove(detail)
    return asked


def for_server(details: Details, server: ResourceServer) -> list[dict[str, Any]]:
    """RFC 9396 §9.2: the introspection response's ``authorization_details`` "MUST contain
    the same structure ..., potentially filtered and extended for the RS making the
    introspection request". An object that names ``locations`` (§2.2: "the location of
    the resource or resource server") is for the resource servers whose audience is one
    of them; an object without is for every one that sees the token."""
    return [dict(d) for d in details
            if not isinstance(d.get("locations"), list) or server.audience in d["locations"]]


def for_id_token(config: Config, grant: Grant) -> list[dict[str, Any]]:
    """The granted objects of the types the operator puts into ID tokens (``id_token:
    true``); none by default, since the ID token goes to the app, not to an API."""
    shown = {t.name for t in config.authorization_details_types if t.id_token}
    return [dict(d) for d in grant.authorization_details or () if d["type"] in shown]
