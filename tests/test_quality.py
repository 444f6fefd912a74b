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


def _installed_layout(into: str) -> str:
    """The package as it installs (``dipsd.data`` is ``data/`` ...), as symbolic links under ``into``:
    mypy maps modules to files by folder, and the editable install's import hook is invisible to it."""
    package = os.path.join(into, "dipsd")
    os.makedirs(package)
    for entry in os.listdir(os.path.join(ROOT, "dipsd")):
        if entry != "__pycache__":
            os.symlink(os.path.join(ROOT, "dipsd", entry), os.path.join(package, entry))
    for folder in ("data", "formulation", "solvers", "reports"):
        os.symlink(os.path.join(ROOT, folder), os.path.join(package, folder))
    return into


@pytest.mark.slow
def test_mypy_passes_on_the_whole_package(tmp_path):
    """mypy (configured in pyproject.toml) over every module of the installed package."""
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[test]')")
    where = _installed_layout(str(tmp_path / "tree"))
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", os.path.join(ROOT, "pyproject.toml"),
                          "--cache-dir", str(tmp_path / "cache"), "-p", "dipsd"],
                         cwd=where, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]
    assert "Success" in run.stdout
