"""The answer at a glance: the gap statements (proven and certified apart) against hand-computed
numbers, the console and Summary sentences, the gap_kind column and the gap figure."""

from __future__ import annotations

import pandas as pd
import pytest

from dipsd.reports.frames import read_report, records_frame
from dipsd.reports.stats import gap_statements, sentence, statement_text
from dipsd.solvers.results import Record

PLAN = {"batches": [["x"]], "draft_lengths": {"x": 1}}


def _records():
    """Scenarios a, b (4 users; optima proven: 100 and 200), c (8 users; open, best bound 110) and d
    (8 users; open, best bound 50); heuristic h at 95, 200, 99 and 45."""
    rows = [
        ("a", "exact", "optimal", 100.0, 100.0), ("b", "exact", "optimal", 200.0, 200.0),
        ("c", "exact", "time_limit", 90.0, 120.0), ("c", "certify", "feasible", 98.0, 110.0),
        ("d", "certify", "feasible", 44.0, 50.0),
        ("a", "h", "feasible", 95.0, None), ("b", "h", "feasible", 200.0, None),
        ("c", "h", "feasible", 99.0, None), ("d", "h", "feasible", 45.0, None),
    ]
    return [Record.from_json({"scenario": s, "method": m, "status": st, "throughput_tps": t, "upper_bound_tps": ub, **PLAN})
            for s, m, st, t, ub in rows]


USERS = {"a": 4, "b": 4, "c": 8, "d": 8}


def test_statements_by_hand():
    st = {(x.method, x.group): x for x in gap_statements(_records(), USERS, ["h", "exact"])}
    h = st[("h", "all")]
    # proven: a 5 %, b 0 %; certified where open: c 100 (110 - 99) / 110 = 10 %, d 100 (50 - 45) / 50 = 10 %
    assert (h.proven_n, h.hits, h.proven_mean, h.proven_median, h.proven_max) == (2, 1, 2.5, 2.5, 5.0)
    assert (h.open_n, h.open_users, h.proven_users) == (2, (8,), (4,))
    assert h.open_mean == pytest.approx(10.0) and h.open_max == pytest.approx(10.0)
    assert st[("h", "4")].open_n == 0 and st[("h", "8")].proven_n == 0
    assert sentence(h) == ("h: optimal (within 1e-6) on 1 of 2; mean gap 2.50 %, worst 5.00 % (proven, 2 scenarios, M 4); "
                           "elsewhere at most 10.00 % from optimal (certified: mean 10.00 %, 2 scenarios, M 8)")
    ex = st[("exact", "all")]
    assert ex.open_n == 1 and ex.open_max == pytest.approx(100 * 20 / 110)  # exact's 90 on c against certify's 110


def test_statement_text_labels_and_partial_studies():
    text = statement_text(gap_statements(_records(), USERS, ["h"]), done=3, total=4, interrupted=True)
    assert text.splitlines()[0].startswith("3 of 4 scenarios done (interrupted)")
    assert "proven: n" in text and "certified <=: n" in text and "the true gap is at most that" in text


def test_gap_kind_column():
    frame = records_frame(_records(), USERS)
    kinds = dict(zip(zip(frame.scenario, frame.method), frame.gap_kind))
    assert kinds[("a", "h")] == "proven" and kinds[("c", "h")] == "certified" and kinds[("c", "exact")] == "certified"


def test_a_study_states_the_answer_everywhere(tmp_path, run_cli):
    from dipsd.data.generate import generate
    from dipsd.data.writer import save_scenarios

    book = tmp_path / "g.xlsx"
    save_scenarios(book, generate([3, 4], 1, seed=2, max_draft_length=3))
    out = str(tmp_path / "r.xlsx")
    code, stdout, err = run_cli("study", str(book), "--out", out, "--methods", "dipsd,exact,ad-batch", "--workers", "1",
                                "--quiet")
    assert code == 0, err
    assert stdout.startswith("dipsd: ") and "(proven, 2 scenarios, M 3-4)" in stdout.splitlines()[0]
    assert (tmp_path / "r-gaps.png").stat().st_size > 10_000
    frames = read_report(out)
    said = frames["Answer"].statement.tolist()
    assert said == [line for line in stdout.splitlines()[:3]]
    gaps = frames["Gaps"]
    assert set(gaps.method) == {"dipsd", "exact", "ad-batch"} and {3, 4} <= set(gaps.users.dropna().astype(int))
    assert set(frames["Results"].gap_kind) == {"proven"}


def test_native_gap_chart_has_certified_bars_and_proven_lines():
    """The workbook's gap chart (reports.excel._charts) by hand: heuristic h only; at M = 4 a proven
    mean gap of 2.5 % and no bar; at M = 8 (optimum open) a bar up to the worst certified gap, 10 %."""
    from openpyxl import Workbook

    from dipsd.reports.excel import _charts

    wb = Workbook()
    charts, data = wb.active, wb.create_sheet("Chart data")
    _charts(charts, data, _records(), USERS, ["h", "exact", "certify"])
    rows = list(data.iter_rows(values_only=True))
    table = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert table[4]["h worst certified gap % (optimum open)"] is None
    assert table[4]["h mean gap % (proven)"] == pytest.approx(2.5)
    assert table[8]["h worst certified gap % (optimum open)"] == pytest.approx(10.0)
    assert table[8]["h mean gap % (proven)"] is None
    assert "exact mean gap % (proven)" not in rows[0]  # methods that prove bounds are the reference
    gap_chart = charts._charts[0]
    assert type(gap_chart).__name__ == "BarChart" and len(gap_chart.series) == 1
    assert [type(c).__name__ for c in gap_chart._charts] == ["BarChart", "LineChart"]


# ----------------------------------------------------------------------------- runs stopped at a limit
def _with_stopped():
    """:func:`_records` plus scenario e (4 users, optimum 100 proven) where h stopped at its time limit
    at 80 (a 20 % gap that belongs to the time budget) and f (8 users, open, bound 60) where h stopped
    at its work limit at 57 (at most 5 %)."""
    extra = [("e", "exact", "optimal", 100.0, 100.0), ("e", "h", "time_limit", 80.0, None),
             ("f", "certify", "feasible", 55.0, 60.0), ("f", "h", "work_limit", 57.0, None)]
    return _records() + [Record.from_json({"scenario": s, "method": m, "status": st, "throughput_tps": t,
                                           "upper_bound_tps": ub, **PLAN}) for s, m, st, t, ub in extra]


STOP_USERS = {**USERS, "e": 4, "f": 8}


def test_a_stopped_heuristic_is_counted_apart_by_hand():
    from dipsd.reports.stats import headline, headline_text, stopped, summarize

    records = _with_stopped()
    assert [r.scenario for r in records if stopped(r)] == ["e", "f"]  # exact's time_limit on c has a bound: a proof
    st = {(x.method, x.group): x for x in gap_statements(records, STOP_USERS, ["h"])}
    h = st[("h", "all")]
    # the finished runs exactly as without e and f
    assert (h.proven_n, h.hits, h.proven_mean, h.proven_max, h.open_n) == (2, 1, 2.5, 5.0, 2)
    assert h.stopped_by == (("time_limit", 1), ("work_limit", 1)) and h.stopped_n == 2
    assert h.stopped_max == pytest.approx(20.0) and h.stopped_kind == "proven"
    assert (st[("h", "4")].stopped_n, st[("h", "8")].stopped_n) == (1, 1)
    assert st[("h", "8")].stopped_max == pytest.approx(5.0) and st[("h", "8")].stopped_kind == "certified"
    assert sentence(h).endswith("; stopped at its time or work limit on 2 scenarios (not counted in the gaps above, "
                                "gap there up to 20.00 % (proven))")
    text = statement_text(list(st.values()))
    lines = text.splitlines()
    assert lines[2].split()[-1] == "stopped" and lines[-2].split()[:2] == ["h", "all"] and lines[-2].split()[-1] == "2"
    top = headline(records, ["h"])[0]
    assert (top.results, top.stopped, top.proven, top.hits, top.gap_mean, top.worst_gap) == (6, 2, 2, 1, 2.5, 10.0)
    assert " 2 " in headline_text([top]).splitlines()[1]
    every = {(r.group, r.method): r for r in summarize(records, STOP_USERS, ["h"])}
    assert every[("all", "h")].stopped == 2 and every[("all", "h")].gap_max == 5.0 and every[("all", "h")].with_result == 6


def test_the_frame_says_why_each_run_ended_and_which_gaps_count():
    frame = records_frame(_with_stopped(), STOP_USERS).set_index(["scenario", "method"])
    assert frame.loc[("e", "h"), "gap_pct"] == pytest.approx(20.0)  # shown ...
    assert not frame.loc[("e", "h"), "gap_counted"] and not frame.loc[("f", "h"), "gap_counted"]  # ... not counted
    assert frame.loc[("a", "h"), "gap_counted"] and frame.loc[("c", "exact"), "gap_counted"]
    assert frame.loc[("e", "h"), "ended"].startswith("stopped at its time limit")
    assert frame.loc[("f", "h"), "ended"].startswith("stopped at its work limit")
    assert frame.loc[("c", "exact"), "ended"] == "stopped at its time limit, its bound certified"
    assert frame.loc[("a", "exact"), "ended"] == "finished: optimal" and frame.loc[("a", "h"), "ended"] == "finished"


def test_a_study_cut_short_labels_dipsd_everywhere(tmp_path, run_cli):
    """Issue 36: a study at a limit far too short for DiP-SD at M = 30 (1 ms): its rows say they stopped,
    and the answer, headline, Summary, Gaps, chart data and frame keep them apart from finished runs."""
    from dipsd.data.generate import generate
    from dipsd.data.writer import save_scenarios

    book = tmp_path / "g.xlsx"
    save_scenarios(book, generate([30], 1, seed=2))
    out = str(tmp_path / "r.xlsx")
    code, stdout, err = run_cli("study", str(book), "--out", out, "--methods", "dipsd,certify,ad-batch", "--workers", "1",
                                "--time-limit", "0.001", "--quiet")
    assert code == 0, err
    frames = read_report(out)
    results = frames["Results"].set_index("method")
    assert results.loc["dipsd", "status"] == "time_limit" and not results.loc["dipsd", "gap_counted"]
    assert results.loc["dipsd", "ended"].startswith("stopped at its time limit")
    assert results.loc["ad-batch", "gap_counted"] and results.loc["ad-batch", "ended"] == "finished"
    said = next(line for line in stdout.splitlines() if line.startswith("dipsd: "))
    assert "stopped at its time limit on 1 scenario (not counted in the gaps" in said
    assert "mean gap" not in said and "at most" not in said.split("stopped")[0]  # no gap of the stopped run counted
    assert said in frames["Answer"].statement.tolist()
    head = frames["Headline"].set_index("method")
    assert head.loc["dipsd", "stopped at a limit (not in the gaps)"] == 1 and pd.isna(head.loc["dipsd", "worst gap %"])
    gaps = frames["Gaps"]
    row = gaps[(gaps.method == "dipsd") & (gaps.rows == "all sizes")].iloc[0]
    assert row["stopped at a limit: scenarios (not counted)"] == 1 and row["proven: scenarios"] + row[
        "certified (optimum open): scenarios"] == 0
    chart = frames["Chart data"].set_index("users")
    assert chart.loc[30, "dipsd stopped at a limit, not drawn"] == 1
    assert pd.isna(chart.loc[30, "dipsd worst certified gap % (optimum open)"]) and pd.isna(chart.loc[30, "dipsd mean gap % (proven)"])
    headline = next(line for line in stdout.splitlines() if line.startswith("dipsd ") and " of " in line)
    assert headline.split()[4] == "1"  # method, results "1 of 1", stopped


def test_the_gap_figure_leaves_stopped_runs_out_and_says_so(monkeypatch, tmp_path):
    from dipsd.reports import figures

    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.update(
        legends=[[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes]))
    figures.gap_figure(str(tmp_path / "f.png"), _with_stopped(), STOP_USERS, ["h", "exact", "certify"])
    left, right = drawn["legends"]
    assert left[0] == "h: mean gap (proven) (2 stopped at a limit, not drawn)"
    assert "h (2 stopped at a limit, not drawn)" in right
    # h's proven mean gap at M = 4 is over a and b only (2.5 %), e's 20 % is not in it
    mean_line = figures._gaps_by_size(_with_stopped(), "h", figures.references(_with_stopped()), STOP_USERS)[0]
    assert mean_line == {4: [5.0, 0.0]}


def _records_at(sizes):
    """Heuristic h (a 1 % gap), exact and ad on one scenario per number of users."""
    rows = []
    for m in sizes:
        rows += [(f"s{m}", "exact", "optimal", 100.0, 100.0), (f"s{m}", "h", "feasible", 99.0, None),
                 (f"s{m}", "ad", "feasible", 30.0, None)]
    return [Record.from_json({"scenario": s, "method": me, "status": st, "throughput_tps": t, "upper_bound_tps": ub, **PLAN})
            for s, me, st, t, ub in rows], {f"s{m}": m for m in sizes}


@pytest.mark.parametrize("sizes", [[10], [10, 20, 30], [3, 4, 5, 6, 50]])
def test_the_picture_ticks_at_the_sizes_run_one_colour_per_method(tmp_path, monkeypatch, sizes):
    """Issue 38, item 6: ticks at exactly the numbers of users run (1, 3 and 5 sizes), one colour per method
    in both panels, and the left panel names what it leaves out."""
    from dipsd.reports import figures

    seen = {}

    def keep(fig, path):
        seen["axes"] = [([t.get_text() for t in ax.get_xticklabels()], {line.get_label(): line.get_color()
                                                                        for line in ax.get_lines()}) for ax in fig.axes]
        seen["notes"] = [t.get_text() for ax in fig.axes for t in ax.texts]

    monkeypatch.setattr(figures, "_save", keep)
    records, users = _records_at(sizes)
    figures.gap_figure(str(tmp_path / "f.png"), records, users, ["h", "exact", "ad"])
    (left_ticks, left_lines), (right_ticks, right_lines) = seen["axes"]
    assert left_ticks == right_ticks == [str(m) for m in sizes]
    assert left_lines["h: mean gap (proven)"] == right_lines["h"]
    assert any(note.startswith("not in this panel: exact (") for note in seen["notes"])


def test_the_picture_gets_the_usual_file_permissions(tmp_path):
    import os
    import stat

    from dipsd.reports import figures

    records, users = _records_at([3])
    mask = os.umask(0o022)
    try:
        figures.gap_figure(str(tmp_path / "f.png"), records, users, ["h", "exact"])
    finally:
        os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "f.png").st_mode) == 0o644
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tables_stay_in_line_with_a_long_method_name():
    """Issue 38, item 7: a method called plan:one-per-user no longer pushes its row's columns right."""
    records = [Record.from_json({**{"scenario": s, "method": m, "status": st, "throughput_tps": t, "upper_bound_tps": ub},
                                 **PLAN}) for s, m, st, t, ub in
               [("a", "exact", "optimal", 100.0, 100.0), ("a", "plan:one-per-user", "feasible", 50.0, None),
                ("a", "h", "feasible", 90.0, None)]]
    text = statement_text(gap_statements(records, {"a": 4}, ["h", "plan:one-per-user"]))
    table = [line for line in text.splitlines() if line.startswith(("method ", "h ", "plan:one-per-user "))]

    def second_column_end(line):  # the M column, right-aligned: it ends at one place when the first column is wide enough
        first, second = line.split()[:2]
        return line.index(second, len(first)) + len(second)

    assert len(table) == 5 and len({second_column_end(line) for line in table}) == 1, text
