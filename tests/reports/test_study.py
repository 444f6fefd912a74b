"""Studies end to end: the report's sheets and values, failures, kill -9 and resume, Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import openpyxl
import pytest

from dipsd import Scenario, User, load_workbook, paper_scenario
from dipsd.data.generate import generate
from dipsd.data.writer import save_scenarios
from dipsd.reports.stats import Gap, gap, percentile, reference, summarize

FAST = "dipsd,ad,ad-batch,exact"


@pytest.fixture(scope="module")
def small_book(tmp_path_factory):
    path = tmp_path_factory.mktemp("book") / "small.xlsx"
    scenarios = generate([3, 4], 2, seed=4, max_draft_length=4)
    save_scenarios(path, scenarios)
    return str(path)


def read_checkpoint(path):
    with open(path) as fh:
        lines = [json.loads(line) for line in fh if line.strip()]
    return lines[0], {(r["scenario"], r["method"]): r for r in lines[1:]}


def sheet_rows(ws):
    rows = list(ws.iter_rows(values_only=True))
    return rows[0], rows[1:]


def test_study_report_sheets_and_values(small_book, tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("study", small_book, "--methods", FAST + ",enumerate", "--workers", "2", "--quiet")
    assert code == 0, err
    report = tmp_path / "dipsd-report.xlsx"
    header, records = read_checkpoint(str(report) + ".jsonl")
    assert header["scenarios_sha256"] == load_workbook(small_book).fingerprint
    assert len(records) == 4 * 5
    wb = openpyxl.load_workbook(report)
    assert wb.sheetnames == ["Summary", "Instances", "Plans", "Charts", "Run"]
    charts = wb["Charts"]._charts
    assert [len(c.series) for c in charts] == [4, 5, 5]  # gap (exact left out), runtime, throughput
    assert charts[1].y_axis.scaling.logBase == 10  # runtime on a logarithmic axis
    head, rows = sheet_rows(wb["Instances"])
    col = {h: i for i, h in enumerate(head)}
    for row in rows:
        name = row[col["scenario"]]
        exact, brute = records[(name, "exact")], records[(name, "enumerate")]
        assert row[col["exact status"]] == "optimal"
        assert row[col["optimum tok/s (proven)"]] == exact["throughput_tps"]  # full precision
        assert exact["throughput_tps"] == pytest.approx(brute["throughput_tps"], rel=1e-9)
        dip = records[(name, "dipsd")]
        assert row[col["dipsd tok/s"]] == dip["throughput_tps"]
        expected = 100 * (exact["throughput_tps"] - dip["throughput_tps"]) / exact["throughput_tps"]
        assert row[col["dipsd gap to optimum %"]] == pytest.approx(expected, abs=1e-12)
        assert row[col["DiP-SD / AD"]] == pytest.approx(dip["throughput_tps"] / records[(name, "ad")]["throughput_tps"])
    head, plan_rows = sheet_rows(wb["Plans"])
    assert len(plan_rows) == sum(3 if "M3" in s else 4 for (s, m) in records if m in ("dipsd", "exact", "enumerate"))
    for r in plan_rows:
        rec = records[(r[0], r[1])]
        assert r[head.index("plan tok/s (re-evaluated)")] == pytest.approx(rec["throughput_tps"], rel=1e-12)
        assert r[head.index("draft length")] == rec["draft_lengths"][r[2]]
    head, summary = sheet_rows(wb["Summary"])
    exact_all = next(r for r in summary if r[0] == "all" and r[1] == "exact")
    assert exact_all[head.index("optimum proven (any method)")] == 4 and exact_all[head.index("max gap %")] == 0
    dip_all = next(r for r in summary if r[0] == "all" and r[1] == "dipsd")
    assert dip_all[head.index("gaps proven")] == 4
    # certified gaps are at least the proven ones, so the counts are consistent with them
    assert dip_all[head.index("certified gap <= 1 %")] <= dip_all[head.index("with a result")]
    assert dip_all[head.index("max certified gap %")] >= dip_all[head.index("max gap %")] - 1e-9
    run = dict(sheet_rows(wb["Run"])[1])
    assert run["input sha256"] == load_workbook(small_book).sha256 and "pyomo" in run and run["machine cores"] == os.cpu_count()
    assert wb["Instances"].freeze_panes == "B2"
    assert wb["Instances"].conditional_formatting


def test_one_failing_task_does_not_lose_the_others(tmp_path, run_cli):
    book = tmp_path / "mixed.xlsx"
    save_scenarios(book, [paper_scenario(3, max_draft_length=3, name="small"), paper_scenario(9, name="big")])
    out = str(tmp_path / "r.xlsx")
    code, _, _ = run_cli("study", str(book), "--out", out, "--methods", "enumerate,ad", "--workers", "1", "--quiet")
    assert code == 0
    _, records = read_checkpoint(out + ".jsonl")
    assert records[("big", "enumerate")]["status"] == "error" and "use method 'exact'" in records[("big", "enumerate")]["message"]
    assert records[("small", "enumerate")]["status"] == "optimal" and records[("big", "ad")]["status"] == "feasible"
    _, rows = sheet_rows(openpyxl.load_workbook(out)["Instances"])
    assert len(rows) == 2
    code, _, _ = run_cli("study", str(book), "--out", out, "--methods", "enumerate", "--workers", "1", "--quiet")
    # 'small' still succeeds: exit 0; with only the failing scenario every task fails: exit 1
    assert code == 0
    save_scenarios(book, [paper_scenario(9, name="big")])
    assert run_cli("study", str(book), "--out", out, "--methods", "enumerate", "--workers", "1", "--quiet")[0] == 1


def test_formula_looking_names_stay_text(tmp_path, run_cli):
    book = tmp_path / "f.xlsx"
    s = Scenario("=1+1", (User('=HYPERLINK("http://x","y")'), User("b")), max_draft_length=3)
    save_scenarios(book, [s])
    out = str(tmp_path / "f-report.xlsx")
    assert run_cli("study", str(book), "--out", out, "--methods", "dipsd,exact", "--workers", "1", "--quiet")[0] == 0
    wb = openpyxl.load_workbook(out)
    cell = wb["Instances"]["A2"]
    assert cell.value == "=1+1" and cell.data_type == "s"
    users = {c.value for c in wb["Plans"]["C"][1:]}
    assert '=HYPERLINK("http://x","y")' in users
    assert all(c.data_type == "s" for c in wb["Plans"]["C"])


def _study_cmd(book, out, *extra):
    return [sys.executable, "-m", "dipsd.cli", "study", book, "--out", out, "--methods", "dipsd,exact",
            "--workers", "1", "--time-limit", "60", *extra]


def _comparable(records):
    keep = ("status", "throughput_tps", "upper_bound_tps", "batches", "draft_lengths")
    return {k: {f: r[f] for f in keep} for k, r in records.items()}


def test_kill_9_then_resume_loses_nothing(tmp_path):
    book = str(tmp_path / "k.xlsx")
    save_scenarios(book, generate([4, 5, 6], 2, seed=21, max_draft_length=6))
    clean = str(tmp_path / "clean.xlsx")
    subprocess.run(_study_cmd(book, clean, "--quiet"), check=True, capture_output=True)
    _, clean_records = read_checkpoint(clean + ".jsonl")

    out = str(tmp_path / "killed.xlsx")
    proc = subprocess.Popen(_study_cmd(book, out, "--quiet"), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if os.path.exists(out + ".jsonl") and len(read_checkpoint(out + ".jsonl")[1]) >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _, partial = read_checkpoint(out + ".jsonl")
    assert 3 <= len(partial) < len(clean_records), "the study was not stopped part-way"
    assert not os.path.exists(out), "no report may exist after kill -9"
    subprocess.run(_study_cmd(book, out, "--resume", "--quiet"), check=True, capture_output=True)
    header, resumed = read_checkpoint(out + ".jsonl")
    assert sorted(resumed) == sorted(clean_records)  # nothing lost, nothing duplicated
    with open(out + ".jsonl") as fh:
        assert len([line for line in fh if line.strip()]) == len(clean_records) + 1
    assert _comparable(resumed) == _comparable(clean_records)
    a, b = (openpyxl.load_workbook(p)["Instances"] for p in (clean, out))
    head = [c.value for c in a[1]]
    drop = {i for i, h in enumerate(head) if "runtime" in h}
    strip = lambda ws: [[v for i, v in enumerate(r) if i not in drop] for r in ws.iter_rows(values_only=True)]  # noqa: E731
    assert strip(a) == strip(b)


def test_ctrl_c_writes_the_report_of_what_finished(tmp_path):
    book = str(tmp_path / "c.xlsx")
    save_scenarios(book, generate([6, 8], 3, seed=2))
    out = str(tmp_path / "c-report.xlsx")
    proc = subprocess.Popen(_study_cmd(book, out), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (os.path.exists(out + ".jsonl") and len(read_checkpoint(out + ".jsonl")[1]) >= 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    _, records = read_checkpoint(out + ".jsonl")
    rows = list(openpyxl.load_workbook(out)["Run"].iter_rows(values_only=True))
    assert ("interrupted", "yes (Ctrl-C): the report holds the finished tasks") in rows
    assert len(records) >= 2


def test_dask_local_cluster(small_book, tmp_path, run_cli):
    pytest.importorskip("distributed")
    out = str(tmp_path / "dask.xlsx")
    code, _, err = run_cli("study", small_book, "--out", out, "--methods", "dipsd,exact,ad", "--scheduler", "local",
                           "--workers", "2", "--quiet")
    assert code == 0, err
    _, records = read_checkpoint(out + ".jsonl")
    assert len(records) == 12 and all(r["status"] in ("optimal", "feasible") for r in records.values())


def test_bad_study_arguments_exit_2(run_cli, tmp_path):
    assert run_cli("study", "--methods", "exact,magic", "--out", str(tmp_path / "x.xlsx"))[0] == 2
    assert run_cli("study", "--workers", "0")[0] == 2
    assert run_cli("study", str(tmp_path / "missing.xlsx"))[0] == 2


def test_gap_definitions_and_summary():
    plan = {"batches": [["x"]], "draft_lengths": {"x": 1}}
    exact_opt = {"scenario": "a", "method": "exact", "status": "optimal", "throughput_tps": 100.0, "upper_bound_tps": 100.0, **plan}
    exact_tl = {"scenario": "b", "method": "exact", "status": "time_limit", "throughput_tps": 90.0, "upper_bound_tps": 120.0, **plan}
    cert_b = {"scenario": "b", "method": "certify", "status": "feasible", "throughput_tps": 98.0, "upper_bound_tps": 110.0, **plan}
    h1 = {"scenario": "a", "method": "h", "status": "feasible", "throughput_tps": 95.0, "runtime_s": 1.0, "iterations": 2, **plan}
    h2 = {"scenario": "b", "method": "h", "status": "feasible", "throughput_tps": 99.0, "runtime_s": 3.0, "iterations": 0, **plan}
    assert gap(h1, reference([exact_opt, h1])) == Gap(5.0, None, 5.0)
    ref_b = reference([exact_tl, cert_b, h2])
    # the best bound is certify's, the best plan h2's own: its gap to the best plan is 0
    assert (ref_b.bound, ref_b.bound_by, ref_b.best, ref_b.best_by, ref_b.optimum) == (110.0, "certify", 99.0, "h", None)
    g = gap(exact_tl, ref_b)
    assert g.proven is None and g.to_best == pytest.approx(100 * 9 / 99) and g.certified == pytest.approx(100 * 20 / 110)
    assert gap(h2, ref_b).certified == pytest.approx(10.0)
    rows = summarize([exact_opt, exact_tl, cert_b, h1, h2], {"a": 3, "b": 3}, ["h", "exact"])
    h_all = next(r for r in rows if r.group == "all" and r.method == "h")
    assert (h_all.proven, h_all.open, h_all.gap_mean, h_all.hits, h_all.gaps_proven) == (1, 1, 5.0, 0, 1)
    assert h_all.certified == (0, 0) and h_all.certified_max == pytest.approx(10.0)
    assert h_all.open_certified_mean == pytest.approx(10.0) and h_all.runtime_mean == 2.0
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 95) == 5
    # a proven optimum is also the best bound; a method at the optimum is certified at 0 %
    ex_all = next(r for r in rows if r.group == "all" and r.method == "exact")
    assert ex_all.certified == (1, 1)


def test_run_task_turns_any_failure_into_an_error_record(small_book):
    from dipsd.solvers.study import Task, run_task
    scenario = load_workbook(small_book).scenarios[0]
    record = run_task(Task(scenario, "exact", 5.0, start={"batches": [["nobody"]], "draft_lengths": {"nobody": 1}}))
    assert record["status"] == "error" and "PlanError" in record["message"] and record["throughput_tps"] is None
