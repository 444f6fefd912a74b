"""Load and validate scenario workbooks (docs/model.md section 7).

The workbook is read cell by cell with openpyxl (through defusedxml, so a workbook whose
XML declares entities is refused before it can exhaust memory).  Every problem found is
recorded as a :class:`~dipsd.errors.CellProblem` naming file, sheet, Excel row, column,
the offending value (as text) and what is allowed; all of them (up to
:data:`MAX_PROBLEMS`) are raised together as one :class:`~dipsd.errors.WorkbookError`.

Nothing outside this module sees a spreadsheet object: the result is a tuple of frozen
:class:`~dipsd.data.scenario.Scenario` objects.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import unicodedata
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..errors import CellProblem, InputError, WorkbookError, did_you_mean
from . import defaults as D
from . import xlsx
from .plans import PLAN_METHOD_PREFIX, NamedPlan
from .scenario import DraftModel, Scenario, TargetModel, User
from .text import plural

MAX_PROBLEMS = 50
"""At most this many problems are listed; the rest are counted."""


# ----------------------------------------------------------------------------- columns
@dataclass(frozen=True)
class Column:
    """One workbook column: its kind, whether it must be present, its paper default, its range and meaning.

    ``minimum``/``maximum`` bound the values accepted (``minimum`` exclusive for positive
    floats, where it is 0); values outside ``typical`` are accepted with a warning from
    ``dipsd check``.  The bounds keep every computation finite and meaningful.
    """

    name: str
    kind: str  # text | int | float | alpha
    unit: str
    help: str
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    typical: tuple[float, float] | None = None

    def allowed(self) -> str:
        unit = "" if self.unit == "-" else f" {self.unit}"
        if self.kind == "text":
            return "non-empty text"
        if self.kind == "alpha":
            return "a number in [0, 1]"
        if self.kind == "int":
            hi = f" and <= {int(self.maximum):,}" if self.maximum is not None else ""
            return f"a whole number >= {int(self.minimum or 1)}{hi}{unit}"
        low = f">= {self.minimum:g}" if self.minimum else "> 0"
        if self.maximum is not None:
            return f"a number {low} and <= {self.maximum:g}{unit}"
        return "a number > 0"

    def unusual(self, value) -> bool:
        return self.typical is not None and isinstance(value, (int, float)) and not self.typical[0] <= value <= self.typical[1]


def _ranged(c: Column, help: str, **changes) -> Column:
    return Column(c.name, c.kind, c.unit, help, changes.get("default", c.default), changes.get("required", False),
                  c.minimum, c.maximum, c.typical)


def _model_columns(prefix: str, what: str, blocks: str, hidden: str, ffn: str, defaults) -> tuple[Column, ...]:
    """Blocks, hidden size and FFN hidden size of a transformer (draft or target), with one range for both."""
    return (
        Column(f"{prefix}_blocks", "int", "-", f"{what}: number of transformer blocks {blocks}", defaults[0], minimum=1,
               maximum=1_000, typical=(1, 200)),
        Column(f"{prefix}_hidden", "int", "-", f"{what}: hidden size {hidden}", defaults[1], minimum=1, maximum=65_536,
               typical=(64, 32_768)),
        Column(f"{prefix}_ffn_hidden", "int", "-", f"{what}: FFN hidden size {ffn}", defaults[2], minimum=1,
               maximum=1_048_576, typical=(64, 131_072)),
    )


def _latency_columns(slope: str, intercept: str, where: str, c: str, beta: str, law: str, defaults,
                     floor: float | None = None) -> tuple[Column, ...]:
    """The latency model ``G(b, F) = c b F + beta`` of a device or the server (``floor``: the
    smallest intercept accepted, if any)."""
    return (
        Column(slope, "float", "ms/FLOP", f"{where} latency slope {c} in {law}", defaults[0], maximum=1e-6,
               typical=(1e-15, 1e-8)),
        Column(intercept, "float", "ms", f"{where} latency intercept {beta}", defaults[1], minimum=floor,
               maximum=600_000.0, typical=(0.01, 10_000.0)),
    )


USER_COLUMNS = (
    Column("alpha", "alpha", "-", "token acceptance rate of the draft model (1 = always accepted)", D.ALPHA),
    Column("prefix_len", "int", "tokens", "prefix (context) length", D.PREFIX_LEN, minimum=1, maximum=1_048_576,
           typical=(16, 131_072)),
    Column("comm_latency_ms", "float", "ms", "communication latency per round (upload + feedback)", D.COMM_LATENCY_MS,
           maximum=600_000.0, typical=(0.01, 10_000.0)),
    *_model_columns("draft", "draft model", "J_d", "h1_d", "h2_d", (D.DRAFT_BLOCKS, D.DRAFT_HIDDEN, D.DRAFT_FFN_HIDDEN)),
    *_latency_columns("draft_c_ms_per_flop", "draft_beta_ms", "device", "c_m", "beta_m", "G_m(b,F) = c_m*b*F + beta_m",
                      (D.DRAFT_C_MS_PER_FLOP, D.DRAFT_BETA_MS)),
)

SCENARIO_COLUMNS = (
    Column("scenario", "text", "-", "scenario name, unique in the workbook", required=True),
    *_model_columns("target", "target model", "J_v", "h1_v", "h2_v", (D.TARGET_BLOCKS, D.TARGET_HIDDEN, D.TARGET_FFN_HIDDEN)),
    *_latency_columns("verify_c_ms_per_flop", "verify_beta_ms", "server", "c_v", "beta_v", "G_v(b,F) = c_v*b*F + beta_v",
                      (D.VERIFY_C_MS_PER_FLOP, D.VERIFY_BETA_MS), floor=D.VERIFY_BETA_FLOOR_MS),
    Column("memory_cap_bytes", "float", "bytes", "server memory cap Gamma_max", D.MEMORY_CAP_BYTES, maximum=1e15,
           typical=(1e9, 1e13)),
    Column("max_draft_length", "int", "tokens", "largest draft length L_ub", D.MAX_DRAFT_LENGTH, minimum=1, maximum=D.MAX_DRAFT_LENGTH_CAP),
    Column("min_batches", "int", "-", "fewest batches N_min (blank: 2, or 1 for a single user)", None, minimum=1, maximum=10_000),
    Column("max_batches", "int", "-", "most batches N_max (blank: the number of users)", None, minimum=1, maximum=10_000),
    Column("initial_draft_length", "int", "tokens", "draft length that starts DiP-SD (clipped to [1, L_ub])", D.INITIAL_DRAFT_LENGTH,
           minimum=1, maximum=1_000),
) + tuple(_ranged(c, f"default for this scenario's users: {c.help}") for c in USER_COLUMNS)

USERS_SHEET_COLUMNS = (
    Column("scenario", "text", "-", "the scenario this user belongs to", required=True),
    Column("user", "text", "-", "user name, unique within its scenario", required=True),
) + tuple(_ranged(c, f"{c.help} (blank: the scenario's value)") for c in USER_COLUMNS) + (
    Column("max_draft_length", "int", "tokens", "this device's longest draft, at most the scenario's max_draft_length "
           "(blank: the scenario's); its acceptance table, if any, covers 1..this", None, minimum=1,
           maximum=D.MAX_DRAFT_LENGTH_CAP),
)

ACCEPTANCE_COLUMNS = (
    Column("scenario", "text", "-", "scenario of the user", required=True),
    Column("user", "text", "-", "user whose measured table this is", required=True),
    Column("draft_length", "int", "tokens", "draft length k (every k = 1..max_draft_length)", required=True, minimum=1,
           maximum=D.MAX_DRAFT_LENGTH_CAP),
    Column("expected_tokens", "float", "tokens", "expected tokens per round u(k), in [1, k+1], non-decreasing in k "
           "(or give one of the two rate columns instead)"),
    Column("accept_prob", "alpha", "-", "per position j = draft_length: the probability that draft token j is accepted "
           "given tokens 1..j-1 were (conditional, p_j); u(k) = 1 + sum over j <= k of p_1 ... p_j"),
    Column("accepted_share", "alpha", "-", "per position j = draft_length: the share of drafts with at least j tokens "
           "accepted (unconditional, a_j, as serving engines count it; non-increasing in j); u(k) = 1 + a_1 + ... + a_k"),
)
ACCEPTANCE_KINDS = ("expected_tokens", "accept_prob", "accepted_share")
"""The three ways a row of sheet 'acceptance' states a user's acceptance; one per user, every row."""

PLANS_COLUMNS = (
    Column("scenario", "text", "-", "scenario of the plan", required=True),
    Column("plan", "text", "-", "plan name (a study runs it as method plan:NAME)", required=True),
    Column("user", "text", "-", "a user of the scenario (each user once per plan)", required=True),
    Column("batch", "int", "-", "the user's batch; batch numbers give the verification order", required=True, minimum=1,
           maximum=10_000),
    Column("draft_length", "int", "tokens", "the user's draft length (1..max_draft_length)", required=True, minimum=1,
           maximum=D.MAX_DRAFT_LENGTH_CAP),
)

SHEETS = {"scenarios": SCENARIO_COLUMNS, "users": USERS_SHEET_COLUMNS, "acceptance": ACCEPTANCE_COLUMNS,
          "plans": PLANS_COLUMNS}
OPTIONAL_SHEETS = frozenset({"acceptance", "plans"})


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class LoadedWorkbook:
    """The scenarios of one workbook, with what the loader noticed about each."""

    path: str
    sha256: str
    scenarios: tuple[Scenario, ...]
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    plans: tuple[NamedPlan, ...] = ()
    """The user's plans (sheet ``plans``), in sheet order."""
    unread: tuple[str, ...] = ()
    """Sheets of the file dipsd does not read (``dipsd check`` lists them)."""
    unusable: tuple[tuple[str, str, str], ...] = ()
    """Plans of sheet ``plans`` that cannot be used, ``(scenario, plan, why)`` with the sheet, row and
    column in ``why`` (``check`` and ``evaluate`` show them; naming one as a method is refused with
    the reason).  A bad plan never stops the methods that do not use it."""

    def unusable_plan(self, method: str) -> str | None:
        """Why the workbook's plan ``plan:NAME`` cannot be used (its first problem), or None."""
        return next((f"plan {p!r} of scenario {s!r}: {why}" for s, p, why in self.unusable
                     if PLAN_METHOD_PREFIX + p == method), None)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the validated scenarios and plans (not of the file's bytes, which change on
        every save); a workbook without plans keeps the fingerprint of the scenarios alone."""
        content = repr(self.scenarios) if not self.plans else repr((self.scenarios, self.plans))
        limits = [(s.name, u.name, u.max_draft_length) for s in self.scenarios for u in s.users if u.max_draft_length is not None]
        if limits:
            content += repr(limits)
        return hashlib.sha256(content.encode()).hexdigest()

    def scenario(self, name: str) -> Scenario:
        """The scenario called ``name``; :class:`~dipsd.errors.InputError` (with a "did you mean")
        if there is none."""
        for s in self.scenarios:
            if s.name == name:
                return s
        raise InputError(f"no scenario {name!r} in {os.path.basename(self.path)}"
                         f"{did_you_mean(name, [s.name for s in self.scenarios])}")

    @property
    def plan_methods(self) -> list[str]:
        """``plan:NAME`` for every plan name, in order of first appearance."""
        return list(dict.fromkeys(p.method for p in self.plans))

    def plans_of(self, scenario: str) -> dict[str, NamedPlan]:
        """The plans of one scenario by method name (``plan:NAME``)."""
        return {p.method: p for p in self.plans if p.scenario == scenario}


@dataclass
class _Row:
    """One data row of a sheet: Excel row number and parsed values (missing key = blank)."""

    number: int
    values: dict[str, Any]


class _Problems:
    def __init__(self, file: str):
        self.file = file
        self.items: list[CellProblem] = []
        self.dropped = 0

    def add(self, sheet, row, column, value, allowed) -> None:
        if len(self.items) >= MAX_PROBLEMS:
            self.dropped += 1
            return
        shown = None if value is None else _show(value)
        self.items.append(CellProblem(self.file, sheet, row, column, shown, allowed))

    def raise_if_any(self) -> None:
        if self.items:
            items = list(self.items)
            if self.dropped:
                items.append(CellProblem(self.file, None, None, None, None, f"... and {self.dropped} more problems not listed"))
            raise WorkbookError(items)


def _show(value: Any) -> str:
    """A value as text for a message: control characters escaped, cut to :data:`MAX_TEXT` characters."""
    text = str(value)
    return _shorten("".join(repr(ch)[1:-1] if unicodedata.category(ch) in _CONTROL else ch for ch in text))


# ----------------------------------------------------------------------------- reading
_CONTROL = frozenset({"Cc", "Zl", "Zp", "Cs"})
MAX_NAME = 255
"""Longest scenario, user or plan name accepted (characters)."""
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
"""Unicode categories a name may not contain: control characters, line and paragraph breaks."""
MAX_TEXT = 80
"""Longest value shown in a message (longer ones are cut, with their length)."""


def _open(path: str, problems: _Problems):
    """Both views of the workbook, read-only: formulas (to detect them) and cached values."""
    if not os.path.exists(path):
        problems.add(None, None, None, None, "file not found")
        problems.raise_if_any()
    if os.path.isdir(path):
        problems.add(None, None, None, None, "is a directory, not an .xlsx workbook")
        problems.raise_if_any()
    try:
        xlsx.check_package(path)
        with_formulas = xlsx.open_workbook(path, data_only=False)
        with_values = xlsx.open_workbook(path, data_only=True)
    except xlsx.PackageError as exc:
        problems.add(None, None, None, None, f"not a readable .xlsx workbook ({exc})")
        problems.raise_if_any()
    except Exception as exc:  # any parse failure is an unreadable workbook
        problems.add(None, None, None, None, f"not a readable .xlsx workbook ({_parse_failure(exc)})")
        problems.raise_if_any()
    return with_formulas, with_values


def _parse_failure(exc: BaseException) -> str:
    """The cause of a failed parse in a user's words."""
    from defusedxml import DefusedXmlException

    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:  # openpyxl wraps parse errors in its own
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(isinstance(e, DefusedXmlException) or "Entit" in type(e).__name__ or "DTD" in type(e).__name__ for e in chain):
        return "the XML declares entities (possible XML bomb); refused"
    if isinstance(exc, zipfile.BadZipFile) or "zip" in str(exc).lower():
        return "not a zip archive (a CSV or other file renamed .xlsx, or a truncated file)"
    return f"{type(exc).__name__}: {_shorten(str(exc))}"


def _shorten(text: str) -> str:
    text = str(text)
    return text if len(text) <= MAX_TEXT else f"{text[:MAX_TEXT]}... ({len(text)} characters)"


def _stream(wf, wv, sheet: str, problems: _Problems):
    """Both passes over one sheet, or None after recording why it could not be read."""
    try:
        return xlsx.read_sheet(wf, sheet), xlsx.read_sheet(wv, sheet)
    except Exception as exc:  # a sheet that cannot be parsed (bad XML, entities, ...)
        problems.add(sheet, None, None, None, f"sheet cannot be read ({_parse_failure(exc)})")
        return None


def _is_error(cell) -> bool:
    """A cached spreadsheet error (``#N/A``, ``#DIV/0!``, ...); the same text typed as text is text."""
    return cell.data_type == "e"


def _read_sheet(wf, wv, sheet: str, columns: tuple[Column, ...], problems: _Problems) -> list[_Row] | None:
    """Parse one sheet into rows of typed values, recording every bad cell."""
    if sheet not in wv.sheetnames:
        return None
    both = _stream(wf, wv, sheet, problems)
    if both is None:
        return None
    sheet_f, sheet_v = both
    if not sheet_v.rows:
        problems.add(sheet, None, None, None, f"sheet is empty; needs a header row with {_names(columns)}")
        return []
    header_row = sheet_v.rows[0][0]
    header = _read_header(sheet, sheet_v, columns, problems)
    if header is None:
        return None
    formulas = {(c.row, c.column): c for _, cells in sheet_f.rows for c in cells if c.data_type == "f"}
    cached = {(c.row, c.column) for _, cells in sheet_v.rows for c in cells}
    by_row: dict[int, list] = {number: list(cells) for number, cells in sheet_v.rows[1:]}
    # a formula without a cached value is absent from the value pass: add it as a blank cell
    for (r, col), _f in formulas.items():
        if r > header_row and (r, col) not in cached:
            by_row.setdefault(r, []).append(xlsx.Cell(r, col, None, "f"))
    out: list[_Row] = []
    for number in sorted(by_row):
        row = _read_row(sheet, number, by_row[number], header, columns, formulas, problems)
        if row is not None:
            out.append(row)
    return out


def _read_header(sheet: str, sheet_v, columns: tuple[Column, ...], problems: _Problems) -> dict[int, str] | None:
    """Column number -> column name of a sheet's header row; None when the sheet's structure is wrong
    (merged cells, an error value, an unknown or repeated name, a required column missing)."""
    from openpyxl.utils import get_column_letter, range_boundaries

    spec = {c.name: c for c in columns}
    header_row, header_cells = sheet_v.rows[0]
    structural = False
    for ref in sheet_v.merged:
        try:
            min_col, min_row, max_col, max_row = range_boundaries(ref)
        except (TypeError, ValueError):
            min_row = max_row = header_row
        if max_row is None or max_row >= header_row:
            problems.add(sheet, min_row, None, ref, "no merged cells in the header or data rows (unmerge them: "
                                                    "a merged cell's other cells read as blank)")
            structural = True
    header: dict[int, str] = {}
    for cell in header_cells:
        raw = cell.value
        if _is_error(cell):
            problems.add(sheet, header_row, get_column_letter(cell.column), raw, "a column name, not an error value")
            structural = True
            continue
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        title = str(raw).strip()
        if title not in spec:
            hint = did_you_mean(title, spec)
            problems.add(sheet, header_row, _shorten(title), None, f"unknown column '{_shorten(title)}'{hint} (valid: {_names(columns)})")
            structural = True
            continue
        if title in header.values():
            problems.add(sheet, header_row, title, None, "column appears twice")
            structural = True
            continue
        header[cell.column] = title
    for c in columns:
        if c.required and c.name not in header.values():
            problems.add(sheet, header_row, c.name, None, "required column missing")
            structural = True
    return None if structural else header


def _read_row(sheet: str, number: int, cells: list, header: dict[int, str], columns: tuple[Column, ...],
              formulas: dict, problems: _Problems) -> _Row | None:
    """One data row's typed values (every bad cell recorded); None for a blank row, which is ignored."""
    from openpyxl.utils import get_column_letter

    spec = {c.name: c for c in columns}
    values: dict[str, Any] = {}
    nonblank = False
    for cv in sorted(cells, key=lambda c: c.column):
        name = header.get(cv.column)
        raw = cv.value
        if _is_error(cv):
            problems.add(sheet, number, name or get_column_letter(cv.column), raw,
                         "a value, not a spreadsheet error (fix the formula or type the value)")
            nonblank = True
            continue
        if name is None:
            if raw is not None and not (isinstance(raw, str) and not raw.strip()):
                problems.add(sheet, number, get_column_letter(cv.column), raw, "a value in a column without a header")
            continue
        if (number, cv.column) in formulas and raw is None:
            problems.add(sheet, number, name, formulas[(number, cv.column)].value,
                         "a formula with a cached value (open and save the file in a spreadsheet program), or a plain value")
            nonblank = True
            continue
        parsed = _parse(raw, spec[name], sheet, number, problems)
        if parsed is _BAD:
            nonblank = True
        elif parsed is not None:
            values[name] = parsed
            nonblank = True
    if not nonblank:
        return None
    for c in columns:
        if c.required and c.name not in values and not _has_problem(problems, sheet, number, c.name):
            problems.add(sheet, number, c.name, "", f"required; {c.allowed()}")
    return _Row(number, values)


def _has_problem(problems: _Problems, sheet, row, column) -> bool:
    return any(p.sheet == sheet and p.row == row and p.column == column for p in problems.items)


_BAD = object()


def _parse_text(raw: Any, col: Column, sheet: str, row: int, problems: _Problems):
    """A name (scenario, user, plan): NFC-normalized, no control or invisible characters, at most
    :data:`MAX_NAME` characters; a whole number typed in a name column reads as its digits."""
    if isinstance(raw, bool):
        problems.add(sheet, row, col.name, raw, col.allowed())
        return _BAD
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    text = unicodedata.normalize("NFC", str(raw).strip())  # 'café' typed two ways is one name
    if any(unicodedata.category(ch) in _CONTROL for ch in text):
        problems.add(sheet, row, col.name, raw, "text without line breaks, tabs or control characters")
        return _BAD
    if any(unicodedata.category(ch) == "Cf" for ch in text):  # zero-width and bidi controls: look-alike names
        problems.add(sheet, row, col.name, raw, "text without invisible or direction-changing characters "
                                                "(zero-width spaces, bidi overrides)")
        return _BAD
    if len(text) > MAX_NAME:
        problems.add(sheet, row, col.name, raw, f"text of at most {MAX_NAME} characters (got {len(text):,})")
        return _BAD
    return text


def _parse(raw: Any, col: Column, sheet: str, row: int, problems: _Problems):
    """The typed value of one cell; ``None`` for blank, ``_BAD`` after recording a problem."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
    if col.kind == "text":
        return _parse_text(raw, col, sheet, row, problems)
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        problems.add(sheet, row, col.name, raw, col.allowed())
        return _BAD
    if isinstance(raw, str):
        try:
            if not _PLAIN_NUMBER.fullmatch(raw.strip()):  # no '1_024', no non-ASCII digits, no separators
                raise ValueError(raw)
            number = float(raw.strip())
        except ValueError:
            problems.add(sheet, row, col.name, raw, f"not a number written plainly (ASCII digits, optional sign, "
                                                    f"point and exponent); {col.allowed()}")
            return _BAD
    else:
        number = float(raw)
    if not math.isfinite(number):
        problems.add(sheet, row, col.name, raw, f"not a finite number; {col.allowed()}")
        return _BAD
    if col.kind == "int":
        if not number.is_integer():
            problems.add(sheet, row, col.name, raw, f"not a whole number; {col.allowed()}")
            return _BAD
        value = int(number)
        if (col.minimum is not None and value < col.minimum) or (col.maximum is not None and value > col.maximum):
            problems.add(sheet, row, col.name, raw, col.allowed())
            return _BAD
        return value
    if col.kind == "alpha":
        if not 0.0 <= number <= 1.0:
            problems.add(sheet, row, col.name, raw, col.allowed())
            return _BAD
        return number
    if col.name == "expected_tokens":
        return number  # range checked against k later
    if number <= 0 or (col.minimum is not None and number < col.minimum) or (col.maximum is not None and number > col.maximum):
        problems.add(sheet, row, col.name, raw, col.allowed())
        return _BAD
    return number


def _names(columns) -> str:
    return ", ".join(c.name for c in columns)


# ----------------------------------------------------------------------------- assembling
def load_workbook(path: str | os.PathLike) -> LoadedWorkbook:
    """Read, validate and return every scenario of a workbook.

    Raises :class:`~dipsd.errors.WorkbookError` listing every problem found.
    """
    path = os.fspath(path)
    file = os.path.basename(path)
    problems = _Problems(file)
    wf, wv = _open(path, problems)
    sheets: dict[str, list[_Row] | None] = {}
    near = _near_misses(wv.sheetnames)
    for sheet, columns in SHEETS.items():
        rows = _read_sheet(wf, wv, sheet, columns, problems)
        if rows is None and sheet not in wv.sheetnames and sheet not in OPTIONAL_SHEETS and sheet not in near.values():
            problems.add(sheet, None, None, None, f"sheet '{sheet}' missing (sheets found: {', '.join(wv.sheetnames)})")
        sheets[sheet] = rows
    for found, meant in near.items():  # read nothing from a sheet named almost like one of ours: say so
        problems.add(found, None, None, None, f"sheet '{found}' is not read: sheet names match exactly; did you mean "
                                              f"'{meant}'? (rename the sheet)")
    # a bad cell of sheet 'plans' makes its plan unusable, not the workbook
    soft = [p for p in problems.items if p.sheet == "plans" and p.row is not None]
    problems.items = [p for p in problems.items if p not in soft]
    problems.raise_if_any()
    scenarios, notes, skipped = _assemble(sheets, problems)
    plan_problems = _Problems(file)
    plans = _assemble_plans(sheets.get("plans") or [], {s.name: s for s in scenarios}, plan_problems, skipped,
                            bad_rows={p.row: p for p in soft if p.row is not None})
    problems.raise_if_any()
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    unread = tuple(n for n in wv.sheetnames if n not in SHEETS and n not in INFORMATION_SHEETS)
    return LoadedWorkbook(path=path, sha256=digest, scenarios=tuple(scenarios), notes=notes, plans=plans[0], unread=unread,
                          unusable=plans[1])


INFORMATION_SHEETS = frozenset({"README"})
"""Sheets dipsd writes for people (the template's explanations): never read, never reported as unread."""


def _near_misses(names: list[str]) -> dict[str, str]:
    """Sheets of the file whose name is one of ours but for case, spaces or a small typo, where ours is
    absent: found name -> our name."""
    import difflib

    ours = [s for s in SHEETS if s not in names]
    out: dict[str, str] = {}
    for name in names:
        if name in SHEETS or name in INFORMATION_SHEETS:
            continue
        folded = " ".join(name.split()).casefold()
        same = [s for s in ours if s == folded or s == folded.replace(" ", "")]
        close = same or difflib.get_close_matches(folded, ours, n=1, cutoff=0.75)
        if close and close[0] not in out.values():
            out[name] = close[0]
    return out


def _assemble_plans(rows: list[_Row], scenarios: dict[str, Scenario], problems: _Problems,
                    skipped: frozenset[str] = frozenset(), bad_rows: dict[int, CellProblem] | None = None
                    ) -> tuple[tuple[NamedPlan, ...], tuple[tuple[str, str, str], ...]]:
    """Sheet ``plans``: ``(plans, unusable)``.  A plan holds every user of its scenario once, lengths
    within the user's limit (its own ``max_draft_length``, else L_ub), a name without commas; batch
    numbers are the verification order (gaps allowed).  A plan that breaks any of this, or has a bad
    cell (``bad_rows``, from the sheet reader), is unusable: ``(scenario, plan, why)`` with the cell of
    its first problem, and it never stops the rest of the workbook.  Feasibility (memory, number of
    batches) is the evaluator's to judge, with its reason.  Rows of a scenario in ``skipped`` (refused
    for a problem already reported) say nothing more."""
    bad_rows = bad_rows or {}
    unusable: dict[tuple[str, str], list[str]] = defaultdict(list)

    def refuse(key: tuple[str, str], row: int, column: str | None, value, allowed: str) -> None:
        unusable[key].append(str(CellProblem(problems.file, "plans", row, column, None if value is None else _show(value),
                                             allowed)))

    grouped: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    for row in rows:
        v = row.values
        key = (str(v.get("scenario", "?")), str(v.get("plan", "?")))
        if row.number in bad_rows:
            unusable[key].append(str(bad_rows.pop(row.number)))
            continue
        if any(v.get(c) is None for c in ("scenario", "plan", "user", "batch", "draft_length")):
            continue
        if v["scenario"] in skipped:
            continue
        if v["scenario"] not in scenarios:
            refuse(key, row.number, "scenario", v["scenario"], _known("a scenario of sheet 'scenarios'", v["scenario"], scenarios))
            continue
        grouped[(v["scenario"], v["plan"])].append(row)
    for problem in bad_rows.values():  # bad cells on rows that hold no data at all
        unusable[("?", "?")].append(str(problem))
    out = []
    for (sname, pname), prow in grouped.items():
        key = (sname, pname)
        if key in unusable:  # a bad cell in one of its rows: that is its problem
            continue
        s = scenarios[sname]
        users = {u.name: u for u in s.users}
        seen: dict[str, int] = {}
        if "," in pname:
            refuse(key, prow[0].number, "plan", pname, "a plan name without commas (--methods lists names separated by "
                                                       "commas: plan:NAME)")
        for row in prow:
            v = row.values
            if v["user"] not in users:
                refuse(key, row.number, "user", v["user"], _known(f"a user of scenario '{sname}'", v["user"], users))
            elif v["user"] in seen:
                refuse(key, row.number, "user", v["user"],
                       f"each user once per plan (plan '{pname}' of '{sname}': already in row {seen[v['user']]})")
            else:
                seen[v["user"]] = row.number
            own = users[v["user"]].max_draft_length if v["user"] in users else None
            if own is not None and v["draft_length"] > own:
                refuse(key, row.number, "draft_length", v["draft_length"],
                       f"a draft length in 1..{own} (max_draft_length of user '{v['user']}' in sheet 'users'; plan '{pname}')")
            elif v["draft_length"] > s.max_draft_length:
                refuse(key, row.number, "draft_length", v["draft_length"],
                       f"a draft length in 1..{s.max_draft_length} (max_draft_length of '{sname}'; plan '{pname}')")
        missing = [u for u in users if u not in seen]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            refuse(key, prow[0].number, "user", f"missing {shown}",
                   f"every user of scenario '{sname}' once in plan '{pname}' ({plural(len(missing), 'user')} missing)")
        if key in unusable:
            continue
        by_batch: dict[int, list[_Row]] = defaultdict(list)
        for row in prow:
            by_batch[row.values["batch"]].append(row)
        order = sorted(by_batch)
        out.append(NamedPlan(
            scenario=sname, name=pname,
            batches=tuple(tuple(r.values["user"] for r in by_batch[b]) for b in order),
            lengths=tuple((r.values["user"], int(r.values["draft_length"])) for r in prow),
            rows=tuple(tuple(r.number for r in by_batch[b]) for b in order),
        ))
    return tuple(out), tuple((s, p, "; ".join(whys)) for (s, p), whys in unusable.items())


def _assemble(sheets, problems: _Problems):
    scen_rows: dict[str, _Row] = {}
    for row in sheets["scenarios"] or []:
        name = row.values.get("scenario")
        if name is None:
            continue
        if name in scen_rows:
            problems.add("scenarios", row.number, "scenario", name, f"a unique name (already used in row {scen_rows[name].number})")
            continue
        scen_rows[name] = row

    user_rows: dict[str, list[_Row]] = defaultdict(list)
    seen_users: dict[tuple[str, str], int] = {}
    orphans: set[str] = set()  # users whose own row was refused: rows naming them elsewhere follow from that
    for row in sheets["users"] or []:
        sname, uname = row.values.get("scenario"), row.values.get("user")
        if sname is None or uname is None:
            continue
        if sname not in scen_rows:
            problems.add("users", row.number, "scenario", sname, _known("a scenario of sheet 'scenarios'", sname, scen_rows))
            orphans.add(uname)
            continue
        key = (sname, uname)
        if key in seen_users:
            problems.add("users", row.number, "user", uname,
                         f"a user name unique within scenario '{sname}' (already used in row {seen_users[key]})")
            continue
        seen_users[key] = row.number
        user_rows[sname].append(row)

    acceptance: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    strangers: dict[tuple[str, str, str], list[_Row]] = defaultdict(list)  # (column, scenario, user): one problem each
    for row in sheets.get("acceptance") or []:
        sname, uname = row.values.get("scenario"), row.values.get("user")
        if sname is None or uname is None or "draft_length" not in row.values:
            continue
        given = [c for c in ACCEPTANCE_KINDS if c in row.values]
        if len(given) != 1:
            if not any(_has_problem(problems, "acceptance", row.number, c) for c in ACCEPTANCE_KINDS):
                problems.add("acceptance", row.number, ", ".join(given) or "expected_tokens", None,
                             f"exactly one of {', '.join(ACCEPTANCE_KINDS)} per row (this row gives {len(given)})")
            continue
        if sname not in scen_rows:
            strangers[("scenario", sname, uname)].append(row)
        elif (sname, uname) not in seen_users:
            if uname not in orphans:
                strangers[("user", sname, uname)].append(row)
        else:
            acceptance[(sname, uname)].append(row)
    for (column, sname, uname), rows in strangers.items():
        names = {u: None for (s, u) in seen_users if s == sname}
        what = _known("a scenario of sheet 'scenarios'", sname, scen_rows) if column == "scenario" else \
            _known(f"a user of scenario '{sname}' in sheet 'users'", uname, names)
        also = "" if len(rows) == 1 else f" (and rows {_rows_text([r.number for r in rows[1:]])})"
        problems.add("acceptance", rows[0].number, column, sname if column == "scenario" else uname, what + also)

    scenarios, notes, skipped = [], {}, set()
    for name, srow in scen_rows.items():
        if not user_rows.get(name):
            problems.add("scenarios", srow.number, "scenario", name, "a scenario with at least one user in sheet 'users'")
            skipped.add(name)
            continue
        built = _build_scenario(name, srow, user_rows[name], acceptance, problems)
        if built is not None:
            scenarios.append(built[0])
            notes[name] = built[1]
        else:
            skipped.add(name)
    return scenarios, notes, frozenset(skipped)


def _rows_text(numbers: list[int]) -> str:
    """Row numbers for a message: ``5, 6, 7`` or ``5-20`` for a run, at most a few shown."""
    if len(numbers) > 3 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(map(str, numbers[:8])) + (" ..." if len(numbers) > 8 else "")


def _known(what: str, value: str, names) -> str:
    return what + did_you_mean(value, names)


def _build_scenario(name, srow: _Row, urows: list[_Row], acceptance, problems: _Problems):
    """The scenario of a ``scenarios`` row and its users' rows with the notes the loader prints, or
    None when a problem was recorded (every problem is, not just the first)."""
    sv = srow.values

    def pick(col: str):
        spec = next(c for c in SCENARIO_COLUMNS if c.name == col)
        return sv.get(col, spec.default)

    target = TargetModel(
        blocks=pick("target_blocks"), hidden=pick("target_hidden"), ffn_hidden=pick("target_ffn_hidden"),
        c_ms_per_flop=pick("verify_c_ms_per_flop"), beta_ms=pick("verify_beta_ms"),
    )
    cap = pick("memory_cap_bytes")
    lub = pick("max_draft_length")
    ok = True
    if target.parameter_bytes + 4.0 * target.blocks * target.hidden > cap:
        problems.add("scenarios", srow.number, "memory_cap_bytes", sv.get("memory_cap_bytes", cap),
                     f"a cap above the target model's parameter memory ({target.parameter_bytes:.6g} bytes) plus the KV cache of one user")
        ok = False
    nmin, nmax, counts_ok = _batch_range(srow, len(urows), problems)
    users = [_build_user(name, urow, sv, target, cap, lub, acceptance, problems) for urow in urows]
    if not (ok and counts_ok) or any(u is None for u in users):
        return None
    scenario = Scenario(name=name, users=tuple(u for u in users if u is not None), target=target, memory_cap_bytes=cap,
                        max_draft_length=lub, min_batches=nmin, max_batches=nmax,
                        initial_draft_length=pick("initial_draft_length"))
    return scenario, tuple(_scenario_notes(scenario, sv, urows))


def _batch_range(srow: _Row, m: int, problems: _Problems) -> tuple[int, int, bool]:
    """``min_batches`` and ``max_batches`` of a scenario of ``m`` users (blank: the defaults) and
    whether they are allowed (each problem recorded)."""
    sv = srow.values
    nmin = sv.get("min_batches", 1 if m == 1 else min(D.MIN_BATCHES, m))
    nmax = sv.get("max_batches", m)
    ok = True
    if not 1 <= nmin <= m:
        problems.add("scenarios", srow.number, "min_batches", nmin, f"a whole number in [1, {m}] (the scenario has {plural(m, 'user')})")
        ok = False
    if not 1 <= nmax <= m:
        problems.add("scenarios", srow.number, "max_batches", nmax, f"a whole number in [1, {m}] (the scenario has {plural(m, 'user')})")
        ok = False
    elif 1 <= nmin <= m and nmin > nmax:
        problems.add("scenarios", srow.number, "min_batches", nmin, f"at most max_batches ({nmax})")
        ok = False
    return nmin, nmax, ok


def _build_user(name: str, urow: _Row, sv: dict, target: TargetModel, cap: float, lub: int, acceptance,
                problems: _Problems) -> User | None:
    """One user of scenario ``name`` (blank cells: the scenario's value, else the paper default), or
    None when a problem was recorded."""
    uv = urow.values

    def upick(col: str):
        if col in uv:
            return uv[col]
        spec = next(c for c in USER_COLUMNS if c.name == col)
        return sv.get(col, spec.default)

    uname = uv["user"]
    draft = DraftModel(
        blocks=upick("draft_blocks"), hidden=upick("draft_hidden"), ffn_hidden=upick("draft_ffn_hidden"),
        c_ms_per_flop=upick("draft_c_ms_per_flop"), beta_ms=upick("draft_beta_ms"),
    )
    ok = True
    prefix = upick("prefix_len")
    if target.parameter_bytes + target.kv_bytes(1, prefix) > cap:
        kv_one = 4.0 * target.blocks * target.hidden
        room = int((cap - target.parameter_bytes) // kv_one) if cap > target.parameter_bytes else 0
        problems.add("users", urow.number, "prefix_len", prefix,
                     f"a prefix whose KV cache fits the memory cap alone (at most {room} tokens under memory_cap_bytes={cap:.6g})")
        ok = False
    limit = uv.get("max_draft_length")
    if limit is not None and limit > lub:
        problems.add("users", urow.number, "max_draft_length", limit,
                     f"a whole number in 1..{lub} (the max_draft_length of scenario '{name}'), or blank")
        ok = False
        limit = None
    table = _acceptance_table(name, uname, limit or lub, acceptance.get((name, uname), []), problems, own=limit is not None)
    if table is _BAD:
        ok = False
        table = None
    try:
        user = User(name=uname, alpha=upick("alpha"), prefix_len=prefix, comm_latency_ms=upick("comm_latency_ms"),
                    draft=draft, acceptance=table, max_draft_length=limit)
    except ValueError as exc:  # pragma: no cover - columns are validated above
        problems.add("users", urow.number, None, None, str(exc))
        return None
    return user if ok else None


def _scenario_notes(scenario: Scenario, sv: dict, urows: list[_Row]) -> list[str]:
    """What the loader says about a valid scenario: unusual values, a batch cap below the users,
    the defaults applied."""
    notes: list[str] = []
    user_cols = {c.name for c in USER_COLUMNS}
    defaulted = [c.name for c in SCENARIO_COLUMNS if c.default is not None and c.name not in sv and c.name not in user_cols]
    defaulted += [c for c in ("min_batches", "max_batches") if c not in sv]
    user_defaulted = {c.name: sum(c.name not in r.values and c.name not in sv for r in urows) for c in USER_COLUMNS}
    unusual = [f"{c.name} {sv[c.name]:g}" for c in SCENARIO_COLUMNS if c.name in sv and c.unusual(sv[c.name])]
    for urow in urows:
        unusual += [f"{c.name} {urow.values[c.name]:g} of user '{urow.values['user']}'"
                    for c in USER_COLUMNS if c.name in urow.values and c.unusual(urow.values[c.name])]
    if unusual:
        shown = "; ".join(unusual[:5]) + (f"; and {len(unusual) - 5} more" if len(unusual) > 5 else "")
        notes.append(f"WARNING unusual values (allowed, outside the typical range in the README): {shown}")
    if scenario.max_batches < scenario.num_users:
        notes.append(f"WARNING max_batches {scenario.max_batches} is below the {scenario.num_users} users: plans with more "
                     f"batches are excluded (sd-nobatch, every user alone, is infeasible); leave it blank for the number of users")
    if defaulted:
        notes.append("defaults for " + ", ".join(defaulted))
    m = len(urows)
    per_user = [f"{n} ({k}/{m})" for n, k in user_defaulted.items() if k]
    if per_user:
        notes.append("users on paper defaults for " + ", ".join(per_user))
    return notes


def _acceptance_table(sname, uname, lub, rows: list[_Row], problems: _Problems, own: bool = False):
    """The measured table u(1..lub) of one user (``lub`` its own limit when ``own``)."""
    whose = f"max_draft_length of user '{uname}'" if own else f"max_draft_length of '{sname}'; user '{uname}'"
    if not rows:
        return None
    by_k: dict[int, _Row] = {}
    bad = False
    kind = next(c for c in ACCEPTANCE_KINDS if c in rows[0].values)
    for row in rows:
        k = row.values["draft_length"]
        if kind not in row.values:
            other = next(c for c in ACCEPTANCE_KINDS if c in row.values)
            problems.add("acceptance", row.number, other, row.values[other],
                         f"one kind of column per user: user '{uname}' gives {kind} in row {rows[0].number}")
            return _BAD
        val = row.values[kind]
        if k > lub:
            problems.add("acceptance", row.number, "draft_length", k, f"a draft length in 1..{lub} ({whose})")
            bad = True
            continue
        if k in by_k:
            problems.add("acceptance", row.number, "draft_length", k,
                         f"each draft length once per user (user '{uname}': already in row {by_k[k].number})")
            bad = True
            continue
        if kind == "expected_tokens" and not 1.0 <= val <= k + 1:
            problems.add("acceptance", row.number, "expected_tokens", val,
                         f"a number in [1, {k + 1}] for draft_length {k} of user '{uname}'")
            bad = True
        by_k[k] = row
    missing = [k for k in range(1, lub + 1) if k not in by_k]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        problems.add("acceptance", rows[0].number, "draft_length", f"missing {shown}",
                     f"rows for every draft length 1..{lub} of user '{uname}' in scenario '{sname}'")
        return _BAD
    if bad:
        return _BAD
    values = [by_k[k].values[kind] for k in range(1, lub + 1)]
    if kind != "expected_tokens":
        return _from_rates(kind, values, by_k, uname, problems)
    for k in range(2, lub + 1):
        if values[k - 1] < values[k - 2]:
            problems.add("acceptance", by_k[k].number, "expected_tokens", values[k - 1],
                         f"non-decreasing in draft_length for user '{uname}' (at least {values[k - 2]}, the value for {k - 1})")
            return _BAD
    return tuple(float(v) for v in values)


def _from_rates(kind: str, rates: list[float], by_k: dict[int, _Row], uname: str, problems: _Problems):
    """``u(1..L)`` from per-position acceptance (docs/model.md section 7): ``a_j = p_1 ... p_j`` from the
    conditional ``accept_prob``, or ``a_j`` itself from ``accepted_share`` (which must not rise with j);
    ``u(k) = 1 + a_1 + ... + a_k``, so ``1 <= u(k) <= k + 1`` and ``u`` never decreases."""
    shares, running = [], 1.0
    for j, rate in enumerate(rates, start=1):
        if kind == "accepted_share":
            if j > 1 and rate > rates[j - 2]:
                problems.add("acceptance", by_k[j].number, kind, rate,
                             f"non-increasing in draft_length for user '{uname}' (at most {rates[j - 2]}, the share at {j - 1}: "
                             f"a draft cannot have j tokens accepted without j - 1)")
                return _BAD
            shares.append(rate)
        else:
            running *= rate
            shares.append(running)
    table, total = [], 1.0
    for a in shares:
        total += a
        table.append(total)
    return tuple(table)
