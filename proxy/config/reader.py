"""Typed reads from one mapping of the config, each problem reported with its key path.

A :class:`Section` knows the keys its mapping may hold; any other key is
reported at once, with a did-you-mean suggestion. Its readers never raise:
they report and hand back a placeholder, so that reading carries on and every
problem is listed together. Config is only built when nothing was reported.
Values that are strings where a number or a boolean is expected (what
``${PORT:-8080}`` yields) are converted.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping
from typing import TypeVar

from proxy.config.env import UNRESOLVED
from proxy.config.errors import Problems, child, item

T = TypeVar("T", bound=str)

# The shortest secret a caller may present to this server (a client's or resource
# server's client_secret, the metrics bearer token), in bytes of its UTF-8 form. RFC 7518
# §3.2: "A key of the same size as the hash output (for instance, 256 bits for "HS256")
# or larger MUST be used with this algorithm" (OpenID Connect's client_secret_jwt uses
# the secret's octets as that key); RFC 6749 §10.10: "The probability of an attacker
# guessing generated tokens (and other credentials not intended for handling by
# end-users) MUST be less than or equal to 2^(-128)", which 32 bytes meet even as hex.
MIN_SECRET_BYTES = 32
GENERATE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"

_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})
_INT = re.compile(r"[+-]?[0-9]+")


def describe(value: object, secret: bool = False) -> str:
    """How a bad value is shown in a message; a secret is shown by its type only."""
    if secret or isinstance(value, Mapping | list):
        kinds = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
        kinds |= {int: "an integer", float: "a number"}
        return kinds.get(type(value), f"a {type(value).__name__}")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def suggest(key: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class Section:
    """The mapping at ``path``, allowed to hold ``keys``."""

    def __init__(self, value: object, path: str, problems: Problems, keys: Collection[str]) -> None:
        self.path = path
        self.problems = problems
        self.keys = keys
        self.data: Mapping[str, object] = {}
        # broken: the mapping itself is wrong (and reported); reads stay silent
        self.broken = value is UNRESOLVED
        if value is None or value is UNRESOLVED:
            return
        if not isinstance(value, Mapping):
            problems.add(path, f"must be a mapping (got {describe(value)})")
            self.broken = True
            return
        self.data = value
        for key in value:
            if not isinstance(key, str):
                problems.add(child(path, str(key)), "keys must be strings")
            elif key not in keys:
                hint = suggest(key, keys) or f" (known keys: {', '.join(sorted(keys))})"
                problems.add(child(path, key), f"unknown key{hint}")

    def at(self, key: str) -> str:
        return child(self.path, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def report(self, key: str, message: str) -> None:
        self.problems.add(self.at(key), message)

    def raw(self, key: str, required: bool = False, why: str = "") -> object:
        """The value, or None when absent, null, already reported or unreadable.

        ``why`` completes "is required" (e.g. " with client_auth private_key_jwt").
        """
        assert key in self.keys, key
        value = self.data.get(key)
        if self.broken or value is UNRESOLVED:
            return None
        if value is None and required:
            self.report(key, f"is required{why}")
        return value

    # -- scalars --------------------------------------------------------------

    def text(
        self,
        key: str,
        default: str = "",
        *,
        required: bool = False,
        secret: bool = False,
        why: str = "",
    ) -> str:
        value = self.raw(key, required, why)
        if value is None:
            return default
        if not isinstance(value, str):
            quote = "" if secret else "; quote it"
            self.report(key, f"must be a string (got {describe(value, secret)}){quote}")
            return default
        if not value and required:
            self.report(key, "must not be empty")
        return value

    def opt_text(self, key: str, *, secret: bool = False) -> str | None:
        """A string that may be left out, but not given empty."""
        if self.raw(key) is None:
            return None
        value = self.text(key, secret=secret)
        if not value and isinstance(self.raw(key), str):
            self.report(key, "must not be empty (leave the key out instead)")
        return value or None

    def credential(self, key: str) -> str | None:
        """A secret that callers present to this server, left out or at least
        :data:`MIN_SECRET_BYTES` long (its length is not shown either)."""
        value = self.opt_text(key, secret=True)
        if value is not None and len(value.encode("utf-8", "surrogatepass")) < MIN_SECRET_BYTES:
            self.report(key, f"is shorter than {MIN_SECRET_BYTES} bytes: a secret that callers "
                        "present must hold 256 bits to resist guessing (RFC 7518 §3.2, RFC "
                        f"6749 §10.10); generate one with: {GENERATE_SECRET}")  # fmt: skip
        return value

    def choice(self, key: str, options: Collection[T], default: T | None = None) -> T | None:
        value = self.raw(key, required=default is None)
        if value is None:
            return default
        for option in options:
            if value == option:
                return option
        allowed = ", ".join(options)
        self.report(
            key, f"must be one of {allowed} (got {describe(value)}){suggest_value(value, options)}"
        )
        return default

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool):
            self.report(key, f"must be an integer (got {describe(value)})")
            return default
        return self._in_range(key, value, default, minimum, maximum)

    def positive(self, key: str, default: int) -> int:
        value = self.integer(key, default)
        if value <= 0:
            self.report(key, f"must be a positive integer (got {value})")
            return default
        return value

    def number(
        self, key: str, default: float, *, minimum: float = 0.0, exclusive: bool = False
    ) -> float:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                pass
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            self.report(key, f"must be a number (got {describe(value)})")
            return default
        if value < minimum or (exclusive and value == minimum):
            bound = "greater than" if exclusive else "at least"
            self.report(key, f"must be {bound} {minimum:g} (got {value:g})")
            return default
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if not isinstance(value, bool):
            self.report(key, f"must be true or false (got {describe(value)})")
            return default
        return value

    def _in_range(
        self, key: str, value: int, default: int, minimum: int | None, maximum: int | None
    ) -> int:
        low = minimum is not None and value < minimum
        high = maximum is not None and value > maximum
        if low or high:
            if minimum is not None and maximum is not None:
                self.report(key, f"must be between {minimum} and {maximum} (got {value})")
            elif minimum is not None:
                self.report(key, f"must be at least {minimum} (got {value})")
            else:
                self.report(key, f"must be at most {maximum} (got {value})")
            return default
        return value

    # -- collections ----------------------------------------------------------

    def items(self, key: str, *, required: bool = False) -> list[tuple[str, object]]:
        """The elements of a list, each with its key path."""
        value = self.raw(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            self.report(key, f"must be a list (got {describe(value)})")
            return []
        return [(item(self.at(key), index), element) for index, element in enumerate(value)]

    def text_items(self, key: str, *, required: bool = False) -> list[tuple[str, str]]:
        """The good elements of a list of non-empty strings, each with its key path;
        ``required`` also means the list must not be empty."""
        value = self.raw(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            self.report(key, f"must be a list of strings (got {describe(value)})")
            return []
        if required and not value:
            self.report(key, "must not be empty")
        result: list[tuple[str, str]] = []
        for path, element in self.items(key):
            if element is UNRESOLVED:
                continue
            if not isinstance(element, str) or not element:
                self.problems.add(path, f"must be a non-empty string (got {describe(element)})")
            else:
                result.append((path, element))
        return result

    def texts(
        self, key: str, default: tuple[str, ...] = (), *, required: bool = False
    ) -> tuple[str, ...]:
        if self.raw(key) is None:
            self.raw(key, required)  # reports a required list that is missing
            return default
        return tuple(text for _, text in self.text_items(key, required=required))

    def text_map(self, key: str) -> dict[str, str]:
        """A mapping of strings to strings."""
        value = self.raw(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.report(key, f"must be a mapping of strings to strings (got {describe(value)})")
            return {}
        result: dict[str, str] = {}
        for name, target in value.items():
            if target is UNRESOLVED:
                continue
            if not isinstance(name, str) or not isinstance(target, str) or not target:
                self.problems.add(
                    child(self.at(key), str(name)),
                    f"must map a string to a non-empty string (got {describe(target)})",
                )
            else:
                result[name] = target
        return result

    def section(
        self, key: str, keys: Collection[str], *, required: bool = False, why: str = ""
    ) -> Section:
        value = self.raw(key, required, why)
        found = Section(value, self.at(key), self.problems, keys)
        # a required mapping that is missing was reported once; its keys need not be
        found.broken |= self.broken or (required and value is None)
        return found


def suggest_value(value: object, options: Collection[str]) -> str:
    return suggest(value, options) if isinstance(value, str) else ""
