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
from dipsd.reports.frames import read_report
from dipsd.reports.stats import Gap, gap, percentile, reference, summarize
from dipsd.solvers.results import Record, Status

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


@pytest.mark.slow
def test_study_report_sheets_and_values(small_book, tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("study", small_book, "--methods", FAST + ",enumerate", "--workers", "2", "--quiet")
    assert code == 0, err
    report = tmp_path / "dipsd-report.xlsx"
    header, records = read_checkpoint(str(report) + ".jsonl")
    assert header["scenarios_sha256"] == load_workbook(small_book).fingerprint
    assert len(records) == 4 * 5
    wb = openpyxl.load_workbook(report)
    assert wb.sheetnames == ["Summary", "Gaps", "Results", "Instances", "Plans", "Charts", "Chart data", "Run"]
    charts = wb["Charts"]._charts
    # gap chart: the heuristics only (exact and enumerate prove bounds; ad and ad-batch are target-only
    # decoding, no plan of the model: their ratios are on the third chart), certified bars + proven lines
    assert [len(c.series) for c in charts] == [1, 5, 5]
    assert [len(c.series) for c in charts[0]._charts] == [1, 1]
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
        assert r[head.index("draft length tokens")] == rec["draft_lengths"][r[2]]
    frames = read_report(str(report))
    summary = frames["Summary"]
    exact_all = summary[(summary["rows"] == "all sizes") & (summary["method"] == "exact")].iloc[0]
    assert exact_all["optimum proven (any method)"] == 4 and exact_all["max gap %"] == 0
    dip_all = summary[(summary["rows"] == "all sizes") & (summary["method"] == "dipsd")].iloc[0]
    assert dip_all["gaps proven"] == 4
    # certified gaps are at least the proven ones, so the counts are consistent with them
    assert dip_all["certified gap <= 1 %"] <= dip_all["with a result"]
    assert dip_all["max certified gap %"] >= dip_all["max gap %"] - 1e-9
    top = frames["Headline"].set_index("method")
    assert list(top.index) == ["dipsd", "ad", "ad-batch", "exact", "enumerate"]
    assert top.loc["exact", "hit optimum"] == 4 and top.loc["dipsd", "worst gap %"] == pytest.approx(
        max(100 * (records[(s, "exact")]["throughput_tps"] - records[(s, "dipsd")]["throughput_tps"]) / records[(s,
                                                                                                                 "exact")]["throughput_tps"]
            for s in {k[0] for k in records}), abs=1e-9)
    results = frames["Results"]
    assert len(results) == 20 and str(results["status"].dtype) == "category" and str(results["users"].dtype) == "Int64"
    for row in results.itertuples():
        rec = records[(row.scenario, row.method)]
        assert row.status == rec["status"]
        assert (row.throughput_tps == rec["throughput_tps"]) or (rec["throughput_tps"] is None and row.throughput_tps != row.throughput_tps)
    run = dict(sheet_rows(wb["Run"])[1])
    assert run["input sha256"] == load_workbook(small_book).sha256 and "pyomo" in run and run["machine cores"] == os.cpu_count()
    assert wb["Instances"].freeze_panes == "B2"
    assert wb["Instances"].conditional_formatting
    # every table has filter buttons (an Excel table each, two on Summary)
    assert {name for ws in wb.worksheets for name in ws.tables} == {
        "Headline", "Summary", "Gaps", "Results", "Instances", "Plans", "ChartData", "Run"}
    # no column of Instances is empty by construction (ad gives no bound, no optimum is open here)
    head, rows = sheet_rows(wb["Instances"])
    assert all(any(row[j] is not None for row in rows) for j in range(len(head)))
    assert "ad upper bound tok/s" not in head and "dipsd gap to best plan % (optimum open)" not in head
    # the charts' numbers are one table pandas reads as it stands
    chart_data = frames["Chart data"]
    assert list(chart_data["users"]) == [3, 4] and "dipsd mean % of best plan" in chart_data
    assert chart_data["dipsd worst certified gap % (optimum open)"].isna().all()  # every optimum proven here
    for m in (3, 4):
        shares = [100 * records[(s, "dipsd")]["throughput_tps"] / records[(s, "exact")]["throughput_tps"]
                  for (s, meth) in records if meth == "dipsd" and f"M{m}" in s]
        got = chart_data.set_index("users").loc[m, "dipsd mean % of best plan"]
        assert got == pytest.approx(sum(shares) / len(shares), rel=1e-12)
        gaps = [100 - x for x in shares]
        assert chart_data.set_index("users").loc[m, "dipsd mean gap % (proven)"] == pytest.approx(sum(gaps) / len(gaps), abs=1e-9)
    # numeric headers carry their unit
    head, _ = sheet_rows(wb["Plans"])
    units = ("tokens", "users", " ms", " s", "tok/s", "%", "GB (1e9 bytes)", "(re-evaluated)", "(verification order)",
             "per round", "(draft + comm)")
    assert all(any(u in h for u in units) for h in head[3:]), head


@pytest.mark.slow
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
    code, _, _ = run_cli("study", str(book), "--out", out, "--methods", "enumerate", "--workers", "1", "--quiet", "--fresh")
    # 'small' still succeeds: exit 0; with only the failing scenario every task fails: exit 1
    assert code == 0
    save_scenarios(book, [paper_scenario(9, name="big")])
    assert run_cli("study", str(book), "--out", out, "--methods", "enumerate", "--workers", "1", "--quiet", "--fresh")[0] == 1
    assert len(list(tmp_path.glob("r.xlsx.jsonl.old-*"))) == 2  # both earlier checkpoints kept, moved aside
    assert len(list(tmp_path.glob("r.xlsx.old-*"))) == 2  # and both earlier reports


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_ctrl_c_writes_the_report_of_what_finished(tmp_path):
    book = str(tmp_path / "c.xlsx")
    save_scenarios(book, generate([6, 8], 3, seed=2))
    out = str(tmp_path / "c-report.xlsx")
    # a shell that started this suite in the background leaves SIGINT ignored, and an ignored signal
    # is inherited across exec: give the study the default disposition, as a terminal would
    proc = subprocess.Popen(_study_cmd(book, out), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not (os.path.exists(out + ".jsonl") and len(read_checkpoint(out + ".jsonl")[1]) >= 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and b"--resume" in err
    _, records = read_checkpoint(out + ".jsonl")
    rows = list(openpyxl.load_workbook(out)["Run"].iter_rows(values_only=True))
    assert ("interrupted", "yes (Ctrl-C): the report holds the finished tasks") in rows
    assert len(records) >= 2


@pytest.mark.slow
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
    R = Record.from_json
    exact_opt = {"scenario": "a", "method": "exact", "status": "optimal", "throughput_tps": 100.0, "upper_bound_tps": 100.0, **plan}
    exact_tl = {"scenario": "b", "method": "exact", "status": "time_limit", "throughput_tps": 90.0, "upper_bound_tps": 120.0, **plan}
    cert_b = {"scenario": "b", "method": "certify", "status": "feasible", "throughput_tps": 98.0, "upper_bound_tps": 110.0, **plan}
    h1 = {"scenario": "a", "method": "h", "status": "feasible", "throughput_tps": 95.0, "runtime_s": 1.0, "iterations": 2, **plan}
    h2 = {"scenario": "b", "method": "h", "status": "feasible", "throughput_tps": 99.0, "runtime_s": 3.0, "iterations": 0, **plan}
    exact_opt, exact_tl, cert_b, h1, h2 = (R(d) for d in (exact_opt, exact_tl, cert_b, h1, h2))
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


def test_run_task_turns_any_failure_into_an_error_record(small_book, monkeypatch):
    from dipsd.errors import PlanError
    from dipsd.solvers import registry
    from dipsd.study import Task, run_task
    scenario = load_workbook(small_book).scenarios[0]
    start = Record.from_json({"scenario": scenario.name, "method": "dipsd", "status": "feasible",
                              "batches": [["nobody"]], "draft_lengths": {"nobody": 1}})
    # a start that is not a plan of the scenario is re-checked and ignored (docs/model.md 6a)
    assert run_task(Task(scenario, "exact", 5.0, start=start)).status is Status.OPTIMAL

    def broken(*args, **kwargs):
        raise PlanError("a failure inside the task")

    monkeypatch.setattr(registry, "run_method", broken)
    record = run_task(Task(scenario, "exact", 5.0))
    assert record.status is Status.ERROR and "PlanError" in record.message and record.throughput_tps is None


# ----------------------------------------------------------------------------- no lost work
def _finished_study(book, out, run_cli, *extra):
    code, _, err = run_cli("study", book, "--out", out, "--methods", "dipsd,ad", "--workers", "1", "--quiet", *extra)
    assert code == 0, err
    return read_checkpoint(out + ".jsonl")


def test_outputs_checked_before_any_work(small_book, tmp_path, run_cli):
    cases = [
        (small_book, "is the input file"),
        (str(tmp_path), "is a folder"),
        (str(tmp_path / "missing" / "r.xlsx"), "does not exist"),
        (str(tmp_path / "r.csv"), "must end in .xlsx"),
    ]
    before = open(small_book, "rb").read()
    for out, message in cases:
        code, _, err = run_cli("study", small_book, "--out", out, "--methods", "ad", "--quiet")
        assert code == 2 and message in err and "Traceback" not in err, (out, err)
    assert open(small_book, "rb").read() == before
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root may write anywhere: then there is nothing to test
            code, _, err = run_cli("study", small_book, "--out", str(locked / "r.xlsx"), "--quiet")
            assert code == 2 and "not writable" in err
    finally:
        locked.chmod(0o700)
    for command in (["template"], ["generate"]):
        code, _, err = run_cli(*command, small_book)
        assert code == 2 and "exists" in err and "--force" in err
        code, _, err = run_cli(*command, str(tmp_path / "x.txt"))
        assert code == 2 and "must end in .xlsx" in err
    assert open(small_book, "rb").read() == before
    code, _, err = run_cli("paper", "--out", str(tmp_path / "nope" / "p.xlsx"), "--quiet")
    assert code == 2 and "does not exist" in err


@pytest.mark.slow
def test_a_finished_study_is_never_emptied(small_book, tmp_path, run_cli):
    out = str(tmp_path / "r.xlsx")
    header, records = _finished_study(small_book, out, run_cli)
    kept = open(out + ".jsonl").read()
    code, _, err = run_cli("study", small_book, "--out", out, "--methods", "dipsd,ad", "--quiet")
    assert code == 2 and "holds 8 finished tasks" in err and "--resume" in err and "--fresh" in err
    assert open(out + ".jsonl").read() == kept
    # a bad --scheduler is refused by the parser, before the checkpoint is touched
    code, _, err = run_cli("study", small_book, "--out", out, "--scheduler", "nonsense", "--quiet")
    assert code == 2 and "tcp://HOST:PORT" in err and open(out + ".jsonl").read() == kept
    # --fresh moves it aside, intact, and the earlier report with it
    report = open(out, "rb").read()
    _finished_study(small_book, out, run_cli, "--fresh")
    (aside,) = tmp_path.glob("r.xlsx.jsonl.old-*")
    assert aside.read_text() == kept
    (old_report,) = tmp_path.glob("r.xlsx.old-*")
    assert old_report.read_bytes() == report


@pytest.mark.slow
def test_resume_refuses_other_settings_and_bad_lines(small_book, tmp_path, run_cli):
    out = str(tmp_path / "r.xlsx")
    _finished_study(small_book, out, run_cli)
    kept = open(out + ".jsonl").read()
    code, _, err = run_cli("study", small_book, "--out", out, "--methods", "dipsd,ad", "--quiet", "--resume",
                           "--time-limit", "5")
    assert code == 2 and "time_limit: checkpoint 60.0, this run 5.0" in err
    code, _, err = run_cli("study", small_book, "--out", out, "--methods", "dipsd", "--quiet", "--resume")
    assert code == 2 and "methods" in err
    assert open(out + ".jsonl").read() == kept
    with open(out + ".jsonl", "a") as fh:
        fh.write('["not", "a", "record"]\n')
    code, _, err = run_cli("study", small_book, "--out", out, "--methods", "dipsd,ad", "--quiet", "--resume")
    assert code == 2 and "line 10" in err and "task record" in err


@pytest.mark.parametrize("field,value,named", [("status", "solved", "'status'"), ("throughput_tps", "12.5", "'throughput_tps'"),
                                               ("draft_lengths", {"u1": 2.5}, "'draft_lengths'")])
@pytest.mark.slow
def test_resume_names_the_bad_field_of_a_checkpoint_record(small_book, tmp_path, run_cli, field, value, named):
    out = str(tmp_path / "r.xlsx")
    _finished_study(small_book, out, run_cli)
    lines = open(out + ".jsonl").read().splitlines()
    bad = json.loads(lines[2])
    bad[field] = value
    lines[2] = json.dumps(bad)
    with open(out + ".jsonl", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    kept = open(out + ".jsonl").read()
    code, _, err = run_cli("study", small_book, "--out", out, "--methods", "dipsd,ad", "--quiet", "--resume")
    assert code == 2 and "Traceback" not in err
    assert out + ".jsonl, line 3: not a task record" in err and named in err
    assert open(out + ".jsonl").read() == kept  # the checkpoint is left as it was


@pytest.mark.slow
def test_resume_rewrites_atomically_and_reruns_errors(small_book, tmp_path, run_cli):
    out = str(tmp_path / "r.xlsx")
    _, records = _finished_study(small_book, out, run_cli)
    lines = open(out + ".jsonl").read().splitlines()
    broken = json.loads(lines[1])
    broken.update(status="error", throughput_tps=None, message="worker process died 3 times")
    lines[1] = json.dumps(broken)
    with open(out + ".jsonl", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    inode = os.stat(out + ".jsonl").st_ino
    code, _, err = run_cli("study", small_book, "--out", out, "--methods", "dipsd,ad", "--quiet", "--resume")
    assert code == 0, err
    _, again = read_checkpoint(out + ".jsonl")
    key = (broken["scenario"], broken["method"])
    assert again[key]["status"] != "error" and _comparable(again) == _comparable(records)
    assert os.stat(out + ".jsonl").st_ino != inode  # replaced by rename, never truncated in place
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.slow
def test_a_second_study_on_the_same_report_is_refused(small_book, tmp_path):
    out = str(tmp_path / "r.xlsx")
    book = str(tmp_path / "slow.xlsx")
    save_scenarios(book, generate([6, 8], 3, seed=2))
    first = subprocess.Popen(_study_cmd(book, out, "--quiet"), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not os.path.exists(out + ".jsonl.lock"):
            time.sleep(0.05)
        second = subprocess.run(_study_cmd(book, out, "--quiet", "--resume"), capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "another study is writing" in second.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()


@pytest.mark.slow
def test_workers_die_with_the_study(tmp_path):
    """kill -9 of the study: its worker processes end by themselves within seconds."""
    book = str(tmp_path / "w.xlsx")
    save_scenarios(book, generate([8, 10], 2, seed=3))
    out = str(tmp_path / "w-report.xlsx")
    cmd = [sys.executable, "-m", "dipsd.cli", "study", book, "--out", out, "--methods", "dipsd,exact", "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    children: list[int] = []
    while time.time() < deadline and len(children) < 2:
        children = _children(proc.pid)
        time.sleep(0.1)
    assert children, "no worker processes seen"
    os.kill(proc.pid, signal.SIGKILL)  # only the study itself, not its process group
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.2)
    alive = [pid for pid in children if _alive(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "workers outlived the study"


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _dies_once(task):
    """A worker that is killed the first time it runs method 'ad' (the marker file remembers)."""
    from dipsd.study import run_task

    marker = os.environ["DIPSD_TEST_MARKER"]
    if task.method == "ad" and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return run_task(task)


def _always_dies(task):
    from dipsd.study import run_task

    if task.method == "ad":
        os.kill(os.getpid(), signal.SIGKILL)
    return run_task(task)


class _Backend:
    """The local backend with another task function (module level, so that workers can unpickle it)."""

    def __init__(self, fn):
        from dipsd.study.backends import _LocalBackend

        class Patched(_LocalBackend):
            def submit(self, task):
                future = self.pool.submit(fn, task)
                self.pool_of[future] = self.pool
                return future

        self.cls = Patched


def test_a_task_whose_worker_is_killed_runs_again(tmp_path, monkeypatch):
    """A worker killed once (OOM killer, kill -9): the task is run again and succeeds."""
    from dipsd import study
    from dipsd.study import scheduler

    monkeypatch.setenv("DIPSD_TEST_MARKER", str(tmp_path / "killed-once"))
    monkeypatch.setattr(scheduler, "_LocalBackend", _Backend(_dies_once).cls)
    book = load_workbook(_tiny_book(tmp_path))
    outcome = study.run_study(book, ["ad", "ad-batch"], time_limit=10, checkpoint_path=str(tmp_path / "t.jsonl"), workers=1)
    assert (tmp_path / "killed-once").exists()
    assert all(r.status is Status.FEASIBLE for r in outcome.records) and len(outcome.records) == 2


def test_a_task_whose_worker_always_dies_becomes_an_error_that_resume_retries(tmp_path, monkeypatch):
    from dipsd import study
    from dipsd.study import scheduler

    real = scheduler._LocalBackend
    monkeypatch.setattr(scheduler, "_LocalBackend", _Backend(_always_dies).cls)
    book = load_workbook(_tiny_book(tmp_path))
    path = str(tmp_path / "t.jsonl")
    outcome = study.run_study(book, ["ad", "ad-batch"], time_limit=10, checkpoint_path=path, workers=1)
    by_method = {r.method: r for r in outcome.records}
    assert by_method["ad"].status is Status.ERROR and "died 3 times" in by_method["ad"].message
    assert by_method["ad-batch"].status is Status.FEASIBLE
    monkeypatch.setattr(scheduler, "_LocalBackend", real)
    again = study.run_study(book, ["ad", "ad-batch"], time_limit=10, checkpoint_path=path, workers=1, resume=True)
    assert all(r.status is Status.FEASIBLE for r in again.records)


def _tiny_book(tmp_path) -> str:
    path = str(tmp_path / "tiny.xlsx")
    save_scenarios(path, [paper_scenario(3, max_draft_length=3, name="tiny")])
    return path


@pytest.mark.slow
def test_study_prints_a_headline_per_method_naming_the_worst_scenario(small_book, tmp_path, run_cli):
    out = str(tmp_path / "h.xlsx")
    code, stdout, err = run_cli("study", small_book, "--out", out, "--methods", "dipsd,ad,exact", "--workers", "1", "--quiet")
    assert code == 0, err
    _, records = read_checkpoint(out + ".jsonl")
    lines = {line.split()[0]: line for line in stdout.splitlines() if line and line.split()[0] in ("dipsd", "ad", "exact")}
    assert set(lines) == {"dipsd", "ad", "exact"}
    gaps = {s: 100 * (records[(s, "exact")]["throughput_tps"] - records[(s, "ad")]["throughput_tps"])
            / records[(s, "exact")]["throughput_tps"] for s in {k[0] for k in records}}
    worst = max(gaps, key=gaps.get)
    assert lines["ad"].rstrip().endswith(worst) and f"{gaps[worst]:.4f}" in lines["ad"]
    assert "4 of 4" in lines["exact"] and "(12 tasks;" in stdout


def _sleepy(scenario, time_limit, start):
    """A method that takes 2.5 s (the ad baseline, late): long enough for the study to tick."""
    import dataclasses
    import time as _time

    from dipsd.solvers.baselines import solve_ad

    _time.sleep(2.5)
    return dataclasses.replace(solve_ad(scenario), method="sleepy")


@pytest.mark.slow
def test_progress_ticks_every_second_and_says_what_runs(small_book, tmp_path, monkeypatch):
    """on_tick is called at least once a second while a task runs, names the running task with its
    elapsed time, and bounds what is left by the remaining time limits."""
    import dataclasses
    import time as _time

    from dipsd.data.workbook import load_workbook
    from dipsd.progress import Progress
    from dipsd.solvers.registry import METHODS, Method
    from dipsd.study import run_study

    monkeypatch.setitem(METHODS, "sleepy", Method("sleepy", "sleeps, then ad", _sleepy))
    book = load_workbook(small_book)
    book = dataclasses.replace(book, scenarios=book.scenarios[:1])
    ticks = []
    t0 = _time.monotonic()
    outcome = run_study(book, ["sleepy"], time_limit=7.0, checkpoint_path=str(tmp_path / "c.jsonl"), workers=1,
                        on_tick=lambda running: ticks.append((_time.monotonic() - t0, running)))
    assert len(outcome.records) == 1 and outcome.records[0].status.value == "feasible"
    times = [t for t, _ in ticks]
    # the task sleeps 2.5 s and the study waits at most TICK_S = 1 s between ticks (however slow the machine)
    assert len(ticks) >= 2 and times == sorted(times)
    running = [r for _, r in ticks if r.tasks]
    assert running and running[-1].tasks[0][:2] == (book.scenarios[0].name, "sleepy")
    assert running[-1].tasks[0][2] >= 1.0 and running[-1].left_at_most_s <= 7.0 - 1.0 + 0.5
    assert running[-1].done == 0 and running[-1].total == 1
    line = Progress(False).line(running[-1])
    assert f"{book.scenarios[0].name} × sleepy" in line and "0/1 done" in line and "left (time limits)" in line


def test_resume_may_add_methods_and_raise_the_time_limit(small_book, tmp_path):
    """Records stopped by the old limit run again, finished ones are kept, the header keeps the history."""
    from dipsd import study
    from dipsd.data.workbook import load_workbook

    book = load_workbook(small_book)
    path = str(tmp_path / "c.jsonl")
    first = study.run_study(book, ["dipsd", "ad"], time_limit=1e-4, checkpoint_path=path, workers=1)
    stopped = {(r.scenario, r.method) for r in first.records if r.status.value in ("time_limit", "no_plan")}
    kept = {(r.scenario, r.method): r for r in first.records if r.status.value not in ("time_limit", "no_plan", "error")}
    assert stopped, "the tiny limit should stop DiP-SD somewhere"
    again = study.run_study(book, ["dipsd", "ad", "ad-batch"], time_limit=30, checkpoint_path=path, workers=1, resume=True)
    by = {(r.scenario, r.method): r for r in again.records}
    assert len(by) == 3 * len(book.scenarios)
    for key in stopped:
        assert by[key].status.value == "feasible"  # ran again under the longer limit
    for key, record in kept.items():
        assert by[key] == record  # kept as it was
    header, _ = read_checkpoint(path)
    assert header["time_limit"] == 30 and header["methods"] == ["dipsd", "ad", "ad-batch"]
    assert header["history"] == [{"methods": ["dipsd", "ad"], "time_limit": 1e-4}]
    from dipsd.errors import InputError

    with pytest.raises(InputError, match="time_limit"):
        study.run_study(book, ["dipsd", "ad", "ad-batch"], time_limit=10, checkpoint_path=path, workers=1, resume=True)


@pytest.fixture(scope="module")
def work_book(tmp_path_factory):
    """Two heterogeneous scenarios where certify needs more than a few LP solves."""
    path = tmp_path_factory.mktemp("work") / "work.xlsx"
    save_scenarios(str(path), generate([8, 10], 1, seed=4))
    return str(path)


@pytest.mark.slow
def test_a_work_limit_makes_two_studies_write_the_same_results(work_book, tmp_path):
    """Under --work-limit every Results column but the runtime is the same in two runs (the
    second one with another process busy on the second core); certify records which limit
    stopped it."""
    from dipsd.reports.frames import read_report
    from dipsd.service import StudyRequest, run

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        frames = []
        for i in range(2):
            out = str(tmp_path / f"r{i}.xlsx")
            run(StudyRequest(source=work_book, methods=["dipsd", "certify"], time_limit=120, workers=1, out=out,
                             work_limit=25))
            frames.append(read_report(out)["Results"].drop(columns=["runtime_s"]))
    finally:
        busy.kill()
        busy.wait()
    first, second = frames
    assert first.equals(second)
    certify = first[first["method"] == "certify"]
    assert set(certify["status"]) == {"work_limit"}, certify[["scenario", "status", "message"]]
    header, _ = read_checkpoint(str(tmp_path / "r0.xlsx.jsonl"))
    assert header["work_limit"] == 25
    run_sheet = read_report(str(tmp_path / "r0.xlsx"))["Run"]
    said = dict(zip(run_sheet.iloc[:, 0], run_sheet.iloc[:, 1]))
    assert str(said["work limit per task"]).startswith("25 units")


@pytest.mark.slow
def test_resume_may_raise_the_work_limit_but_not_add_or_drop_one(work_book, tmp_path):
    from dipsd import study
    from dipsd.data.workbook import load_workbook
    from dipsd.errors import InputError

    book = load_workbook(work_book)
    path = str(tmp_path / "c.jsonl")
    first = study.run_study(book, ["dipsd", "certify"], time_limit=120, checkpoint_path=path, workers=1, work_limit=5)
    stopped = {(r.scenario, r.method) for r in first.records if r.status is Status.WORK_LIMIT}
    assert stopped
    with pytest.raises(InputError, match="work_limit"):
        study.run_study(book, ["dipsd", "certify"], time_limit=120, checkpoint_path=path, workers=1, resume=True)
    with pytest.raises(InputError, match="work_limit"):
        study.run_study(book, ["dipsd", "certify"], time_limit=120, checkpoint_path=path, workers=1, resume=True,
                        work_limit=4)
    again = study.run_study(book, ["dipsd", "certify"], time_limit=120, checkpoint_path=path, workers=1, resume=True,
                            work_limit=400)
    by = {(r.scenario, r.method): r for r in again.records}
    for key in stopped:
        assert by[key].status is not Status.WORK_LIMIT  # ran again under the larger limit
    header, _ = read_checkpoint(path)
    assert header["work_limit"] == 400
    assert header["history"] == [{"methods": ["dipsd", "certify"], "time_limit": 120, "work_limit": 5}]
