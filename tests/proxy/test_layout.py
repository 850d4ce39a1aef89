"""The rooms of ``proxy/`` and the arrows between them (README.md, "Layout").

Every import in ``proxy/`` and ``federation/`` is read from the source (top-level and
inside functions alike) and checked against the arrows: a room imports only the rooms
below it, ``federation`` never imports ``proxy``, the store knows no HTTP, and a rule
module touches aiohttp only where it reads a request or holds the HTTP session.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each room may import the rooms named here and nothing else of proxy or federation
# (its own modules always). Read from the bottom up: every row adds one room.
MODEL: frozenset[str] = frozenset()
CONFIG = frozenset({"federation"})
OBSERVABILITY = frozenset({"proxy.model"})
STORE = frozenset({"proxy.config", "proxy.model"})
OAUTH = STORE | OBSERVABILITY | CONFIG | {"proxy.store", "proxy.observability"}
WEB = OAUTH | {"proxy.oauth"}
LOGIN = WEB | {"proxy.web"}
ENDPOINTS = LOGIN | {"proxy.login"}
APP = ENDPOINTS | {"proxy.endpoints"}
OPS = APP | {"proxy.app"}
ALLOWED: dict[str, frozenset[str]] = {
    "proxy.model": MODEL,
    "proxy.config": CONFIG,
    "proxy.observability": OBSERVABILITY,
    "proxy.store": STORE,
    "proxy.oauth": OAUTH,
    "proxy.web": WEB,
    "proxy.login": LOGIN,
    "proxy.endpoints": ENDPOINTS,
    "proxy.app": APP,
    "proxy.ops": OPS,
    "proxy.__main__": frozenset({"proxy.ops"}),
    "proxy": frozenset(),
    "federation": frozenset(),
}
# rule modules that may touch aiohttp, and why; any other module of proxy.oauth may not
OAUTH_AIOHTTP = {
    "proxy.oauth.services": "holds the app's HTTP session and its typed app key",
    "proxy.oauth.clients": "client authentication reads the Authorization header",
    "proxy.oauth.dpop": "a DPoP proof is checked against the request's method and URL",
}
NO_HTTP = ("proxy.model", "proxy.config", "proxy.store")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports (a module, or module.name)
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[Import]:
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield Import(module, f"{base}.{alias.name}", node.lineno)


def room(module: str) -> str:
    """``proxy.oauth.grants`` -> ``proxy.oauth``; ``proxy.app`` is a room of one module."""
    top, _, rest = module.partition(".")
    if top != "proxy":
        return top
    first = rest.split(".")[0]
    return f"proxy.{first}" if first else "proxy"


def project_modules() -> list[Path]:
    return sorted([*ROOT.glob("proxy/**/*.py"), *ROOT.glob("federation/**/*.py")])


def all_imports() -> list[Import]:
    return [i for path in project_modules() for i in imports(path)]


def test_every_module_of_proxy_lives_in_a_room() -> None:
    loose = {p.name for p in (ROOT / "proxy").glob("*.py")}
    assert loose == {"__init__.py", "__main__.py", "app.py"}, (
        "a new module belongs in a room (proxy/<room>/), see README.md, Layout"
    )
    for folder in (ROOT / "proxy").iterdir():
        if folder.is_dir() and folder.name != "__pycache__":
            assert f"proxy.{folder.name}" in ALLOWED, f"proxy/{folder.name}/ has no arrows"
            init = folder / "__init__.py"
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
            assert doc and "import" in doc, f"{init}: say what lives here and what it imports"


def test_imports_follow_the_arrows() -> None:
    wrong = []
    for imp in all_imports():
        target_top = imp.target.split(".")[0]
        if target_top not in ("proxy", "federation"):
            continue
        source, target = room(imp.module), room(imp.target)
        if source == target:
            continue
        if target not in ALLOWED[source]:
            wrong.append(f"{imp.module}:{imp.line} imports {imp.target} ({source} -> {target})")
    assert wrong == []


def test_the_store_and_the_model_know_no_http() -> None:
    wrong = [f"{i.module}:{i.line} imports {i.target}" for i in all_imports()
             if i.module.startswith(NO_HTTP) and i.target.split(".")[0] == "aiohttp"]
    assert wrong == []


def test_rules_touch_aiohttp_only_where_they_must() -> None:
    users = {i.module for i in all_imports()
             if i.module.startswith("proxy.oauth.") and i.target.split(".")[0] == "aiohttp"}
    assert users <= set(OAUTH_AIOHTTP), sorted(users - set(OAUTH_AIOHTTP))


# -- the check itself catches what it is for -------------------------------------------


@pytest.mark.parametrize(("module", "text", "finding"), [
    ("proxy/store/bad.py", "from proxy.web import pages\n", "proxy.store -> proxy.web"),
    ("federation/bad.py", "import proxy.oauth.grants\n", "federation -> proxy.oauth"),
    ("proxy/oauth/bad.py", "def f():\n    from proxy.login import start\n",
     "proxy.oauth -> proxy.login"),
    ("proxy/model/bad.py", "from ..store import Store\n", "proxy.model -> proxy.store"),
])  # fmt: skip
def test_a_wrong_arrow_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                module: str, text: str, finding: str) -> None:
    fake_root = tmp_path
    path = fake_root / module
    path.parent.mkdir(parents=True)
    path.write_text(text)
    monkeypatch.setattr(f"{__name__}.ROOT", fake_root)
    (found,) = list(imports(path))
    source, target = room(found.module), room(found.target)
    assert f"{source} -> {target}" == finding
    assert target not in ALLOWED[source]
