"""Results as pandas DataFrames: one tidy row per (scenario, method), and reports read back.

pandas is the public face of results; everything below (solvers, formulation, data) works
on plain records and frozen dataclasses.  The columns of :func:`records_frame` (units in
the names): ``scenario``, ``users``, ``method``, ``status`` (categorical), ``throughput_tps``,
``upper_bound_tps`` (the method's own certified bound), ``optimum_tps`` (NaN unless some
method proved it), ``best_bound_tps`` (the best bound any method proved), ``gap_pct`` (to
the proven optimum), ``certified_gap_pct`` (to the best bound: the true gap is at most
this), ``gap_kind`` (``proven`` where the optimum is proven, ``certified`` where only a bound
is, ``none``), ``gap_counted`` (False for a run stopped at its limit,
:func:`~dipsd.reports.stats.stopped`: its gaps are shown but in no summary), ``ended`` (why the
run ended, in words), ``num_batches``, ``span_ms``, ``expected_tokens``, ``runtime_s``,
``iterations``, ``message``.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable

import pandas as pd

from ..data.scenario import Scenario
from ..solvers.results import Record, SolveResult, Status
from .stats import ended, gap, references, stopped

COLUMNS = ("scenario", "users", "method", "status", "throughput_tps", "upper_bound_tps", "optimum_tps", "best_bound_tps",
           "gap_pct", "certified_gap_pct", "gap_kind", "gap_counted", "ended", "num_batches", "span_ms", "expected_tokens",
           "runtime_s", "iterations", "message")
FLOATS = ("throughput_tps", "upper_bound_tps", "optimum_tps", "best_bound_tps", "gap_pct", "certified_gap_pct", "span_ms",
          "expected_tokens", "runtime_s")
INTS = ("users", "num_batches", "iterations")
STATUSES = tuple(s.value for s in Status)


def _num(value: float | None) -> float:
    return math.nan if value is None else value


def records_frame(records: list[Record], num_users: dict[str, int]) -> pd.DataFrame:
    """The tidy frame of study records (see the module docstring)."""
    refs = references(records)
    rows = []
    for r in records:
        ref = refs.get(r.scenario)
        g = gap(r, ref)
        rows.append({
            "scenario": r.scenario, "users": num_users.get(r.scenario), "method": r.method, "status": r.status.value,
            "throughput_tps": _num(r.throughput_tps), "upper_bound_tps": _num(r.upper_bound_tps),
            "optimum_tps": _num(ref.optimum if ref else None), "best_bound_tps": _num(ref.bound if ref else None),
            "gap_pct": _num(g.proven), "certified_gap_pct": _num(g.certified),
            "gap_kind": "proven" if g.proven is not None else ("certified" if g.certified is not None else "none"),
            "gap_counted": (g.proven is not None or g.certified is not None) and not stopped(r), "ended": ended(r),
            "num_batches": r.num_batches,
            "span_ms": _num(r.span_ms), "expected_tokens": _num(r.expected_tokens),
            "runtime_s": _num(r.runtime_s), "iterations": r.iterations, "message": r.message,
        })
    return typed(pd.DataFrame(rows, columns=list(COLUMNS)))


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The documented dtypes: integers (nullable), floats, a categorical status, text."""
    frame = frame.copy()
    for c in INTS:
        if c in frame:
            frame[c] = pd.array([None if pd.isna(v) else int(v) for v in frame[c]], dtype="Int64")
    for c in FLOATS:
        if c in frame:
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    if "status" in frame:
        frame["status"] = pd.Categorical(frame["status"], categories=list(STATUSES))
    for c in ("scenario", "method", "message", "ended"):
        if c in frame:
            frame[c] = frame[c].fillna("").astype(str)
    if "gap_counted" in frame:
        frame["gap_counted"] = frame["gap_counted"].map(lambda v: v is True or v == 1 or str(v).strip().lower() == "true")
    return frame


def results_frame(results: Iterable[SolveResult], scenarios: Iterable[Scenario] | None = None) -> pd.DataFrame:
    """The tidy frame of :class:`~dipsd.solvers.results.SolveResult` s (``scenarios`` gives user counts and names)."""
    by_name = {s.name: s for s in (scenarios or ())}
    records = [res.record(by_name.get(res.scenario)) for res in results]
    users = {r.scenario: len(r.plan.lengths) for r in results if r.plan is not None}
    users.update({name: s.num_users for name, s in by_name.items()})
    return records_frame(records, users)


def read_report(path: str) -> dict[str, pd.DataFrame]:
    """A study report read back: ``Results`` (tidy, typed as :func:`records_frame`), ``Headline``,
    ``Summary``, ``Instances``, ``Plans``, ``Chart data`` (a row per number of users) and ``Run``
    (key -> value)."""
    from ..errors import InputError

    REPORT_SHEETS = {"Summary", "Results", "Run"}
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot be read as an Excel workbook ({type(exc).__name__}: {str(exc)[:200]})") from None
    run = sheets.get("Run")
    ok = REPORT_SHEETS <= set(sheets) and run is not None and run.shape[1] >= 2 and "command line" in set(run.iloc[:, 0].astype(str))
    if ok:
        first = sheets["Summary"].iloc[:, 0].astype(str).tolist()
        ok = "method" in first and "users" in first
    if not ok:
        raise InputError(f"{path} is not a dipsd study report (it lacks the sheets {', '.join(sorted(REPORT_SHEETS))} "
                         f"as dipsd writes them); read scenario workbooks with dipsd.load_workbook")
    out: dict[str, pd.DataFrame] = {}
    for name, raw in sheets.items():
        if name == "Summary":
            out["Headline"], out["Summary"] = _split_summary(raw)
            first = raw.iloc[:, 0].tolist()
            said = first[:first.index("method")]
            out["Answer"] = pd.DataFrame({"statement": [str(x) for x in said if isinstance(x, str) and x]})
        elif name != "Charts":
            out[name] = _with_header(raw)
    if "Results" in out:
        _check_numbers(out["Results"], path, "Results")
        out["Results"] = typed(out["Results"])
    return out


def _check_numbers(frame: pd.DataFrame, path: str, sheet: str) -> None:
    """Every cell of a numeric column is a number (a whole one where the column counts): a report
    edited by hand is refused naming the cell, not read as something else."""
    from ..errors import InputError

    for column in (c for c in (*INTS, *FLOATS) if c in frame):
        for i, value in enumerate(frame[column]):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not number or (column in INTS and value != int(value)):
                shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
                raise InputError(f"{path}, sheet {sheet!r}, row {i + 2}, column {column!r}: bad value {shown}: "
                                 f"{'a whole number' if column in INTS else 'a number'} (was the report edited by hand?)")


def _with_header(raw: pd.DataFrame) -> pd.DataFrame:
    frame = raw.iloc[1:].reset_index(drop=True)
    frame.columns = [str(c) for c in raw.iloc[0]]
    return frame.infer_objects()


def _split_summary(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summary holds the sentences, a blank row, the headline block, a blank row, then the table per
    number of users."""
    first = raw.iloc[:, 0].astype(str).tolist()
    detail = first.index("users")
    top = first.index("method")
    head = raw.iloc[top:detail].dropna(how="all")
    return _with_header(head.dropna(axis=1, how="all")), _with_header(raw.iloc[detail:].dropna(axis=1, how="all"))
