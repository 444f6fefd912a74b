"""``dipsd paper`` on a reduced sweep: report, figure, and a table that matches the report."""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pytest

from dipsd.formulation.evaluate import ad_batch_throughput_tps, ad_throughput_tps
from dipsd.reports.paper import paper_scenarios, ratio_table, scenario_name
from dipsd.solvers.results import Record

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_paper_reduced_sweep(tmp_path, run_cli):
    out = tmp_path / "paper.xlsx"
    code, stdout, err = run_cli("paper", "--out", str(out), "--max-users", "4", "--alphas", "0.78", "--workers", "1", "--quiet")
    assert code == 0, err
    assert out.exists() and (tmp_path / "paper.png").stat().st_size > 10_000
    assert (tmp_path / "paper.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wb = openpyxl.load_workbook(out)
    head, *rows = list(wb["Instances"].iter_rows(values_only=True))
    col = {h: i for i, h in enumerate(head)}
    assert [r[0] for r in rows] == [scenario_name(0.78, m) for m in (2, 3, 4)]
    m4 = rows[-1]
    line = next(l for l in stdout.splitlines() if l.startswith("| 0.78 | 4 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert float(cells[2]) == pytest.approx(m4[col["dipsd tok/s"]], abs=5e-4)
    assert float(cells[3]) == pytest.approx(m4[col["optimum tok/s (proven)"]], abs=5e-4)
    # the ratios computed here from the run's DiP-SD throughput and the baselines' closed forms
    (s4,) = [s for s in paper_scenarios(4, [0.78]) if s.num_users == 4]
    assert float(cells[4].rstrip("x")) == pytest.approx(m4[col["dipsd tok/s"]] / ad_throughput_tps(s4), abs=5e-3)
    assert float(cells[5].rstrip("x")) == pytest.approx(m4[col["dipsd tok/s"]] / ad_batch_throughput_tps(s4), abs=5e-3)
    assert float(cells[6].rstrip("x")) == pytest.approx(m4[col["dipsd tok/s"]] / m4[col["sd-nobatch tok/s"]], abs=5e-3)
    # the paper's own row: its published ratios as docs/model.md quotes them (not the code's constant)
    quoted = re.search(r"up to ([0-9.]+)x the throughput of AD, ([0-9.]+)x AD with greedy batching, and ([0-9.]+)x SD",
                       " ".join((DOCS / "model.md").read_text().split()))
    assert quoted, "docs/model.md no longer quotes the paper's headline"
    assert f"| paper | 14 | | | {quoted[1]}x | {quoted[2]}x | {quoted[3]}x |" in stdout
    assert "not comparable with M = 4" in stdout  # the paper's M = 14 row is set apart from M = 4


def test_ratio_table_values():
    records = [Record.from_json(d) for d in (
        {"scenario": scenario_name(0.5, 3), "method": "dipsd", "status": "feasible", "throughput_tps": 30.0},
        {"scenario": scenario_name(0.5, 3), "method": "exact", "status": "optimal", "throughput_tps": 32.0},
        {"scenario": scenario_name(0.5, 3), "method": "ad", "status": "feasible", "throughput_tps": 10.0},
    )]
    text, rows = ratio_table(records, [0.5], 3)
    assert rows[0]["dipsd/ad"] == 3.0 and rows[0]["exact/ad"] == 3.2 and rows[0]["dipsd/ad-batch"] is None
    assert re.search(r"\| 0\.5 \| 3 \| 30\.000 \| 32\.000 \| 3\.00x \| - \|", text)


def test_paper_scenarios_are_the_paper_defaults():
    scenarios = paper_scenarios(5, [0.6, 0.9])
    assert len(scenarios) == 8 and {u.alpha for u in scenarios[0].users} == {0.6}
    assert scenarios[-1].num_users == 5 and scenarios[-1].max_draft_length == 20


@pytest.mark.parametrize("argv", [["--alphas", "0.5,1.5"], ["--alphas", "x"], ["--max-users", "1"]])
def test_paper_bad_arguments(run_cli, tmp_path, argv):
    code, _, err = run_cli("paper", "--out", str(tmp_path / "p.xlsx"), *argv)
    assert code == 2 and "Traceback" not in err
