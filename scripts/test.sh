#!/usr/bin/env bash
# The README's second command: create/reuse the environment, install, run the whole test suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$ROOT"
# the house rules first: lint, format, layers (import-linter contracts in pyproject.toml), types
echo "[test] ruff, import-linter, mypy"
"$ROOT/.venv/bin/ruff" check motif_screen
"$ROOT/.venv/bin/ruff" format --check motif_screen
"$ROOT/.venv/bin/lint-imports"
"$ROOT/.venv/bin/mypy"
set +e
"$VENV_PY" -m pytest -q -p no:cacheprovider --timeout=900 "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "[test] pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
