# Sourced by scripts/demo and scripts/test: make .venv with the project installed
# (once), then activate it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$ROOT/.venv/bin/app2app-proxy" ] || [ ! -x "$ROOT/.venv/bin/pytest" ]; then
  echo "setting up $ROOT/.venv (once)..." >&2
  python3 -m venv "$ROOT/.venv"
  "$ROOT/.venv/bin/python" -m pip install --quiet --upgrade pip
  "$ROOT/.venv/bin/python" -m pip install --quiet -e "$ROOT[test]"
fi
# shellcheck disable=SC1091
. "$ROOT/.venv/bin/activate"
cd "$ROOT"
