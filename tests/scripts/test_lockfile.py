"""The lock decides what a fresh clone installs (scripts/venv.sh, scripts/lockfile.py,
the Dockerfile), and the repository holds no generated files.

A clean clone's ``scripts/test`` must pass the same way tomorrow as today: every install
comes from uv.lock, a pyproject.toml that disagrees with it stops the run with a message
saying what to do, and profiles or dumps never enter git.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".venv" / "bin" / "uv"


def _lockfile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lockfile", ROOT / "scripts" / "lockfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lockfile = _lockfile()


def _write_lock(path: Path, packages: str) -> Path:
    path.write_text('version = 1\nrequires-python = ">=3.11"\n\n' + packages)
    return path


UV_ENTRY = '''[[package]]
name = "uv"
version = "0.13.10"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://x/uv-0.13.10.tar.gz", hash = "sha256:{sdist}" }}
wheels = [
    {{ url = "https://x/uv-a.whl", hash = "sha256:{b}" }},
    {{ url = "https://x/uv-b.whl", hash = "sha256:{a}" }},
]
'''


def test_uv_requirement_pins_the_locked_uv_with_every_hash(tmp_path: Path) -> None:
    lock = _write_lock(tmp_path / "uv.lock", UV_ENTRY.format(sdist="c" * 64, a="a" * 64,
                                                             b="b" * 64))
    assert lockfile.uv_requirement(lock) == (
        f"uv==0.13.10 --hash=sha256:{'a' * 64} --hash=sha256:{'b' * 64} "
        f"--hash=sha256:{'c' * 64}"
    )


def test_uv_requirement_refuses_a_lock_without_uv_or_hashes(tmp_path: Path) -> None:
    lock = _write_lock(tmp_path / "none.lock", '[[package]]\nname = "six"\nversion = "1"\n')
    with pytest.raises(SystemExit, match=r"expected one locked version of uv .*found 0"):
        lockfile.uv_requirement(lock)
    bare = _write_lock(tmp_path / "bare.lock", '[[package]]\nname = "uv"\nversion = "1"\n')
    with pytest.raises(SystemExit, match="uv 1 is locked without hashes"):
        lockfile.uv_requirement(bare)


def test_the_repository_lock_pins_uv_for_the_bootstrap() -> None:
    line = lockfile.uv_requirement()
    version = next(p["version"] for p in lockfile.packages(lockfile.LOCK) if p["name"] == "uv")
    assert line.startswith(f"uv=={version} --hash=sha256:")
    assert subprocess.run([str(UV), "--version"], capture_output=True, text=True,
                          check=True).stdout.split()[1] == version


def test_changes_names_what_moved(tmp_path: Path) -> None:
    old = _write_lock(tmp_path / "old.lock", '[[package]]\nname = "a"\nversion = "1"\n\n'
                      '[[package]]\nname = "b"\nversion = "1"\n\n'
                      '[[package]]\nname = "c"\nversion = "2"\n')
    new = _write_lock(tmp_path / "new.lock", '[[package]]\nname = "a"\nversion = "1"\n\n'
                      '[[package]]\nname = "c"\nversion = "3"\n\n'
                      '[[package]]\nname = "d"\nversion = "1"\n')
    assert lockfile.changes(old, new) == ["- b 1", "  c 2 -> 3", "+ d 1"]
    assert lockfile.changes(old, old) == []


def _checkout_copy(tmp_path: Path, pyproject: str) -> Path:
    """The files venv.sh reads, with this pyproject.toml; .venv holds only the real uv."""
    copy = tmp_path / "clone"
    (copy / "scripts").mkdir(parents=True)
    for name in ("scripts/venv.sh", "scripts/lockfile.py", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    (copy / "pyproject.toml").write_text(pyproject)
    (copy / ".venv" / "bin").mkdir(parents=True)
    (copy / ".venv" / "bin" / "uv").symlink_to(UV)
    return copy


def _source_venv(copy: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_OFFLINE": "1"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(["bash", "-c", f". {copy}/scripts/venv.sh"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_a_pyproject_that_disagrees_with_the_lock_stops_the_run(tmp_path: Path) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '    "orjson>=3.9,<4",\n' in pyproject
    copy = _checkout_copy(tmp_path, pyproject.replace('    "orjson>=3.9,<4",\n', ""))
    result = _source_venv(copy)
    assert result.returncode == 1
    assert "pyproject.toml and uv.lock disagree" in result.stderr
    assert "scripts/upgrade" in result.stderr
    # nothing was installed: the check comes before any sync
    assert sorted(p.name for p in (copy / ".venv" / "bin").iterdir()) == ["uv"]


def test_the_repository_pyproject_agrees_with_its_lock() -> None:
    result = subprocess.run([str(UV), "lock", "--check", "--offline", "--project", str(ROOT)],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    assert result.returncode == 0, result.stderr


def test_the_image_installs_the_locked_runtime_with_hashes() -> None:
    """The Dockerfile's builder exports the lock's runtime closure; every line is pinned
    and hashed, and no tooling (tests, lint, uv) goes into the image."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    command = ["uv", "export", "--locked", "--no-default-groups", "--no-emit-project",
               "--format", "requirements-txt"]
    assert " ".join(command) in re.sub(r"\s*\\\n\s*", " ", dockerfile)
    assert "--require-hashes" in dockerfile and "COPY pyproject.toml uv.lock" in dockerfile
    exported = subprocess.run([str(UV), *command[1:], "--offline", "--project", str(ROOT)],
                              capture_output=True, text=True, check=True).stdout
    pinned = r"^([a-z0-9_.-]+)==(\S+)(?: ;[^\\\n]*)?((?:\s*\\\n\s+--hash=sha256:\w+)+)"
    requirements = re.findall(pinned, exported, flags=re.M)
    assert requirements, exported
    with (ROOT / "uv.lock").open("rb") as f:
        locked = {p["name"]: p["version"] for p in tomllib.load(f)["package"]}
    names = {name for name, _, _ in requirements}
    for name, version, _ in requirements:
        assert locked[name] == version
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)
    runtime = {re.split(r"[\[<>=!~ ]", d, maxsplit=1)[0].lower().replace("_", "-")
               for d in project["project"]["dependencies"]}
    assert runtime <= names
    assert not names & {"pytest", "mypy", "ruff", "uv", "py-spy", "schemathesis"}
    # every non-comment line belongs to a pinned, hashed requirement
    assert len(re.findall(r"^[a-z0-9]", exported, flags=re.M)) == len(requirements)


def test_no_generated_file_is_tracked() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked_but_ignored = subprocess.run(
        ["git", "ls-files", "--cached", "--ignored", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert tracked_but_ignored == []
    for generated in ("benchmarks/out/profile-introspect.txt", "profile-token.txt",
                      "run.prof", ".venv/bin/python"):
        assert subprocess.run(["git", "check-ignore", "-q", generated], cwd=ROOT,
                              check=False).returncode == 0, f"{generated} is not ignored"
    # a profile or dump carries the paths of the machine that made it
    machine_paths = {sys.base_prefix, sys.prefix, str(ROOT)}
    patterns = [arg for path in sorted(machine_paths) for arg in ("-e", path)]
    found = subprocess.run(["git", "grep", "-l", "-a", "-F", *patterns], cwd=ROOT,
                           capture_output=True, text=True, check=False).stdout.split()
    assert found == []
