"""Shared fixtures: tiny named scenarios and a workbook builder for loader tests."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import settings
from openpyxl import Workbook

from dipsd.cli import main


def pytest_collection_modifyitems(config, items):
    """A long sweep is also slow: the fast default run (``-m 'not slow'``) leaves both out, CI
    (``-m 'not sweep'``) runs the slow tests and leaves the sweeps out."""
    for item in items:
        if item.get_closest_marker("sweep") is not None:
            item.add_marker(pytest.mark.slow)


# checkpoints are signed with a key of the test session's (never the developer's own), which the
# subprocesses of CLI tests inherit
os.environ["DIPSD_KEY_FILE"] = os.path.join(tempfile.mkdtemp(prefix="dipsd-test-key-"), "checkpoint.key")

# property tests draw the same examples on every run: the suite is deterministic
settings.register_profile("dipsd", derandomize=True, deadline=None, database=None)
settings.load_profile("dipsd")


def write_book(path, sheets: dict[str, list[list]]) -> str:
    """Write a workbook whose sheets are given as lists of rows (first row = header)."""
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return str(path)


def good_sheets() -> dict[str, list[list]]:
    return {
        "scenarios": [["scenario", "max_draft_length", "alpha"], ["s1", 5, 0.8], ["s2", 4, None]],
        "users": [["scenario", "user", "alpha", "prefix_len"], ["s1", "a", None, 256], ["s1", "b", 0.6, None], ["s2", "x", None, None]],
    }


@pytest.fixture
def run_cli(capsys):
    """Run the command line in-process; returns (exit code, stdout, stderr)."""

    def run(*argv: str):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
