"""The answer at a glance: the gap statements (proven and certified apart) against hand-computed
numbers, the console and Summary sentences, the gap_kind column and the gap figure."""

from __future__ import annotations

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
