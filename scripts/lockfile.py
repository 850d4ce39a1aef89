"""Read uv.lock for the scripts that run before, or beside, uv. Standard library only.

    python3 scripts/lockfile.py uv-requirement [LOCK]
        the requirement line that installs the uv the lock locks, with its hashes
        (scripts/venv.sh and the Dockerfile: pip install --require-hashes -r ...)
    python3 scripts/lockfile.py changes OLD_LOCK NEW_LOCK
        one line per package added, removed or moved (scripts/upgrade)

uv is locked like everything else (dependency group ``tools``), so the tool that reads
the lock is itself installed from it.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

LOCK = Path(__file__).resolve().parent.parent / "uv.lock"


def packages(lock: Path) -> list[dict[str, Any]]:
    with lock.open("rb") as f:
        found: list[dict[str, Any]] = tomllib.load(f).get("package", [])
    return found


def uv_requirement(lock: Path = LOCK) -> str:
    found = [p for p in packages(lock) if p["name"] == "uv"]
    if len(found) != 1:
        raise SystemExit(f"{lock}: expected one locked version of uv (dependency group "
                         f"'tools' in pyproject.toml), found {len(found)}")
    uv = found[0]
    files = [*uv.get("wheels", []), *([uv["sdist"]] if "sdist" in uv else [])]
    hashes = sorted({f["hash"] for f in files if "hash" in f})
    if not hashes:
        raise SystemExit(f"{lock}: uv {uv['version']} is locked without hashes")
    return " ".join([f"uv=={uv['version']}", *(f"--hash={h}" for h in hashes)])


def changes(old: Path, new: Path) -> list[str]:
    before = {p["name"]: str(p.get("version", "?")) for p in packages(old)}
    after = {p["name"]: str(p.get("version", "?")) for p in packages(new)}
    lines = []
    for name in sorted(before.keys() | after.keys()):
        was, now = before.get(name), after.get(name)
        if was == now:
            continue
        if was is None:
            lines.append(f"+ {name} {now}")
        elif now is None:
            lines.append(f"- {name} {was}")
        else:
            lines.append(f"  {name} {was} -> {now}")
    return lines


def main(argv: list[str]) -> int:
    if argv[:1] == ["uv-requirement"] and len(argv) <= 2:
        print(uv_requirement(Path(argv[1]) if len(argv) == 2 else LOCK))
        return 0
    if argv[:1] == ["changes"] and len(argv) == 3:
        moved = changes(Path(argv[1]), Path(argv[2]))
        print("\n".join(moved) if moved else "uv.lock: nothing moved")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
