"""The command line: help, check on the bundled examples, argument errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from dipsd.cli import example_path


@pytest.mark.parametrize("name,count", [("paper.xlsx", 13), ("heterogeneous.xlsx", 12)])
def test_check_bundled_examples(run_cli, name, count):
    code, out, err = run_cli("check", example_path(name))
    assert code == 0, err
    assert f"{count} scenarios" in out and len(out.strip().splitlines()) == count + 1


def test_check_defaults_to_bundled_example(run_cli):
    code, out, _ = run_cli("check")
    assert code == 0 and "heterogeneous.xlsx" in out


def test_check_generated_workbook(tmp_path, run_cli):
    path = str(tmp_path / "g.xlsx")
    assert run_cli("generate", path, "--users", "2,7", "--per-size", "2", "--seed", "5")[0] == 0
    code, out, _ = run_cli("check", path)
    assert code == 0 and "het-M7-2" in out


@pytest.mark.parametrize("argv", [
    ["generate", "x.xlsx", "--users", "3,a"],
    ["generate", "x.xlsx", "--profile", "weird"],
    ["generate", "x.xlsx", "--per-size", "0"],
    ["frobnicate"],
])
def test_bad_arguments_exit_2(run_cli, argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(*argv)
    assert code == 2 and "Traceback" not in err


def test_help_documents_every_command():
    out = subprocess.run([sys.executable, "-m", "dipsd.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("check", "template", "generate"):
        assert command in out


def test_real_process_exit_code_and_single_line(tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not,a,workbook\n")
    proc = subprocess.run([sys.executable, "-m", "dipsd.cli", "check", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_solve_json_and_table(run_cli):
    import json
    wb = example_path("heterogeneous.xlsx")
    code, out, err = run_cli("solve", wb, "--method", "exact", "--scenario", "het-M3-2", "--json")
    assert code == 0, err
    (line,) = out.strip().splitlines()
    exact = json.loads(line)
    assert exact["status"] == "optimal" and exact["method"] == "exact"
    code, out, _ = run_cli("solve", wb, "--method", "enumerate", "--scenario", "het-M3-2", "--json")
    brute = json.loads(out)
    assert brute["throughput_tps"] == pytest.approx(exact["throughput_tps"], rel=1e-9)
    code, out, _ = run_cli("solve", wb, "--method", "exact", "--scenario", "het-M3-2")
    assert code == 0 and out.splitlines()[0].startswith("scenario") and "optimal" in out.splitlines()[1]


def test_solve_unknown_scenario_exit_2(run_cli):
    code, _, err = run_cli("solve", example_path(), "--method", "exact", "--scenario", "nope")
    assert code == 2 and "--scenario: no scenario matches 'nope'" in err and "Traceback" not in err


def test_solve_bad_time_limit_exit_2(run_cli):
    code, _, err = run_cli("solve", example_path(), "--method", "exact", "--time-limit", "-1")
    assert code == 2 and "Traceback" not in err


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "many"])
def test_a_bad_work_limit_exits_2(run_cli, value):
    for command in ("solve", "study"):
        extra = ["--method", "certify"] if command == "solve" else []
        code, _, err = run_cli(command, example_path(), *extra, "--work-limit", value)
        assert code == 2 and "--work-limit" in err and "Traceback" not in err


def test_solve_with_a_work_limit_says_which_limit_stopped_certify(run_cli):
    args = ("solve", example_path(), "--method", "certify", "--scenario", "het-M6-1", "--work-limit", "2", "--json")
    rows = [json.loads(run_cli(*args)[1]) for _ in range(2)]
    assert rows[0]["status"] == "work_limit"
    for row in rows:  # times differ between runs: the runtime and DiP-SD's seconds in the message
        del row["runtime_s"]
        row["message"] = re.sub(r"\(\d+\.\d+s", "(", row["message"])
    assert rows[0] == rows[1]


def test_solve_too_large_for_enumerate_is_an_error_row(run_cli):
    import json
    code, out, _ = run_cli("solve", example_path("paper.xlsx"), "--method", "enumerate", "--scenario", "paper-M14-1", "--json")
    row = json.loads(out)
    assert code == 1 and row["status"] == "error" and "use method 'exact'" in row["message"]


@pytest.mark.parametrize("command", ["check", "template", "generate", "solve", "study", "paper"])
def test_every_command_has_help_with_defaults(command, run_cli):
    code, out, _ = run_cli(command, "--help")
    assert code == 0 and "usage: dipsd " + command in out
    if command in ("solve", "study", "paper"):
        assert "--time-limit SECONDS" in out and "default" in out


def test_solve_all_methods_json(run_cli):
    import json
    code, out, err = run_cli("solve", example_path(), "--method", "all", "--scenario", "het-M3-3", "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["method"] for r in rows] == ["dipsd", "dipsd-fixed", "sd-nobatch", "ad", "ad-batch", "certify", "exact"]
    best = rows[-1]["throughput_tps"]
    assert rows[-1]["status"] == "optimal" and all(r["throughput_tps"] <= best * (1 + 1e-9) for r in rows)
    certify = rows[-2]
    # certify starts from DiP-SD's plan, so it is never worse; its bound is above the proven optimum
    assert certify["throughput_tps"] >= rows[0]["throughput_tps"] * (1 - 1e-12)
    assert certify["upper_bound_tps"] >= best * (1 - 1e-12)


def test_check_warns_about_unusual_but_allowed_values(tmp_path, run_cli):
    from tests.conftest import good_sheets, write_book

    sheets = good_sheets()
    sheets["users"][0].append("comm_latency_ms")
    sheets["users"][1].append(50_000.0)  # allowed (<= 600000 ms), but far outside the typical range
    path = write_book(tmp_path / "odd.xlsx", sheets)
    code, out, err = run_cli("check", path)
    assert code == 0, err
    assert "NOTE: unusual values" in out and "comm_latency_ms 50000 of user 'a'" in out


def test_extreme_but_valid_values_never_crash_a_method(tmp_path, run_cli):
    """Every numeric column at an end of its allowed range: results (or error rows), never a traceback."""
    from tests.conftest import write_book

    sheets = {
        "scenarios": [["scenario", "verify_c_ms_per_flop", "verify_beta_ms", "memory_cap_bytes", "max_draft_length"],
                      ["x1", 1e-6, 600000, 1e15, 64], ["x2", 1e-15, 0.001, 1e15, 3]],
        "users": [["scenario", "user", "draft_c_ms_per_flop", "draft_beta_ms", "comm_latency_ms", "prefix_len", "alpha"],
                  ["x1", "a", 1e-6, 600000, 600000, 100000, 1], ["x1", "b", 1e-16, 0.0001, 0.0001, 1, 0],
                  ["x2", "a", 1e-6, 600000, 600000, 100000, 0.99], ["x2", "b", 1e-16, 0.0001, 0.0001, 1, 0.5],
                  ["x2", "c", 1e-16, 0.0001, 0.0001, 1, 0.5]],
    }
    path = write_book(tmp_path / "extreme.xlsx", sheets)
    code, out, err = run_cli("solve", path, "--method", "all", "--time-limit", "10", "--json")
    assert code == 0 and "Traceback" not in err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    # no valid input ends in `error` (the contract); a limit may stop a method on these extreme values
    assert len(rows) == 14 and all(r["status"] in ("optimal", "feasible", "time_limit", "infeasible") for r in rows), rows
    for r in rows:
        if r["upper_bound_tps"] is not None:
            assert r["upper_bound_tps"] >= r["throughput_tps"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["certify", "exact", "dipsd", "all"])
def test_json_output_parses_line_by_line_in_a_fresh_process(method):
    """HiGHS prints its banner on the C-level stdout at the first solver object of a process; a
    fresh process must still print nothing but JSON lines on stdout."""
    import json
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "dipsd.cli", "solve", "--method", method, "--scenario", "het-M4-1",
                          "--json", "--time-limit", "20"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
    assert "Running HiGHS" not in run.stdout


@pytest.mark.slow
def test_verbose_shows_tasks_and_milestones_and_keeps_libraries_quiet(tmp_path):
    """``-v``: a line per task started and finished, per DiP-SD round, certify round and Dinkelbach
    iteration; no Pyomo or Dask lines (those start at -vv / -vvv); stdout holds only the answer."""
    import subprocess

    from dipsd.data.generate import generate
    from dipsd.data.writer import save_scenarios

    book = tmp_path / "g.xlsx"
    save_scenarios(book, generate([4], 1, seed=3, max_draft_length=4))
    out = tmp_path / "r.xlsx"
    run = subprocess.run([sys.executable, "-m", "dipsd.cli", "-v", "study", str(book), "--out", str(out), "--methods",
                          "dipsd,certify,exact", "--workers", "1", "--time-limit", "30"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    err = run.stderr
    for method in ("dipsd", "certify", "exact"):
        assert f"× {method}: started" in err and re.search(rf"× {method}: (optimal|feasible)", err), method
    assert "DiP-SD N=" in err and "certify round 0" in err and re.search("Dinkelbach q=|exact: the incumbent", err)
    assert "HiGHS" not in err  # its banner goes to the null device unless solver logs are asked for (-vv)
    assert "pyomo" not in err and "Constructing" not in err and "distributed" not in err
    assert "INFO" not in run.stdout and run.stdout.startswith("dipsd: ")


# ---------------------------------------------------------------- plans and models out (issue 38)
def test_model_writes_the_dinkelbach_milp_and_its_certificate(tmp_path, run_cli):
    import highspy

    code, _, err = run_cli("model", "--scenario", "het-M3-1", "--q", "40", "--out", str(tmp_path / "f.lp"))
    assert code == 0 and (tmp_path / "f.lp").read_text().lstrip().startswith("\\* Source Pyomo"), err
    code, _, err = run_cli("model", "--scenario", "het-M3-1", "--optimal", "--out", str(tmp_path / "f.mps"))
    assert code == 0, err
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(tmp_path / "f.mps"))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.run()
    assert abs(h.getInfo().objective_function_value) <= 1e-6  # F(R*) = 0: the optimum certified by any solver
    for argv, said in ((["--q", "40", "--out", str(tmp_path / "f.mps")], "exists; dipsd does not overwrite it"),
                       (["--q", "40", "--out", str(tmp_path / "f.txt")], "a file ending in .mps or .lp"),
                       (["--q", "40", "--out", str(tmp_path / "no" / "f.lp")], "does not exist")):
        code, _, err = run_cli("model", "--scenario", "het-M3-1", *argv)
        assert code == 2 and said in err and "Traceback" not in err


@pytest.mark.slow
def test_a_study_writes_its_plans_back_as_a_workbook_and_its_results_as_csv(tmp_path, run_cli, monkeypatch):
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("study", "--methods", "dipsd,ad", "--scenario", "het-M3*", "--workers", "1", "--quiet",
                           "--out", "r.xlsx", "--plans-out", "found.xlsx", "--csv")
    assert code == 0, err
    code, out, err = run_cli("evaluate", "found.xlsx", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    from dipsd import read_report

    report = read_report("r.xlsx")["Results"].set_index(["scenario", "method"])
    assert code == 0 and {r["plan"] for r in rows} == {"dipsd"} and len(rows) == 3
    for r in rows:  # the plan read back is valued exactly as the study valued it
        assert r["throughput_tps"] == report.loc[(r["scenario"], "dipsd"), "throughput_tps"]
    csv = pd.read_csv("r-results.csv")
    assert len(csv) == 6 and list(csv.columns) == list(read_report("r.xlsx")["Results"].columns)
    code, _, err = run_cli("study", "--methods", "ad", "--scenario", "het-M3-1", "--out", "s.xlsx", "--plans-out", "found.xlsx")
    assert code == 2 and "exists; dipsd does not overwrite it" in err


def test_the_study_names_its_files_as_the_user_gave_them(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("study", "--methods", "ad", "--scenario", "het-M3-1", "--out", "r.xlsx", "--workers", "1", "--quiet")
    assert code == 0, err
    assert out.splitlines()[-1].startswith("wrote r.xlsx (") and out.splitlines()[-1].endswith(" and r-gaps.png")


def test_parquet_without_pyarrow_is_one_line_before_any_work(tmp_path, run_cli, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    code, _, err = run_cli("study", "--methods", "ad", "--out", str(tmp_path / "r.xlsx"), "--parquet")
    assert code == 2 and "--parquet needs pyarrow" in err and not (tmp_path / "r.xlsx.jsonl").exists()
