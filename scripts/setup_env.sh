#!/usr/bin/env bash
# Create (or reuse) .venv and install motif_screen with its extras. Sourced by demo.sh and test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
VENV_PY="$ROOT/.venv/bin/python"
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build (see DESIGN.md).
if ! "$VENV_PY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.') else 1)" 2>/dev/null; then
  echo "[setup] installing torch 2.13 (CPU build)"
  "$VENV_PY" -m pip install -q "torch==2.13.0"
fi
echo "[setup] installing motif_screen[test,mlip,qm9,bench] (editable)"
"$VENV_PY" -m pip install -q -e ".[test,mlip,qm9,bench]"
export PATH="$ROOT/.venv/bin:$PATH"
