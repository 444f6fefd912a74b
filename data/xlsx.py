"""Reading .xlsx packages within bounds: the one place that reaches into openpyxl's internals.

:func:`check_package` looks at the file before any XML is parsed: an OLE2 compound file
(an encrypted workbook or a legacy ``.xls``) or anything that is not a zip archive is
named as such, and every package part must stay below :data:`MAX_PART_BYTES` unpacked,
below :data:`MAX_RATIO` times its packed size (zip bombs), and all parts together below
:data:`MAX_TOTAL_BYTES`.

:func:`read_sheet` streams one sheet with openpyxl's worksheet parser (through defusedxml,
which refuses entity declarations): time and memory follow the cells the XML holds, not
the sheet's declared dimension or a far-away styled cell.  openpyxl's public read-only
API pads rows to the declared dimension, so this uses its parser class and a few private
attributes of a read-only workbook; :data:`TESTED_OPENPYXL` names the versions this was
checked against, and ``tests/data/test_xlsx.py`` fails if they stop working.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from typing import Any

TESTED_OPENPYXL = ("3.1",)
"""openpyxl release series whose internals this module was written and tested against."""
MAX_PART_BYTES = 32 * 1024 * 1024
"""Largest unpacked size of one package part (a sheet of 32 MiB holds several 100,000 cells)."""
MAX_TOTAL_BYTES = 128 * 1024 * 1024
"""Largest unpacked size of all parts together."""
MAX_RATIO = 100
"""Largest unpacked / packed size of a part larger than 1 MiB (real sheets pack about 5-20x)."""
MAX_PARTS = 10_000
OLE2_SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")


class PackageError(Exception):
    """The file is not an .xlsx package dipsd will parse; the message says why."""


def check_package(path: str) -> None:
    """Raise :class:`PackageError` unless ``path`` is a zip package within the caps above."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == OLE2_SIGNATURE:
        raise PackageError("an encrypted workbook or a legacy .xls file (OLE2 compound document); "
                           "save it as an unencrypted .xlsx workbook")
    if not zipfile.is_zipfile(path):
        raise PackageError("not a zip archive (a CSV or other file renamed .xlsx, or a truncated file)")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise PackageError(f"a damaged zip archive ({str(exc)[:100]})") from None
    if len(infos) > MAX_PARTS:
        raise PackageError(f"{len(infos)} package parts (at most {MAX_PARTS})")
    total = 0
    for info in infos:
        name = info.filename[:80]
        if info.file_size > MAX_PART_BYTES:
            raise PackageError(f"part '{name}' unpacks to {info.file_size:,} bytes (at most {MAX_PART_BYTES:,})")
        if info.file_size > 1024 * 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise PackageError(f"part '{name}' unpacks {info.file_size / max(info.compress_size, 1):,.0f} times "
                               f"its packed size (at most {MAX_RATIO}; a zip bomb?)")
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise PackageError(f"the parts unpack to {total:,} bytes (at most {MAX_TOTAL_BYTES:,})")


def openpyxl_supported() -> bool:
    import openpyxl

    return any(openpyxl.__version__.startswith(v + ".") or openpyxl.__version__ == v for v in TESTED_OPENPYXL)


def open_workbook(path: str, *, data_only: bool) -> Any:
    """A read-only openpyxl workbook (parses the workbook part, styles and shared strings only)."""
    import openpyxl

    return openpyxl.load_workbook(path, read_only=True, data_only=data_only, keep_links=False)


@dataclass(frozen=True)
class Cell:
    """One cell the sheet's XML holds: Excel row and column (1-based), value and openpyxl data type."""

    row: int
    column: int
    value: object
    data_type: str


@dataclass(frozen=True)
class Sheet:
    """The cells of one sheet by row (rows in file order) and its merged ranges (``"A2:B3"``)."""

    rows: tuple[tuple[int, tuple[Cell, ...]], ...]
    merged: tuple[str, ...]


def read_sheet(workbook: Any, name: str) -> Sheet:
    """Stream sheet ``name`` of a workbook from :func:`open_workbook`."""
    from openpyxl.worksheet._reader import WorkSheetParser

    ws = workbook[name]
    rows = []
    with workbook._archive.open(ws._worksheet_path) as src:
        parser = WorkSheetParser(src, ws._shared_strings, data_only=workbook.data_only, epoch=workbook.epoch,
                                 date_formats=workbook._date_formats, timedelta_formats=workbook._timedelta_formats)
        for number, cells in parser.parse():
            kept = tuple(Cell(number, c["column"], c["value"], c["data_type"]) for c in cells
                         if c["value"] is not None or c["data_type"] == "e")
            if kept:
                rows.append((number, kept))
        merged = getattr(parser, "merged_cells", None)
    refs = tuple(str(m.ref) for m in getattr(merged, "mergeCell", ()) or ())
    return Sheet(tuple(rows), refs)

