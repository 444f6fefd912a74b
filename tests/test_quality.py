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


LAYERS = {"errors": 0, "outputs": 0, "data": 1, "formulation": 2, "solvers": 3, "reports": 4}
"""The floors of the installed package, bottom up (the CLI, commands, service and API are on top)."""


def _imports_of_package() -> dict[str, set[str]]:
    """Module -> the ``dipsd`` modules it imports anywhere (function bodies too), relative imports resolved."""
    import ast

    where = {"dipsd": os.path.join(ROOT, "dipsd"), **{f"dipsd.{f}": os.path.join(ROOT, f) for f in
                                                       ("data", "formulation", "solvers", "reports")}}
    out: dict[str, set[str]] = {}
    for package, folder in where.items():
        for dirpath, dirnames, files in os.walk(folder):
            dirnames[:] = [d for d in dirnames if d != "__pycache__" and not (package == "dipsd" and d in LAYERS)]
            for f in files:
                if not f.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f), folder)[:-3].replace(os.sep, ".")
                name = package if rel == "__init__" else f"{package}.{rel.removesuffix('.__init__')}"
                is_package = f == "__init__.py"
                found = set()
                for node in ast.walk(ast.parse(open(os.path.join(dirpath, f), encoding="utf-8").read())):
                    if isinstance(node, ast.ImportFrom):
                        if node.level:
                            base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                            target = ".".join(base + ([node.module] if node.module else []))
                        else:
                            target = node.module or ""
                        if target.startswith("dipsd"):
                            found.add(target)
                            found.update(f"{target}.{a.name}" for a in node.names)
                    elif isinstance(node, ast.Import):
                        found.update(a.name for a in node.names if a.name.startswith("dipsd"))
                out[name] = found
    return {m: {t for t in targets if t in out} for m, targets in out.items()}


def _floor(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 5) if len(parts) > 1 else 5


def test_no_import_runs_back_up_and_no_two_modules_import_each_other():
    graph = _imports_of_package()
    assert len(graph) > 50
    up = [f"{m} -> {t}" for m, targets in graph.items() for t in targets if _floor(t) > _floor(m)]
    assert not up, up
    mutual = sorted({tuple(sorted((m, t))) for m, targets in graph.items() for t in targets
                     if m != t and m in graph.get(t, set()) and not (t == m.rsplit(".", 1)[0] or m == t.rsplit(".", 1)[0])})
    assert not mutual, mutual


def test_every_package_folder_is_in_pyprojects_package_list():
    """A sub-package folder (one with an ``__init__.py``) that pyproject's ``packages`` omits would
    silently not install: every one must be listed, mapped through ``package-dir``."""
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        tool = tomllib.load(f)["tool"]["setuptools"]
    listed, roots = set(tool["packages"]), tool["package-dir"]
    found = set()
    for name, folder in roots.items():
        for here, dirs, files in os.walk(os.path.join(ROOT, folder)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" in files:
                rel = os.path.relpath(here, os.path.join(ROOT, folder))
                found.add(name if rel == "." else name + "." + rel.replace(os.sep, "."))
    assert found, "no package folder found"
    assert found == listed, f"not listed: {sorted(found - listed)}; listed without a folder: {sorted(listed - found)}"
