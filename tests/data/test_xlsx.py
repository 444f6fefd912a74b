"""Hostile and damaged workbooks, generated here: located messages, exit 2, bounded time and memory."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import textwrap
import zipfile

import pytest

from dipsd.data import xlsx
from dipsd.data.workbook import load_workbook
from dipsd.errors import WorkbookError
from tests.conftest import good_sheets, write_book


def rewrite_part(path, part: str, edit) -> None:
    """Replace one part of an .xlsx package by ``edit(old_text)``."""
    with zipfile.ZipFile(path) as z:
        items = [(info, z.read(info.filename)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in items:
            if info.filename == part:
                data = edit(data.decode("utf-8")).encode("utf-8")
            z.writestr(info.filename, data)


def sheet_part(path, name: str) -> str:
    wb = xlsx.open_workbook(str(path), data_only=True)
    return wb[name]._worksheet_path.lstrip("/")


def problems_of(path) -> str:
    """The problems ``dipsd check`` reports (exit code 2, no traceback), and the same from the loader."""
    from dipsd.cli import main

    with pytest.raises(WorkbookError) as info:
        load_workbook(path)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["check", str(path)])
    assert code == 2 and "Traceback" not in err.getvalue()
    assert str(info.value).splitlines()[0] in err.getvalue()
    return err.getvalue()


def test_openpyxl_internals_still_work(tmp_path):
    """The adapter's private openpyxl calls: fails loudly if a new openpyxl changes them."""
    assert xlsx.openpyxl_supported(), "openpyxl changed: check dipsd/data/xlsx.py and extend TESTED_OPENPYXL"
    path = write_book(tmp_path / "a.xlsx", good_sheets())
    merged = "</sheetData><mergeCells count=\"1\"><mergeCell ref=\"A2:B3\"/></mergeCells>"
    rewrite_part(path, sheet_part(path, "users"), lambda x: x.replace("</sheetData>", merged))
    wb = xlsx.open_workbook(path, data_only=True)
    sheet = xlsx.read_sheet(wb, "users")
    assert sheet.merged == ("A2:B3",)
    assert [c.value for c in sheet.rows[0][1]] == ["scenario", "user", "alpha", "prefix_len"]
    assert sheet.rows[1][0] == 2 and sheet.rows[1][1][0] == xlsx.Cell(2, 1, "s1", "s")


def run_check(path, *, memory_mb: int = 3000, timeout: float = 120.0):
    """``dipsd check`` in a subprocess under an address-space cap; (exit code, stderr)."""
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({memory_mb} * 2**20, {memory_mb} * 2**20))
        from dipsd.cli import main
        sys.exit(main(["check", {str(path)!r}]))
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr


def test_zip_bomb_part_refused_before_parsing(tmp_path):
    path = write_book(tmp_path / "bomb.xlsx", good_sheets())
    comment = "<!--" + " " * (64 * 2**20) + "-->"
    rewrite_part(path, sheet_part(path, "users"), lambda x: comment + x)
    assert os.path.getsize(path) < 1_000_000
    code, err = run_check(path)
    assert code == 2 and "Traceback" not in err
    assert "bomb.xlsx" in err and "unpacks to" in err and "at most" in err


def test_whitespace_bomb_refused_by_ratio(tmp_path):
    path = write_book(tmp_path / "ws.xlsx", good_sheets())
    rewrite_part(path, sheet_part(path, "scenarios"), lambda x: x.replace("</worksheet>", " " * (20 * 2**20) + "</worksheet>"))
    code, err = run_check(path)
    assert code == 2 and "times its packed size" in err and "Traceback" not in err


def test_far_styled_cell_costs_nothing(tmp_path):
    """One styled empty cell at row 1,000,000 and a sheet dimension to XFD: read by the cells present."""
    path = write_book(tmp_path / "far.xlsx", good_sheets())
    part = sheet_part(path, "users")

    def edit(x):
        x = re.sub(r'<dimension ref="[^"]*"/>', '<dimension ref="A1:XFD1000000"/>', x)
        return x.replace("</sheetData>", '<row r="1000000"><c r="XFD1000000" s="0"/></row></sheetData>')

    rewrite_part(path, part, edit)
    code, err = run_check(path, memory_mb=1500, timeout=60)
    assert code == 0, err


def test_entity_declaration_named(tmp_path):
    path = write_book(tmp_path / "ent.xlsx", good_sheets())
    rewrite_part(path, sheet_part(path, "users"), lambda x: '<!DOCTYPE worksheet [<!ENTITY a "b">]>' + x)
    assert "declares entities" in problems_of(path)


def test_ole2_file_named(tmp_path):
    path = tmp_path / "old.xlsx"
    path.write_bytes(xlsx.OLE2_SIGNATURE + b"\0" * 600)
    text = problems_of(path)
    assert "legacy .xls" in text and "encrypted" in text


def test_merged_cells_rejected_with_range(tmp_path):
    path = write_book(tmp_path / "m.xlsx", good_sheets())
    merged = "</sheetData><mergeCells count=\"1\"><mergeCell ref=\"C2:C3\"/></mergeCells>"
    rewrite_part(path, sheet_part(path, "users"), lambda x: x.replace("</sheetData>", merged))
    text = problems_of(path)
    assert "sheet 'users', row 2" in text and "C2:C3" in text and "merged" in text


def test_cached_error_values_rejected_in_every_column(tmp_path):
    sheets = good_sheets()
    path = write_book(tmp_path / "e.xlsx", sheets)

    def edit(x):  # user 'a' becomes a cached #N/A, and so does b's alpha
        x = re.sub(r'<c r="B2"[^>]*>.*?</c>', '<c r="B2" t="e"><v>#N/A</v></c>', x, count=1)
        return re.sub(r'<c r="C3"[^>]*>.*?</c>', '<c r="C3" t="e"><f>1/0</f><v>#DIV/0!</v></c>', x, count=1)

    rewrite_part(path, sheet_part(path, "users"), edit)
    text = problems_of(path)
    assert "row 2, column 'user': bad value '#N/A': a value, not a spreadsheet error" in text
    assert "row 3, column 'alpha': bad value '#DIV/0!'" in text


def test_names_with_line_breaks_rejected_and_long_values_cut(tmp_path):
    sheets = good_sheets()
    sheets["users"][1][1] = "two\nlines"
    sheets["users"][2][2] = "x" * 5000
    path = write_book(tmp_path / "n.xlsx", sheets)
    text = problems_of(path)
    assert "column 'user': bad value 'two\\\\nlines': text without line breaks" in text
    assert "(5000 characters)" in text and "x" * 200 not in text


def test_acceptance_error_names_the_user(tmp_path):
    sheets = good_sheets()
    sheets["acceptance"] = [["scenario", "user", "draft_length", "expected_tokens"]] + [
        ["s1", "a", k, 1.0 + 0.5 * k] for k in range(1, 5)]  # k = 5 missing; max_draft_length is 5
    path = write_book(tmp_path / "acc.xlsx", sheets)
    text = problems_of(path)
    assert "user 'a'" in text and "missing 5" in text
