"""``authorization_details_types:`` (RFC 9396): each type the operator declares, with the
JSON Schema its objects must match; and the checks that the clients and banks naming a
type name a declared one."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from pathlib import Path
from urllib.parse import unquote

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from federation.settings import BankSettings
from proxy.config.errors import Problems, child
from proxy.config.keys import resolve
from proxy.config.reader import Section, describe
from proxy.config.settings import AuthorizationDetailsType, ClientSettings

KEY = "authorization_details_types"
TYPE_KEYS = ("schema", "id_token")
# RFC 9396 §2.1: "Possible means of reducing potential confusion are limiting the value to
# ASCII [RFC0020] characters": printable ASCII, no spaces (URIs fit)
_TYPE_NAME = re.compile(r"[\x21-\x7e]{1,200}")


def read_types(top: Section, base_dir: Path) -> tuple[AuthorizationDetailsType, ...]:
    raw = top.raw(KEY)
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        top.report(KEY, f"must be a mapping of type names to {{schema: file}} "
                   f"(got {describe(raw)})")  # fmt: skip
        return ()
    declared: list[AuthorizationDetailsType] = []
    for name, value in raw.items():
        path = child(top.at(KEY), str(name))
        if not isinstance(name, str) or not _TYPE_NAME.fullmatch(name):
            top.problems.add(path, "a type name is printable ASCII without spaces (RFC 9396 "
                             "§2.1), at most 200 characters")  # fmt: skip
            continue
        s = Section(value, path, top.problems, TYPE_KEYS)
        file = s.text("schema", required=True, why=" (a JSON Schema file)")
        id_token = s.flag("id_token", False)
        if s.broken or not file:
            continue
        schema = _schema(s, resolve(base_dir, file))
        if schema is not None:
            validator = validator_for(schema)(schema)
            declared.append(AuthorizationDetailsType(name, schema, validator, id_token))
    return tuple(declared)


def _schema(s: Section, path: Path) -> dict[str, object] | None:
    """The JSON Schema in ``path``, checked against its metaschema; None after reporting."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        s.report("schema", f"cannot read {path}: {exc.strerror or exc}")
        return None
    except (UnicodeDecodeError, ValueError) as exc:
        s.report("schema", f"{path} is not JSON ({exc})")
        return None
    if not isinstance(schema, dict):
        s.report("schema", f"{path} must hold a JSON Schema object (got {describe(schema)})")
        return None
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top"
        s.report("schema", f"{path} is not a valid JSON Schema (at {where}: {exc.message})")
        return None
    for ref in _refs(schema):
        # a request is never checked against a schema the proxy would have to fetch, nor
        # one whose reference leads nowhere (it would fail the request, not the start-up)
        if not ref.startswith("#") or (ref.startswith("#/") and not _points(schema, ref)):
            s.report("schema", f"{path}: $ref {ref[:80]!r} must point into this file "
                     "(#/...)")  # fmt: skip
            return None
    return schema


def _refs(node: object) -> list[str]:
    """Every ``$ref`` and ``$dynamicRef`` in a schema."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("$ref", "$dynamicRef") and
                 isinstance(v, str)]
        return found + [ref for v in node.values() for ref in _refs(v)]
    if isinstance(node, list):
        return [ref for v in node for ref in _refs(v)]
    return []


def _points(schema: object, ref: str) -> bool:
    """``ref`` (``#/a/b``, RFC 6901 JSON Pointer) names a part of ``schema``."""
    node = schema
    for raw in ref[2:].split("/"):
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def declared_names(top: Section) -> set[str]:
    """The type names the file declares, read or not (a type whose schema is broken is
    reported once, not again by every client that names it)."""
    raw = top.raw(KEY)
    return {name for name in raw if isinstance(name, str)} if isinstance(raw, dict) else set()


def check_types(names: Collection[str], clients: list[tuple[str, ClientSettings]],
                banks: Iterable[tuple[str, BankSettings]], problems: Problems) -> None:  # fmt: skip
    """Every type a client may use, and every type a bank turns into a permission, is
    declared."""
    known = ", ".join(sorted(names)) or "none"
    for path, client in clients:
        for index, name in enumerate(client.authorization_details_types):
            if name not in names:
                problems.add(f"{path}.{KEY}[{index}]",
                             f"{name!r} is not declared in {KEY} (declared: {known})")
    for path, bank in banks:
        for name in bank.permissions.types if bank.permissions else ():
            if name not in names:
                problems.add(f"{path}.permissions.types.{name}",
                             f"{name!r} is not declared in {KEY} (declared: {known})")
