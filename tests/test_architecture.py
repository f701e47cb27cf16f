"""The house rules as tests: no import loops (the shared checker), layers as import-linter contracts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CYCLES_TOOL = ROOT.parent / "shared" / "tools" / "import_cycles.py"


def test_no_import_loops_between_modules_or_folders():
    if not CYCLES_TOOL.is_file():
        pytest.skip(f"the shared import-loop checker is not available ({CYCLES_TOOL} is absent)")
    out = subprocess.run([sys.executable, str(CYCLES_TOOL), str(ROOT / "motif_screen")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_layers_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "0 broken" in out.stdout
