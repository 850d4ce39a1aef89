"""The one exception the loader raises, and the list it fills."""

from __future__ import annotations


class ConfigError(Exception):
    """``config.yaml`` is wrong; ``errors`` lists every problem found, each
    ``"key.path: what is wrong and how to fix it"``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        head = "1 problem" if count == 1 else f"{count} problems"
        super().__init__(
            f"invalid configuration ({head}):\n" + "\n".join(f"  - {e}" for e in self.errors)
        )


class Problems:
    """Collects problems so that all of them are reported at once (dex style)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(f"{path or 'config'}: {message}")

    def raise_if_any(self) -> None:
        if self.errors:
            raise ConfigError(self.errors)


def child(path: str, key: str) -> str:
    """The key path of ``key`` inside the mapping at ``path``."""
    return f"{path}.{key}" if path else key


def item(path: str, index: int) -> str:
    """The key path of element ``index`` of the list at ``path``."""
    return f"{path}[{index}]"
