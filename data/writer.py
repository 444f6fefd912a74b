"""Write scenarios back to the workbook format of docs/model.md section 7.

Every value is written explicitly (no blank cells), so loading the file gives exactly the
scenarios that were written.  Text that came from users is stored as text, never as a
formula, even when it starts with ``=``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterable

from ..outputs import atomic_write
from .plans import NamedPlan
from .scenario import Scenario
from .workbook import ACCEPTANCE_COLUMNS, PLANS_COLUMNS, SCENARIO_COLUMNS, USER_COLUMNS, USERS_SHEET_COLUMNS


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


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_CELL_TEXT = 32_767
"""Excel's limit on the characters of one cell."""


def xml_safe(value: str) -> str:
    """``value`` as text every XML parser accepts: control characters and lone surrogates (a
    file name with non-UTF-8 bytes) written as escapes (``\\x07``, ``\\udcff``), cut to
    Excel's 32,767 characters with a visible mark."""
    text = _XML_BAD.sub(lambda m: repr(m.group())[1:-1], str(value))
    if len(text) > MAX_CELL_TEXT:
        mark = f" ... [cut: {len(text):,} characters]"
        text = text[:MAX_CELL_TEXT - len(mark)] + mark
    return text


def set_text(cell, value: str) -> None:
    """Store ``value`` as a literal string (openpyxl would turn ``=...`` into a formula), XML-safe
    (:func:`xml_safe`)."""
    cell.value = xml_safe(value)
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
        "max_draft_length": u.max_draft_length,
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


def save_scenarios(path: str | os.PathLike, scenarios: Iterable[Scenario], *, readme: bool = True,
                   plans: Iterable[NamedPlan] = (), blank: Iterable[str] = ()) -> None:
    """Write ``scenarios`` (and, with ``readme``, a sheet documenting every column); ``plans``
    go to a sheet ``plans``; the scenario columns in ``blank`` are left blank (their default)."""
    from openpyxl import Workbook

    scenarios, plans, blank = list(scenarios), list(plans), set(blank)
    wb = Workbook()
    ws = wb.active
    ws.title = "scenarios"
    scen_cols = [c.name for c in SCENARIO_COLUMNS if c.name not in {u.name for u in USER_COLUMNS}]
    rows = ({k: v for k, v in _scenario_row(s).items() if k not in blank} for s in scenarios)
    _write_table(ws, scen_cols, rows, {"scenario"})
    _write_table(wb.create_sheet("users"), [c.name for c in USERS_SHEET_COLUMNS],
                 (_user_row(s, u) for s in scenarios for u in s.users), {"scenario", "user"})
    acc_rows = [
        {"scenario": s.name, "user": u.name, "draft_length": k, "expected_tokens": v}
        for s in scenarios for u in s.users if u.acceptance is not None
        for k, v in enumerate(u.acceptance, start=1)
    ]
    if acc_rows:
        _write_table(wb.create_sheet("acceptance"), [c.name for c in ACCEPTANCE_COLUMNS], acc_rows, {"scenario", "user"})
    if plans:
        length = {(p.scenario, p.name): p.length_of() for p in plans}
        plan_rows = [{"scenario": p.scenario, "plan": p.name, "user": u, "batch": n, "draft_length": length[(p.scenario, p.name)][u]}
                     for p in plans for n, batch in enumerate(p.batches, start=1) for u in batch]
        _write_table(wb.create_sheet("plans"), [c.name for c in PLANS_COLUMNS], plan_rows, {"scenario", "plan", "user"})
    if readme:
        _write_readme(wb.create_sheet("README"))
    save_atomically(wb, path)


def save_atomically(wb, path: str | os.PathLike) -> None:
    """Save an openpyxl workbook (floats at full precision) through :func:`~dipsd.outputs.atomic_write`:
    a crash leaves the old file or the new one, never half."""
    with full_precision(), atomic_write(os.fspath(path), "wb") as fh:
        wb.save(_FailQuietly(fh))


class _FailQuietly:
    """A binary file for openpyxl's zip archive that, after its first write error (disk full,
    file too large), only pretends to go on: the error still ends the save, but the archive that
    openpyxl leaves open does not report a second one ('seek of closed file') when collected."""

    def __init__(self, fh):
        self._fh, self._failed, self._pos = fh, False, 0

    def _call(self, name, *args):
        try:
            return getattr(self._fh, name)(*args)
        except (OSError, ValueError):
            self._failed = True
            raise

    def write(self, data):
        if not self._failed:
            self._call("write", data)
        self._pos += len(data)
        return len(data)

    def tell(self):
        if not self._failed:
            self._pos = self._call("tell")
        return self._pos

    def seek(self, offset, whence=0):
        if not self._failed:
            self._pos = self._call("seek", offset, whence)
        elif whence == 0:
            self._pos = offset
        return self._pos

    def flush(self):
        if not self._failed:
            self._call("flush")

    def seekable(self):
        return True

    def close(self):  # the atomic write closes the real file
        pass


def _write_readme(ws) -> None:
    from openpyxl.styles import Font

    lines = [
        ("dipsd scenario workbook", "", "", ""),
        ("Sheets 'scenarios' and 'users' are required, 'acceptance' and 'plans' are optional; "
         "other sheets (like this one) are not read ('dipsd check' lists them; a name close to one of these is refused).",
         "", "", ""),
        ("A blank cell takes the default: in 'scenarios' the paper default, in 'users' the scenario's value.", "", "", ""),
        ("A blank max_batches is the number of users (so adding users keeps every plan allowed); "
         "a blank min_batches is 2 (1 for one user).", "", "", ""),
        ("Sheet 'plans' holds your own plans: one row per user and plan; batch numbers give the verification order. "
         "'dipsd evaluate' prints each plan's throughput and feasibility; a study runs each as method plan:NAME.", "", "", ""),
        ("The two example plans name the 6 users: when you add or remove users, update them or delete their rows "
         "(a plan must name every user of its scenario once; one that does not is not run, and 'dipsd check' says why; "
         "every other method still runs).", "", "", ""),
        ("Header names must match exactly (spaces around them are trimmed); column order is free.", "", "", ""),
        ("", "", "", ""),
        ("sheet", "column", "unit", "meaning (paper default)"),
    ]
    for sheet, cols in (("scenarios", SCENARIO_COLUMNS), ("users", USERS_SHEET_COLUMNS), ("acceptance", ACCEPTANCE_COLUMNS),
                        ("plans", PLANS_COLUMNS)):
        for c in cols:
            default = "required" if c.required else ("" if c.default is None else f"default {c.default:g}")
            lines.append((sheet, c.name, c.unit, f"{c.help}; {c.allowed()}" + (f" ({default})" if default else "")))
    for i, line in enumerate(lines, start=1):
        for j, value in enumerate(line, start=1):
            set_text(ws.cell(row=i, column=j), value)
    header = next(i for i, line in enumerate(lines, start=1) if line[0] == "sheet")
    for j in range(1, 5):
        ws.cell(row=header, column=j).font = Font(bold=True)
    ws.cell(row=1, column=1).font = Font(bold=True, size=14)
    for letter, width in zip("ABCD", (12, 24, 10, 110)):
        ws.column_dimensions[letter].width = width
