"""``${NAME}`` and ``${NAME:-default}`` in string values, from the environment.

Substitution runs on the scalars YAML already parsed, so a value holding YAML
syntax (``:``, ``#``, quotes) cannot break parsing. ``${NAME:-default}`` uses
the default when NAME is unset or empty, as in the shell; ``$${`` is a literal
``${``. A reference that cannot be resolved is reported with its key path and
the value becomes :data:`UNRESOLVED`, which the readers then skip silently (the
problem is already on the list).

Before parsing, :class:`Protected` swaps each reference in the file for a plain
token and puts it back in the parsed strings: inside ``{...}`` or ``[...]`` the
``{`` of an unquoted ``${NAME}`` would otherwise be YAML syntax, and
``subject: {type: pairwise, salt: ${SUBJECT_SALT}}`` is how operators write it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Final

from proxy.config.errors import Problems, child, item


class _Unresolved:
    def __repr__(self) -> str:
        return "UNRESOLVED"


UNRESOLVED: Final = _Unresolved()

# `$${` (escape), `${...}` (reference), or a `${` never closed
_REF = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


class Protected:
    """The text of a config file with its ``${...}`` references swapped for tokens."""

    _REFERENCE = re.compile(r"\$\{[^}\n]*\}")

    def __init__(self, text: str) -> None:
        self._references: list[str] = []
        self._prefix = f"a2aref{secrets.token_hex(6)}n"  # cannot clash with the file's text
        self._token = re.compile(re.escape(self._prefix) + r"([0-9]+)z")
        self.text = self._REFERENCE.sub(self._swap, text)

    def _swap(self, match: re.Match[str]) -> str:
        self._references.append(match.group(0))
        return f"{self._prefix}{len(self._references) - 1}z"

    def restore(self, data: object, _inside: frozenset[int] = frozenset()) -> object:
        """``data`` parsed from :attr:`text`, with the references back in every string.
        A YAML alias to a node that contains it (``a: &x [b, *x]``) builds a cycle: it
        raises RecursiveAlias, never recurses without end."""
        if isinstance(data, str):
            return self._token.sub(lambda m: self._references[int(m.group(1))], data)
        if isinstance(data, Mapping | list):
            if id(data) in _inside:
                raise RecursiveAlias("a YAML alias refers to a node that contains it")
            inside = _inside | {id(data)}
            if isinstance(data, list):
                return [self.restore(value, inside) for value in data]
            return {
                self.restore(key, inside): self.restore(value, inside)
                for key, value in data.items()
            }
        return data


class RecursiveAlias(ValueError):
    """The YAML holds a cycle (an alias inside the node it names)."""


def substitute(
    data: object, environ: Mapping[str, str], problems: Problems, path: str = ""
) -> object:
    """A copy of ``data`` with every reference in every string scalar replaced."""
    if isinstance(data, str):
        return _substitute_str(data, environ, problems, path)
    if isinstance(data, Mapping):
        return {
            key: substitute(value, environ, problems, child(path, str(key)))
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [
            substitute(value, environ, problems, item(path, index))
            for index, value in enumerate(data)
        ]
    return data


def _substitute_str(
    text: str, environ: Mapping[str, str], problems: Problems, path: str
) -> str | _Unresolved:
    if "$" not in text:
        return text
    failed = False

    def replace(match: re.Match[str]) -> str:
        nonlocal failed
        whole = match.group(0)
        if whole == "$${":
            return "${"
        body = match.group("body")
        parsed = _BODY.fullmatch(body) if body is not None else None
        if parsed is None:
            problems.add(
                path,
                f"malformed reference {whole!r}: write ${{NAME}} or ${{NAME:-default}} "
                "(or $${ for a literal ${)",
            )
            failed = True
            return ""
        name, default = parsed.group("name"), parsed.group("default")
        value = environ.get(name)
        if default is not None:
            return value or default
        if value is None:
            problems.add(
                path,
                f"environment variable {name} is not set "
                f"(set it, or write ${{{name}:-default}} to give a default)",
            )
            failed = True
            return ""
        return value

    result = _REF.sub(replace, text)
    return UNRESOLVED if failed else result
