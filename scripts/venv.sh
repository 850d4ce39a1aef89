# Sourced by scripts/demo, scripts/test and benchmarks/run: bring .venv to exactly what
# uv.lock says (the project, its dependencies and all the tooling, hash-checked), then
# activate it. The versions come from the lock, never from what is newest on the index.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export UV_PYTHON_DOWNLOADS=never
if [ ! -x "$ROOT/.venv/bin/uv" ]; then
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "app2app-proxy needs Python 3.11 or newer as python3" >&2
    exit 1
  fi
  echo "setting up $ROOT/.venv from uv.lock (once)..." >&2
  rm -rf "$ROOT/.venv"
  python3 -m venv "$ROOT/.venv"
  # uv is locked too: pip installs exactly the locked uv, hash-checked
  python3 "$ROOT/scripts/lockfile.py" uv-requirement > "$ROOT/.venv/uv-requirement.txt"
  "$ROOT/.venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-deps --require-hashes -r "$ROOT/.venv/uv-requirement.txt"
fi
if ! "$ROOT/.venv/bin/uv" lock --check --quiet --project "$ROOT"; then
  cat >&2 <<MSG
pyproject.toml and uv.lock disagree: a dependency was added, removed or its range
changed without updating the lock. Run  .venv/bin/uv lock  (keeps every other version)
or  scripts/upgrade  (moves everything to the newest releases), then scripts/test, and
commit pyproject.toml and uv.lock together. See docs/operations.md.
MSG
  exit 1
fi
# --locked: install the lock as it is, never re-resolve; a no-op when .venv matches it
"$ROOT/.venv/bin/uv" sync --locked --quiet --project "$ROOT"
# shellcheck disable=SC1091
. "$ROOT/.venv/bin/activate"
cd "$ROOT"
