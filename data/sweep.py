"""A grid over one scenario (``dipsd sweep``): every combination of values of some workbook columns,
written as a workbook of its own and validated like any workbook.

A column of sheet ``scenarios`` (``verify_beta_ms``, ``memory_cap_bytes``, ``max_draft_length`` ...)
is set on the scenario's row; a user column (``alpha``, ``prefix_len``, ``comm_latency_ms`` ...) on
the scenario's row and on every user's row (so it wins over a user's own value; ``max_draft_length``
is then every user's limit too); ``users`` sets the number of users, by cloning the scenario's users in turn (the
k-th copy of ``u1`` is ``u1-k``, with its measured acceptance table if it has one).  The grid's
scenarios are named ``NAME-COLUMN=VALUE-...``.  The workbook's plans are not carried over (they
name the original users); the caller says so.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Sequence

from ..errors import InputError, did_you_mean
from .scenario import Scenario
from .workbook import SCENARIO_COLUMNS, USERS_SHEET_COLUMNS, LoadedWorkbook, load_workbook
from .writer import _scenario_row, _user_row, _write_table, save_atomically

USERS = "users"
"""The pseudo-column that sets the number of users."""
MOST_POINTS = 10_000


def parse_vary(texts: Sequence[str]) -> list[tuple[str, list[object]]]:
    """``COLUMN=V1,V2,...`` options as ``(column, values)``; values as numbers where they read as
    numbers (the loader checks their ranges).  :class:`InputError` for an unknown column."""
    scenario_cols = {c.name for c in SCENARIO_COLUMNS}
    user_cols = {c.name for c in USERS_SHEET_COLUMNS} - {"scenario", "user"}
    known = sorted((scenario_cols | user_cols | {USERS}) - {"scenario"})
    out: list[tuple[str, list[object]]] = []
    for text in texts:
        column, sep, values = text.partition("=")
        column = column.strip()
        if not sep or not values.strip():
            raise InputError(f"--vary {text[:80]!r}: expected COLUMN=V1,V2,... (e.g. alpha=0.6,0.8 or users=4,8,16)")
        if column not in known:
            raise InputError(f"--vary: unknown column {column[:60]!r}{did_you_mean(column, known)}; choose from {', '.join(known)}")
        if any(column == c for c, _ in out):
            raise InputError(f"--vary: column {column!r} given twice")
        parsed = [_number(v.strip()) for v in values.split(",") if v.strip()]
        if column == USERS and not all(isinstance(v, int) and v >= 1 for v in parsed):
            raise InputError(f"--vary users=...: whole numbers of users >= 1, got {values[:80]!r}")
        out.append((column, parsed))
    if not out:
        raise InputError("--vary: give at least one COLUMN=V1,V2,...")
    points = 1
    for _, chosen in out:
        points *= len(chosen)
    if points > MOST_POINTS:
        raise InputError(f"--vary: {points:,} grid points; at most {MOST_POINTS:,}")
    return out


def _number(text: str) -> object:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def grid_rows(scenario: Scenario, vary: list[tuple[str, list[object]]]) -> tuple[list[dict], list[dict], list[dict]]:
    """The rows of sheets scenarios, users and acceptance for every point of the grid."""
    user_cols = {c.name for c in USERS_SHEET_COLUMNS} - {"scenario", "user"}
    scenario_cols = {c.name for c in SCENARIO_COLUMNS}
    base_row = _scenario_row(scenario)
    base_users = [(u, _user_row(scenario, u)) for u in scenario.users]
    scenarios, users, acceptance = [], [], []
    for point in itertools.product(*(values for _, values in vary)):
        setting = dict(zip((c for c, _ in vary), point))
        name = "-".join([scenario.name] + [f"{c}={v}" for c, v in setting.items()])
        row = {**base_row, "scenario": name}
        row.update({c: v for c, v in setting.items() if c in scenario_cols})
        if USERS in setting:  # the scenario's own batch range would not fit another number of users: the defaults
            row.pop("min_batches", None)
            row.pop("max_batches", None)
        scenarios.append(row)
        count = int(setting.get(USERS, len(base_users)))  # type: ignore[call-overload]
        for i in range(count):
            user, urow = base_users[i % len(base_users)]
            copy = i // len(base_users)
            uname = user.name if copy == 0 else f"{user.name}-{copy + 1}"
            # a user column is set on every user too (a user's own value would otherwise win over the scenario's)
            users.append({**urow, "scenario": name, "user": uname, **{c: v for c, v in setting.items() if c in user_cols}})
            for k, value in enumerate(user.acceptance or (), start=1):
                acceptance.append({"scenario": name, "user": uname, "draft_length": k, "expected_tokens": value})
    return scenarios, users, acceptance


def write_grid(book: LoadedWorkbook, scenario_name: str, vary: list[tuple[str, list[object]]], path: str) -> LoadedWorkbook:
    """Write the grid workbook to ``path`` (a new file) and return it loaded: it is validated like any
    workbook first (in a temporary folder, under the same file name), so a value out of range is a
    located :class:`WorkbookError` and no file is left behind."""
    from openpyxl import Workbook

    from .workbook import ACCEPTANCE_COLUMNS
    from .writer import _write_readme

    scenario = book.scenario(scenario_name)
    srows, urows, arows = grid_rows(scenario, vary)
    wb = Workbook()
    ws = wb.active
    ws.title = "scenarios"
    _write_table(ws, list(dict.fromkeys(k for r in srows for k in r)), srows, {"scenario"})
    _write_table(wb.create_sheet("users"), list(dict.fromkeys(k for r in urows for k in r)), urows, {"scenario", "user"})
    if arows:
        _write_table(wb.create_sheet("acceptance"), [c.name for c in ACCEPTANCE_COLUMNS if c.name in arows[0]], arows,
                     {"scenario", "user"})
    _write_readme(wb.create_sheet("README"))
    folder = tempfile.mkdtemp(prefix="dipsd-sweep-")
    try:
        trial = os.path.join(folder, os.path.basename(path))
        save_atomically(wb, trial)
        load_workbook(trial)  # every value checked as the loader checks a user's workbook
        save_atomically(wb, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return load_workbook(path)
