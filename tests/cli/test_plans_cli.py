"""The user's own plans from the command line (evaluate, check, study) and the workflow items of
issue 18 (template, --scenario, the Python API's names)."""

from __future__ import annotations

import json

import openpyxl
import pytest

import dipsd
from dipsd import InputError, evaluate, load_workbook


@pytest.fixture
def plan_book(tmp_path, run_cli):
    """The template (two plans) with max_batches 2: plan 'one-per-user' is then infeasible."""
    path = tmp_path / "t.xlsx"
    assert run_cli("template", str(path))[0] == 0
    wb = openpyxl.load_workbook(path)
    ws = wb["scenarios"]
    head = [c.value for c in ws[1]]
    ws.cell(row=2, column=head.index("max_batches") + 1).value = 2
    wb.save(path)
    return str(path)


def test_template_has_plans_and_leaves_max_batches_blank(tmp_path, run_cli):
    path = tmp_path / "t.xlsx"
    run_cli("template", str(path))
    wb = openpyxl.load_workbook(path)
    head = [c.value for c in wb["scenarios"][1]]
    assert wb["scenarios"].cell(row=2, column=head.index("max_batches") + 1).value is None
    book = load_workbook(path)
    assert book.scenarios[0].max_batches == book.scenarios[0].num_users == 6
    assert book.plan_methods == ["plan:two-batches", "plan:one-per-user"]
    readme = " ".join(str(c.value) for row in wb["README"].iter_rows() for c in row if c.value)
    assert "blank max_batches is the number of users" in readme and "plans" in readme


def test_check_reports_plans_and_a_low_max_batches(plan_book, run_cli):
    code, out, _ = run_cli("check", plan_book)
    assert code == 0
    assert "max_batches 2 is below the 6 users" in out
    assert "plan 'two-batches': feasible, 2 batches" in out and "plan 'one-per-user' is infeasible: 6 batches outside 2..2" in out


def test_evaluate_prints_each_plan_and_its_gap(plan_book, run_cli):
    code, out, err = run_cli("evaluate", plan_book, "--json", "--against", "exact", "--time-limit", "60")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    by = {r["plan"]: r for r in rows}
    s = load_workbook(plan_book).scenarios[0]
    named = load_workbook(plan_book).plans_of(s.name)["plan:two-batches"]
    ev = evaluate(s, dipsd.Plan.from_names(s, named.batches, named.length_of()))
    assert by["two-batches"]["throughput_tps"] == ev.throughput_tps and by["two-batches"]["feasible"]
    assert by["two-batches"]["gap_kind"] == "proven" and by["two-batches"]["against"]["status"] == "optimal"
    opt = by["two-batches"]["against"]["throughput_tps"]
    assert by["two-batches"]["gap_pct"] == pytest.approx(100 * (opt - ev.throughput_tps) / opt)
    assert not by["one-per-user"]["feasible"] and "6 batches outside 2..2" in by["one-per-user"]["reason"]
    code, table, _ = run_cli("evaluate", plan_book)
    assert code == 0 and "two-batches" in table and "infeasible" in table


def test_evaluate_without_plans_is_refused(run_cli):
    code, _, err = run_cli("evaluate", dipsd.example_path())
    assert code == 2 and "no plans to evaluate" in err


def test_a_study_reports_plans_as_methods(plan_book, tmp_path, run_cli):
    out = str(tmp_path / "r.xlsx")
    code, stdout, err = run_cli("study", plan_book, "--out", out, "--methods", "dipsd,certify,plan:two-batches,plan:one-per-user",
                                "--workers", "2", "--quiet", "--time-limit", "30")
    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[2].startswith("plan:two-batches: ") and "(proven, 1 scenario" in lines[2]
    assert lines[3] == "plan:one-per-user: no plan on 1 scenario (infeasible: 1)"
    results = dipsd.read_report(out)["Results"].set_index("method")
    assert results.loc["plan:two-batches", "gap_kind"] == "proven"
    assert "6 batches outside 2..2" in results.loc["plan:one-per-user", "message"]
    data = dipsd.read_report(out)["Chart data"]
    assert "plan:two-batches mean gap % (proven)" in data  # a plan is a heuristic in the gap chart


def test_study_scenario_filter(tmp_path, run_cli):
    out = str(tmp_path / "f.xlsx")
    code, _, err = run_cli("study", "--out", out, "--methods", "ad", "--scenario", "het-M3-*", "--scenario", "het-M6-1",
                           "--quiet")
    assert code == 0, err
    results = dipsd.read_report(out)["Results"]
    assert sorted(results.scenario) == ["het-M3-1", "het-M3-2", "het-M3-3", "het-M6-1"]
    code, _, err = run_cli("study", "--out", str(tmp_path / "g.xlsx"), "--scenario", "het-M9*", "--quiet")
    assert code == 2 and "no scenario matches 'het-M9*'" in err


def test_python_api_names():
    public = dir(dipsd)
    for name in ("solve", "run_study", "read_report", "results_frame", "register_method", "evaluate", "load_workbook"):
        assert name in public and name in dipsd.__all__
    assert dipsd.example_path("heterogeneous") == dipsd.example_path("heterogeneous.xlsx") == dipsd.example_path()
    with pytest.raises(InputError, match="did you mean 'paper'"):
        dipsd.example_path("papr")
    book = load_workbook(dipsd.example_path())
    with pytest.raises(InputError, match="did you mean 'het-M3-"):
        book.scenario("het-M3-l")
    with pytest.raises(InputError, match="did you mean"):
        dipsd.run_study(book.scenarios[:1], methods=["dipsdd"])


def test_a_grown_template_runs_every_method_and_names_its_stale_plans(tmp_path, run_cli):
    """Issue 38, item 3: the template with 4 more users: its example plans miss them. Methods that do not
    use plans run; check and evaluate name each plan's problem (exit 2); naming the plan says why."""
    import openpyxl

    path = tmp_path / "t.xlsx"
    assert run_cli("template", str(path))[0] == 0
    wb = openpyxl.load_workbook(path)
    ws = wb["users"]
    for k in range(7, 11):
        ws.append(["paper-6-users", f"u{k}"])
    wb.save(path)
    code, out, err = run_cli("solve", str(path), "--method", "sd-nobatch", "--json")
    assert code == 0 and json.loads(out)["status"] == "feasible", err
    code, out, err = run_cli("check", str(path))
    assert code == 2 and "paper-6-users" in out
    assert "plan 'two-batches' of scenario 'paper-6-users' cannot be used" in err and "(4 users missing)" in err
    code, out, err = run_cli("evaluate", str(path), "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 2 and {r["status"] for r in rows} == {"error"} and all("sheet 'plans', row" in r["reason"] for r in rows)
    code, _, err = run_cli("study", str(path), "--methods", "ad,plan:two-batches", "--out", str(tmp_path / "r.xlsx"))
    assert code == 2 and "plan:two-batches cannot be run: plan 'two-batches' of scenario 'paper-6-users'" in err
