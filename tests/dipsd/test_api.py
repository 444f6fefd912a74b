"""The public Python API: the README's example as written, run_study's frame against the report."""

from __future__ import annotations

import math
import os
import re

import pandas as pd
import pytest

import dipsd
from dipsd import paper_scenario
from dipsd.solvers.results import SolveResult

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def readme_python_blocks() -> list[str]:
    with open(README, encoding="utf-8") as fh:
        text = fh.read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_readme_python_example_runs_as_written(capsys):
    block = readme_python_blocks()[0]
    assert "run_study" in block and "example_path" in block
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "gap_pct" in out and "certify" in out


@pytest.mark.slow
def test_readme_three_line_recipe_reproduces_the_summary(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = dipsd.run_study(dipsd.example_path(), methods=["dipsd", "certify", "ad"], time_limit=20, out="dipsd-report.xlsx",
                            progress=False)
    block = readme_python_blocks()[1]
    scope: dict = {}
    lines = block.strip().splitlines()
    exec(compile("\n".join(lines[:-1] + ["table = " + lines[-1]]), "README.md", "exec"), scope)
    table = scope["table"]
    summary = dipsd.read_report("dipsd-report.xlsx")["Summary"]
    overall = summary[summary["rows"] == "all sizes"].set_index("method")
    for method in ("dipsd", "certify", "ad"):
        assert table.loc[method, "mean"] == pytest.approx(overall.loc[method, "mean gap % (proven)"], abs=1e-9)
        assert table.loc[method, "max"] == pytest.approx(overall.loc[method, "max gap %"], abs=1e-9)
    # the frame run_study returned is the report's Results sheet
    results = dipsd.read_report("dipsd-report.xlsx")["Results"]
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), results.reset_index(drop=True), check_exact=False, rtol=1e-15)


def test_run_study_columns_and_dtypes_from_scenarios():
    scenarios = [paper_scenario(2, max_draft_length=4), paper_scenario(3, max_draft_length=4)]
    df = dipsd.run_study(scenarios, methods=["dipsd", "certify", "exact", "ad"], time_limit=20, workers=1, progress=False)
    assert list(df.columns) == ["scenario", "users", "method", "status", "throughput_tps", "upper_bound_tps", "optimum_tps",
                                "best_bound_tps", "gap_pct", "certified_gap_pct", "gap_kind", "gap_counted", "ended", "num_batches",
                                "span_ms", "expected_tokens", "runtime_s", "iterations", "message"]
    assert str(df["users"].dtype) == "Int64" and str(df["status"].dtype) == "category"
    assert df["throughput_tps"].dtype == "float64" and len(df) == 8
    exact = df[df["method"] == "exact"].set_index("scenario")
    assert (exact["status"] == "optimal").all()
    assert (exact["optimum_tps"] == exact["throughput_tps"]).all()
    ad = df[df["method"] == "ad"]
    assert ad["upper_bound_tps"].isna().all() and (ad["gap_pct"] > 0).all()


def test_results_frame_and_record_round_trip():
    s = paper_scenario(3, max_draft_length=4)
    results = [dipsd.solve(s, m) for m in ("dipsd", "certify", "ad")]
    frame = dipsd.results_frame(results, [s])
    assert list(frame["method"]) == ["dipsd", "certify", "ad"] and list(frame["users"]) == [3, 3, 3]
    for r in results:
        back = SolveResult.from_json(r.to_json(s), s)
        assert back.to_json(s) == r.to_json(s) and back.status is r.status
        if r.plan is not None:
            assert back.plan == r.plan and back.evaluation.throughput_tps == r.throughput_tps
    assert not math.isnan(frame.loc[frame["method"] == "certify", "upper_bound_tps"].iloc[0])


def test_solve_rejects_an_unknown_method_with_a_suggestion():
    with pytest.raises(dipsd.InputError, match="did you mean 'certify'"):
        dipsd.solve(paper_scenario(2), "certfy")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_a_bad_work_limit_is_refused_like_on_the_command_line(bad):
    with pytest.raises(dipsd.InputError, match="work_limit"):
        dipsd.solve(paper_scenario(2), "certify", work_limit=bad)
    with pytest.raises(dipsd.InputError, match="work_limit"):
        dipsd.run_study([paper_scenario(2)], methods=["ad"], work_limit=bad)


def test_solve_with_a_work_limit():
    r = dipsd.solve(paper_scenario(3), "certify", work_limit=1)
    assert r.status.value in ("work_limit", "optimal")


def test_run_study_refuses_bad_input():
    with pytest.raises(dipsd.InputError):
        dipsd.run_study([paper_scenario(2)], methods=["magic"])
    with pytest.raises(dipsd.InputError):
        dipsd.run_study([], methods=["ad"])
