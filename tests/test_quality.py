"""The quality gate every clone applies: ruff (configured in pyproject.toml) passes on the package,
its tests and benchmarks.  ruff is in the test extra, so CI runs this too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FOLDERS = ["dipsd", "data", "formulation", "solvers", "reports", "tests", "benchmarks"]


def test_ruff_passes():
    ruff = shutil.which("ruff") or os.path.join(os.path.dirname(sys.executable), "ruff")
    if not os.path.exists(ruff):
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    run = subprocess.run([ruff, "check", "--output-format", "concise", *FOLDERS], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]
