"""Write scenarios back to the workbook format of docs/model.md section 7.

Every value is written explicitly (no blank cells), so loading the file gives exactly the
scenarios that were written.  Text that came from users is stored as text, never as a
formula, even when it starts with ``=``.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Iterable

from ..outputs import atomic_write
from .scenario import Scenario
from .workbook import ACCEPTANCE_COLUMNS, SCENARIO_COLUMNS, USER_COLUMNS, USERS_SHEET_COLUMNS


@contextlib.contextmanager
def full_precision():
    """Make openpyxl write floats with ``repr`` (shortest exact form, up to 17 digits).

    openpyxl writes ``"%.16g" % value``, which does not round-trip every double; inside this
    context its cell writer uses ``repr`` instead, so a loaded value equals the written one.
    """
    import openpyxl.cell._writer as writer

    original = writer.safe_string

    def exact(value):
        if isinstance(value, float) and math.isfinite(value):
            return repr(value)
        return original(value)

    writer.safe_string = exact
    try:
        yield
    finally:
        writer.safe_string = original


def set_text(cell, value: str) -> None:
    """Store ``value`` as a literal string (openpyxl would turn ``=...`` into a formula)."""
    cell.value = value
    cell.data_type = "s"


def _scenario_row(s: Scenario) -> dict:
    t = s.target
    return {
        "scenario": s.name, "target_blocks": t.blocks, "target_hidden": t.hidden,
        "target_ffn_hidden": t.ffn_hidden, "verify_c_ms_per_flop": t.c_ms_per_flop,
        "verify_beta_ms": t.beta_ms, "memory_cap_bytes": s.memory_cap_bytes,
        "max_draft_length": s.max_draft_length, "min_batches": s.min_batches,
        "max_batches": s.max_batches, "initial_draft_length": s.initial_draft_length,
    }


def _user_row(s: Scenario, u) -> dict:
    d = u.draft
    return {
        "scenario": s.name, "user": u.name, "alpha": u.alpha, "prefix_len": u.prefix_len,
        "comm_latency_ms": u.comm_latency_ms, "draft_blocks": d.blocks, "draft_hidden": d.hidden,
        "draft_ffn_hidden": d.ffn_hidden, "draft_c_ms_per_flop": d.c_ms_per_flop, "draft_beta_ms": d.beta_ms,
    }


def _write_table(ws, columns: list[str], rows: Iterable[dict], text_columns: set[str]) -> None:
    from openpyxl.styles import Font

    for j, name in enumerate(columns, start=1):
        cell = ws.cell(row=1, column=j)
        set_text(cell, name)
        cell.font = Font(bold=True)
        ws.column_dimensions[cell.column_letter].width = max(12, len(name) + 2)
    for i, row in enumerate(rows, start=2):
        for j, name in enumerate(columns, start=1):
            value = row.get(name)
            cell = ws.cell(row=i, column=j)
            if value is None:
                continue
            if name in text_columns:
                set_text(cell, str(value))
            else:
                cell.value = value
    ws.freeze_panes = "A2"


def save_scenarios(path: str | os.PathLike, scenarios: Iterable[Scenario], *, readme: bool = True) -> None:
    """Write ``scenarios`` (and, with ``readme``, a sheet documenting every column)."""
    from openpyxl import Workbook

    scenarios = list(scenarios)
    wb = Workbook()
    ws = wb.active
    ws.title = "scenarios"
    scen_cols = [c.name for c in SCENARIO_COLUMNS if c.name not in {u.name for u in USER_COLUMNS}]
    _write_table(ws, scen_cols, (_scenario_row(s) for s in scenarios), {"scenario"})
    _write_table(wb.create_sheet("users"), [c.name for c in USERS_SHEET_COLUMNS],
                 (_user_row(s, u) for s in scenarios for u in s.users), {"scenario", "user"})
    acc_rows = [
        {"scenario": s.name, "user": u.name, "draft_length": k, "expected_tokens": v}
        for s in scenarios for u in s.users if u.acceptance is not None
        for k, v in enumerate(u.acceptance, start=1)
    ]
    if acc_rows:
        _write_table(wb.create_sheet("acceptance"), [c.name for c in ACCEPTANCE_COLUMNS], acc_rows, {"scenario", "user"})
    if readme:
        _write_readme(wb.create_sheet("README"))
    save_atomically(wb, path)


def save_atomically(wb, path: str | os.PathLike) -> None:
    """Save an openpyxl workbook (floats at full precision) through :func:`~dipsd.outputs.atomic_write`:
    a crash leaves the old file or the new one, never half."""
    with full_precision(), atomic_write(os.fspath(path), "wb") as fh:
        wb.save(fh)


def _write_readme(ws) -> None:
    from openpyxl.styles import Font

    lines = [
        ("dipsd scenario workbook", "", "", ""),
        ("Sheets 'scenarios' and 'users' are required, 'acceptance' is optional; other sheets (like this one) are ignored.", "", "", ""),
        ("A blank cell takes the default: in 'scenarios' the paper default, in 'users' the scenario's value.", "", "", ""),
        ("Header names must match exactly (spaces around them are trimmed); column order is free.", "", "", ""),
        ("", "", "", ""),
        ("sheet", "column", "unit", "meaning (paper default)"),
    ]
    for sheet, cols in (("scenarios", SCENARIO_COLUMNS), ("users", USERS_SHEET_COLUMNS), ("acceptance", ACCEPTANCE_COLUMNS)):
        for c in cols:
            default = "required" if c.required else ("" if c.default is None else f"default {c.default:g}")
            lines.append((sheet, c.name, c.unit, f"{c.help}; {c.allowed()}" + (f" ({default})" if default else "")))
    for i, line in enumerate(lines, start=1):
        for j, value in enumerate(line, start=1):
            set_text(ws.cell(row=i, column=j), value)
    for j in range(1, 5):
        ws.cell(row=6, column=j).font = Font(bold=True)
    ws.cell(row=1, column=1).font = Font(bold=True, size=14)
    for letter, width in zip("ABCD", (12, 24, 10, 110)):
        ws.column_dimensions[letter].width = width
