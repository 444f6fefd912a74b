"""The study report as an Excel workbook (sheets Summary, Results, Instances, Plans, Charts, Chart data, Run).

Numbers are written as numbers at full precision (``repr`` of the float rather than
openpyxl's 16 significant digits) with display formats; headers are frozen, columns
sized, gap cells coloured by conditional formatting; every text that came from a workbook
(scenario and user names, messages) is written as text, never as a formula.  The file is
written to a temporary name and renamed into place, so a crash never leaves a
half-written report and an existing report is replaced only by a complete one.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.table import Table, TableStyleInfo

from ..data.workbook import LoadedWorkbook
from ..data.writer import save_atomically, set_text
from ..formulation.evaluate import evaluate
from ..formulation.plan import Plan
from ..solvers.results import Record
from . import stats
from .frames import records_frame
from .stats import CERTIFIED_LEVELS, gap, gap_statements, headline, references, sentence, summarize

FMT = {"tps": "0.000", "gap": "0.0000", "s": "0.000", "ms": "0.000", "int": "0", "tok": "0.0000", "bytes": "0", "gb": "0.000000",
       "ratio": "0.000"}
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def _table(ws, headers: Sequence[tuple[str, str | None]], rows: Sequence[Sequence], *, start_row: int = 1,
           text: Sequence[int] = (), freeze: bool = True, name: str | None = None) -> None:
    """Write a header row and data rows; ``headers`` are (title, number-format key or None).

    With ``name`` the block becomes an Excel table of that name (filter buttons on every column;
    several per sheet are allowed, unlike a sheet's single autofilter)."""
    for j, (title, _) in enumerate(headers, start=1):
        cell = ws.cell(row=start_row, column=j)
        set_text(cell, title)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    widths = [max(10, min(40, len(t) + 2)) for t, _ in headers]
    for i, row in enumerate(rows, start=start_row + 1):
        for j, value in enumerate(row, start=1):
            if value is None:
                continue
            cell = ws.cell(row=i, column=j)
            if (j - 1) in text or isinstance(value, str):
                set_text(cell, str(value))
                widths[j - 1] = max(widths[j - 1], min(40, len(str(value)) + 2))
            else:
                cell.value = value
                fmt = headers[j - 1][1]
                if fmt:
                    cell.number_format = FMT[fmt]
    for j, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = width
    if freeze:
        ws.freeze_panes = ws.cell(row=start_row + 1, column=2)
    if name and rows:
        ref = f"A{start_row}:{get_column_letter(len(headers))}{start_row + len(rows)}"
        table = Table(displayName=name, ref=ref)
        table.tableStyleInfo = TableStyleInfo(name="TableStyleLight1", showRowStripes=True)
        ws.add_table(table)


def _colour_gaps(ws, columns: list[int], first_row: int, last_row: int) -> None:
    """One fixed colour scale for every gap cell of every method: green at 0 %, yellow at 1 %, red
    from 10 % up, so that a colour means the same gap wherever it appears."""
    if last_row < first_row:
        return
    for j in columns:
        letter = get_column_letter(j)
        _scale(ws, f"{letter}{first_row}:{letter}{last_row}")


def _scale(ws, ranges: str) -> None:
    ws.conditional_formatting.add(
        ranges,
        ColorScaleRule(start_type="num", start_value=0, start_color="63BE7B",
                       mid_type="num", mid_value=1, mid_color="FFEB84",
                       end_type="num", end_value=10, end_color="F8696B"),
    )


def write_report(path: str, book: LoadedWorkbook, records: list[Record], methods: list[str], run_info: dict) -> None:
    """Write the report of a study to ``path`` (atomically)."""
    num_users = {s.name: s.num_users for s in book.scenarios}
    wb = Workbook()
    statements = gap_statements(records, num_users, methods)
    _summary(wb.active, records, num_users, methods, statements)
    _gaps(wb.create_sheet("Gaps"), statements)
    _results(wb.create_sheet("Results"), records, num_users)
    _instances(wb.create_sheet("Instances"), book, records, methods)
    _plans(wb.create_sheet("Plans"), book, records)
    _charts(wb.create_sheet("Charts"), wb.create_sheet("Chart data"), records, num_users, methods)
    _run(wb.create_sheet("Run"), run_info)
    for ws in wb.worksheets:  # print setup: landscape, one page wide, the header row on every page
        ws.page_setup.orientation = "landscape"
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
        if ws.title not in ("Summary", "Charts"):
            ws.print_title_rows = "1:1"
    save_atomically(wb, path)


def _summary(ws, records, num_users, methods, statements) -> None:
    """The answer first (a sentence per method, :func:`~dipsd.reports.stats.sentence`), a blank row,
    the headline table, a blank row, the table per number of users."""
    ws.title = "Summary"
    said = [sentence(st) for st in statements if st.group == "all"]
    for i, text in enumerate(said, start=1):
        set_text(ws.cell(row=i, column=1), text)  # text from method names is never a formula
    offset = len(said) + 1 if said else 0
    top = headline(records, methods)
    head = [("method", None), ("scenarios", "int"), ("with a result", "int"), ("optimum proven", "int"),
            ("hit optimum", "int"), ("mean gap % (proven)", "gap"), ("worst gap %", "gap"), ("worst gap is", None),
            ("worst scenario", None), ("stopped at a limit (not in the gaps)", "int")]
    _table(ws, head, [[h.method, h.scenarios, h.results, h.proven, h.hits, h.gap_mean, h.worst_gap, h.worst_kind,
                       h.worst_scenario, h.stopped] for h in top], text=[0, 8], freeze=False, name="Headline",
           start_row=offset + 1)
    _colour_gaps(ws, [6, 7], offset + 2, offset + len(top) + 1)
    start = offset + len(top) + 3
    rows = summarize(records, num_users, methods)
    levels = [f"certified gap <= {level:g} %" for level in CERTIFIED_LEVELS]
    headers = [("users", "int"), ("rows", None), ("method", None), ("scenarios", "int"), ("with a result", "int"),
               ("optimum proven (any method)", "int"), ("optimum open", "int"),
               ("mean gap % (proven)", "gap"), ("median gap %", "gap"), ("p95 gap %", "gap"), ("max gap %", "gap"),
               ("hit optimum (gap <= 1e-6)", "int"), ("gaps proven", "int")] + [(lv, "int") for lv in levels] + [
               ("max certified gap %", "gap"), ("mean certified gap % (optimum open)", "gap"),
               ("mean runtime s", "s"), ("mean iterations", "tok"), ("stopped at a limit (not in the gaps)", "int")]
    data = [[None if r.group == "all" else int(r.group), "all sizes" if r.group == "all" else "one size", r.method, r.scenarios,
             r.with_result, r.proven, r.open, r.gap_mean, r.gap_median, r.gap_p95,
             r.gap_max, r.hits, r.gaps_proven, *r.certified, r.certified_max, r.open_certified_mean,
             r.runtime_mean, r.iterations_mean, r.stopped] for r in rows]
    _table(ws, headers, data, start_row=start, text=[1, 2], freeze=False, name="Summary")
    gap_cols = [j for j, (title, _) in enumerate(headers, start=1) if "gap %" in title]
    _colour_gaps(ws, gap_cols, start + 1, start + len(data))


def _gaps(ws, statements) -> None:
    """How far each method is from optimal, per number of users and overall: proven gaps (to a
    proven optimum) and certified gaps (where the optimum is open: at most) in separate columns."""
    headers = [("method", None), ("users", "int"), ("rows", None), ("proven: scenarios", "int"), ("optimal", "int"),
               ("proven mean gap %", "gap"), ("proven median gap %", "gap"), ("proven max gap %", "gap"),
               ("certified (optimum open): scenarios", "int"), ("certified mean gap % (at most)", "gap"),
               ("certified max gap % (at most)", "gap"), ("stopped at a limit: scenarios (not counted)", "int"),
               ("stopped: worst gap %", "gap"), ("stopped: worst gap is", None)]
    data = [[st.method, None if st.group == "all" else int(st.group), "all sizes" if st.group == "all" else "one size",
             st.proven_n, st.hits, st.proven_mean, st.proven_median, st.proven_max, st.open_n, st.open_mean, st.open_max,
             st.stopped_n, st.stopped_max, st.stopped_kind] for st in statements]
    _table(ws, headers, data, text=[0, 2], name="Gaps")
    _colour_gaps(ws, [6, 7, 8, 10, 11], 2, len(data) + 1)


def _results(ws, records, num_users) -> None:
    """The tidy table (one row per scenario and method) that :func:`dipsd.read_report` returns as ``Results``."""
    frame = records_frame(records, num_users)
    fmt = {"users": "int", "num_batches": "int", "iterations": "int", "runtime_s": "s", "span_ms": "ms",
           "expected_tokens": "tok", "gap_pct": "gap", "certified_gap_pct": "gap"}
    headers = [(c, fmt.get(c, "tps" if c.endswith("_tps") else None)) for c in frame.columns]
    rows = [[None if (isinstance(v, float) and v != v) or v is pd.NA else (v.item() if hasattr(v, "item") else v)
             for v in row] for row in frame.astype(object).itertuples(index=False)]
    _table(ws, headers, rows, text=[0, 2, 3, len(headers) - 1], name="Results")


def _instances(ws, book, records, methods) -> None:
    """One row per scenario: what is known about its optimum, then each method's value, gaps,
    bound, runtime, status and message.  A column no scenario has a value in (a gap to the
    optimum where none is proven, a bound from a method that gives none) is left out."""
    by_key = {(r.scenario, r.method): r for r in records}
    refs = references(records)
    headers = [("scenario", None), ("users", "int"), ("optimum tok/s (proven)", "tps"), ("optimum proven by", None),
               ("best plan tok/s", "tps"), ("best plan by", None), ("best certified bound tok/s", "tps"), ("bound by", None)]
    for m in methods:
        headers += [(f"{m} tok/s", "tps"), (f"{m} gap to optimum %", "gap"), (f"{m} gap to best plan % (optimum open)", "gap"),
                    (f"{m} certified gap %", "gap"), (f"{m} upper bound tok/s", "tps"), (f"{m} runtime s", "s"),
                    (f"{m} status", None), (f"{m} message", None)]
    headers += [("DiP-SD / AD", "ratio"), ("DiP-SD / AD with greedy batching", "ratio")]
    rows = []
    for s in book.scenarios:
        if not any((s.name, m) in by_key for m in methods):
            continue
        ref = refs.get(s.name, stats.Reference())
        row = [s.name, s.num_users, ref.optimum, ref.optimum_by, ref.best, ref.best_by, ref.bound, ref.bound_by]
        for m in methods:
            r = by_key.get((s.name, m))
            g = gap(r, ref)
            row += [None if r is None else r.throughput_tps, g.proven, g.to_best, g.certified,
                    None if r is None else r.upper_bound_tps, None if r is None else r.runtime_s,
                    "not run" if r is None else r.status.value, None if r is None or not r.message else r.message]
        dip, ad, adb = (by_key.get((s.name, m)) for m in ("dipsd", "ad", "ad-batch"))
        row += [_ratio(dip, ad), _ratio(dip, adb)]
        rows.append(row)
    keep = [j for j in range(len(headers)) if j < 2 or any(row[j] is not None for row in rows)]
    headers = [headers[j] for j in keep]
    rows = [[row[j] for j in keep] for row in rows]
    _table(ws, headers, rows, text=[0], name="Instances")
    _colour_gaps(ws, [j for j, (title, _) in enumerate(headers, start=1) if "gap" in title and title.endswith(("%", ")"))],
                 2, len(rows) + 1)


def _ratio(a, b):
    if a is not None and b is not None and a.throughput_tps and b.throughput_tps:
        return a.throughput_tps / b.throughput_tps
    return None


def _plans(ws, book, records) -> None:
    headers = [("scenario", None), ("method", None), ("user", None), ("batch (verification order)", "int"),
               ("draft length tokens", "int"), ("expected tokens per round", "tok"), ("ready ms (draft + comm)", "ms"),
               ("batch size b_n users", "int"), ("batch L_n tokens", "int"), ("batch I_n tokens", "int"), ("batch t_v ms", "ms"),
               ("batch t_d ms", "ms"), ("batch memory GB (1e9 bytes)", "gb"), ("plan tok/s (re-evaluated)", "tps")]
    rows = []
    scenarios = {s.name: s for s in book.scenarios}
    for r in records:
        if not r.has_plan or r.scenario not in scenarios:
            continue
        s = scenarios[r.scenario]
        ev = evaluate(s, Plan.from_names(s, r.batches, dict(r.draft_lengths)))
        for n, b in enumerate(ev.batches, start=1):
            for m in b.users:
                rows.append([s.name, r.method, s.users[m].name, n, ev.plan.lengths[m], ev.user_tokens[m],
                             ev.user_ready_ms[m], b.size, b.max_length, b.max_prefix, b.verify_ms, b.ready_ms,
                             b.memory_bytes / 1e9, ev.throughput_tps])
    _table(ws, headers, rows, text=[0, 1, 2], name="Plans")
    ws.freeze_panes = "D2"


def _charts(ws, data_ws, records, num_users, methods) -> None:
    """Three charts by number of users; their numbers are one table on the ``Chart data`` sheet (a
    row per number of users, a column per method and measure), which pandas reads as it stands.

    1. How far from optimal, the heuristics only (:func:`~dipsd.reports.stats.heuristics`):
       bars up to the worst certified gap where the optimum is open (the true gap is at most
       that), lines for the mean gap where it is proven.
    2. Mean runtime, every method, on a log axis.
    3. Throughput as a share of the best plan any method found (mean), every method: the
       baselines' ratios, on their own chart so that they do not flatten the heuristics' gaps.

    Runs stopped at their limit (:func:`~dipsd.reports.stats.stopped`) are in no gap or share: the
    table counts them per heuristic and number of users ("stopped at a limit, not drawn").
    """
    spans, last = _chart_data(data_ws, records, num_users, methods)
    _charts_drawn_from(ws, data_ws, spans, last)


def _chart_data(data_ws, records, num_users, methods) -> tuple[dict[str, tuple[int, int]], int]:
    """The ``Chart data`` table: a row per number of users, a column per method and measure; returns
    each block's first and last column and the table's last row."""
    by_m: dict[int, dict[str, list[Record]]] = {}
    for r in records:
        if r.scenario in num_users:
            by_m.setdefault(num_users[r.scenario], {}).setdefault(r.method, []).append(r)
    refs = references(records)
    sizes = sorted(by_m)
    judged = stats.heuristics(records, methods)

    def certified(rs):
        values = [g.certified for r in rs if not stats.stopped(r)
                  and (g := gap(r, refs.get(r.scenario))).proven is None and g.certified is not None]
        return max(values) if values else None

    def proven(rs):
        return _mean([gap(r, refs.get(r.scenario)).proven for r in rs if not stats.stopped(r)])

    def share(rs):
        return _mean([100.0 * r.throughput_tps / ref.best for r in rs
                      if r.throughput_tps and not stats.stopped(r) and (ref := refs.get(r.scenario)) is not None and ref.best])

    blocks = [("bars", judged, "worst certified gap % (optimum open)", "gap", certified),
              ("lines", judged, "mean gap % (proven)", "gap", proven),
              ("runtime", methods, "mean runtime s", "s", lambda rs: _mean([r.runtime_s for r in rs])),
              ("share", methods, "mean % of best plan", "gap", share),
              ("stopped", judged, "stopped at a limit, not drawn", "int", lambda rs: sum(stats.stopped(r) for r in rs))]
    headers, columns, spans = [("users", "int")], [sizes], {}
    for key, shown, short, fmt, fn in blocks:
        spans[key] = (len(headers) + 1, len(headers) + len(shown))
        for m in shown:
            headers.append((f"{m} {short}", fmt))
            columns.append([fn(by_m[size].get(m, [])) for size in sizes])
    rows = [list(row) for row in zip(*columns)]
    _table(data_ws, headers, rows, name="ChartData")
    return spans, 1 + len(rows)


def _charts_drawn_from(ws, data_ws, spans: dict[str, tuple[int, int]], last: int) -> None:
    """The three charts of :func:`_charts`, each reading its columns of the ``Chart data`` table."""

    def series_of(chart, key):
        first, final = spans[key]
        if final >= first:
            chart.add_data(Reference(data_ws, min_col=first, max_col=final, min_row=1, max_row=last), titles_from_data=True)
            chart.set_categories(Reference(data_ws, min_col=1, min_row=2, max_row=last))

    def frame(chart, title, ytitle):
        chart.title = title
        chart.x_axis.title = "users"
        chart.y_axis.title = ytitle
        chart.height, chart.width = 8, 16
        chart.y_axis.number_format = "General"
        chart.y_axis.delete = False
        chart.x_axis.delete = False

    bars, lines = BarChart(), LineChart()
    series_of(bars, "bars")
    series_of(lines, "lines")
    for series in lines.series:
        series.smooth = False  # straight segments: a smoothed line would invent values between sizes
    frame(bars, "How far from optimal (heuristics): bars = at most (certified), lines = mean (proven)", "gap to optimal, %")
    bars.y_axis.scaling.min = 0
    bars += lines  # one plot, one axis: certified bars and proven lines in the same percent
    ws.add_chart(bars, "A1")
    runtime = BarChart()
    series_of(runtime, "runtime")
    frame(runtime, "mean runtime s by number of users", "mean runtime s (log scale)")
    runtime.y_axis.scaling.logBase = 10
    runtime.y_axis.number_format = "0.0E+0"
    ws.add_chart(runtime, "A19")
    ratio = LineChart()
    series_of(ratio, "share")
    for series in ratio.series:
        series.smooth = False
    frame(ratio, "throughput as % of the best plan found (mean), every method", "% of the best plan")
    ws.add_chart(ratio, "A37")


def _mean(values):
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def _run(ws, info: dict) -> None:
    rows = [[k, v if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)] for k, v in info.items()]
    _table(ws, [("key", None), ("value", None)], rows, text=[0], name="Run")
    ws.column_dimensions["B"].width = 90
