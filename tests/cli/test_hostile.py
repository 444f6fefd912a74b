"""Hostile environments, round 3 (issue 20): planted symlinks, files that are not ours, malformed
checkpoints, odd output paths, unsafe text, duplicates, sizes, look-alike names, API/CLI
agreement, SIGTERM.  Each test reproduces a failure the issue reports and holds the promise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import openpyxl
import pytest

import dipsd
from dipsd import InputError, load_workbook
from dipsd.data.generate import generate
from dipsd.data.writer import save_scenarios
from dipsd.outputs import atomic_write
from tests.conftest import good_sheets, write_book

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture
def tiny_book(tmp_path):
    path = tmp_path / "tiny.xlsx"
    save_scenarios(path, generate([3], 2, seed=1, max_draft_length=3))
    return str(path)


# 1. predictable temporary files ------------------------------------------------------------
def test_a_planted_symlink_is_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "out.jsonl"
    for pid in range(os.getpid() - 2, os.getpid() + 3):  # every name the old scheme would have used
        os.symlink(victim, tmp_path / f".out.jsonl.{pid}.tmp")
    with atomic_write(str(target)) as fh:
        fh.write("new")
    assert victim.read_text() == "precious" and target.read_text() == "new" and not target.is_symlink()
    link = tmp_path / "link.jsonl"
    os.symlink(victim, link)
    with pytest.raises(InputError, match="not a regular file"):
        with atomic_write(str(link)) as fh:
            fh.write("x")
    assert victim.read_text() == "precious"


# 2. overwriting what is not ours -------------------------------------------------------------
@pytest.mark.slow
def test_an_unrelated_file_at_out_is_never_replaced(tiny_book, tmp_path, run_cli):
    mine = tmp_path / "mydata.xlsx"
    mine.write_bytes(b"my own workbook")
    code, _, err = run_cli("study", tiny_book, "--out", str(mine), "--methods", "ad", "--quiet")
    assert code == 2 and "is not the output of a study here" in err and "--fresh" in err
    assert mine.read_bytes() == b"my own workbook" and not (tmp_path / "mydata.xlsx.jsonl").exists()
    code, _, err = run_cli("study", tiny_book, "--out", str(mine), "--methods", "ad", "--quiet", "--fresh")
    assert code == 0, err
    (aside,) = tmp_path.glob("mydata.xlsx.old-*")
    assert aside.read_bytes() == b"my own workbook"


def test_paper_never_rewrites_its_scenarios_before_a_refusal(tmp_path, run_cli):
    out = tmp_path / "P.xlsx"
    other = tmp_path / "P.xlsx.scenarios.xlsx"
    other.write_bytes(b"someone else's")
    code, _, err = run_cli("paper", "--out", str(out), "--max-users", "2", "--alphas", "0.7", "--quiet")
    assert code == 2 and other.read_bytes() == b"someone else's"
    code, _, err = run_cli("paper", "--out", str(out), "--max-users", "2", "--alphas", "0.7,0.7", "--quiet")
    assert code == 2 and "each alpha once" in err


# 4. malformed checkpoint lines ---------------------------------------------------------------
@pytest.mark.parametrize("line,fragment", [
    (b"\xff\xfe not utf-8\n", "not UTF-8"),
    (b"[" * 100_000 + b"\n", "task record"),
    (b'{"scenario": "x", "method": "ad", "status": "feasible", "throughput_tps": ' + b"9" * 5000 + b"}\n", "task record"),
])
@pytest.mark.slow
def test_malformed_checkpoint_lines_are_refused_naming_the_line(tiny_book, tmp_path, run_cli, line, fragment):
    out = str(tmp_path / "r.xlsx")
    assert run_cli("study", tiny_book, "--out", out, "--methods", "ad", "--quiet")[0] == 0
    with open(out + ".jsonl", "ab") as fh:
        fh.write(line)
    kept = open(out + ".jsonl", "rb").read()
    code, _, err = run_cli("study", tiny_book, "--out", out, "--methods", "ad", "--quiet", "--resume")
    assert code == 2 and "line 4" in err and fragment in err and "Traceback" not in err
    assert open(out + ".jsonl", "rb").read() == kept


# 6. output paths the pre-check must refuse --------------------------------------------------------
def test_odd_output_paths_are_refused_before_any_work(tiny_book, tmp_path, run_cli):
    os.mkdir(tmp_path / "r.xlsx.jsonl.lock")
    code, _, err = run_cli("study", tiny_book, "--out", str(tmp_path / "r.xlsx"), "--methods", "ad", "--quiet")
    assert code == 2 and "lock file" in err
    code, _, err = run_cli("study", tiny_book, "--out", str(tmp_path / ("x" * 240 + ".xlsx")), "--methods", "ad", "--quiet")
    assert code == 2 and "bytes long" in err
    os.mkfifo(tmp_path / "f.xlsx.jsonl")
    code, _, err = run_cli("study", tiny_book, "--out", str(tmp_path / "f.xlsx"), "--methods", "ad", "--quiet")
    assert code == 2 and "not a regular file" in err


# 7. text in reports is XML-safe --------------------------------------------------------------
def test_report_text_is_xml_safe_whatever_the_file_names(tiny_book, tmp_path, run_cli):
    odd = os.fsdecode(b"r\xff\x07.xlsx") if sys.platform != "darwin" else "r.xlsx"
    out = str(tmp_path / odd)
    code, _, err = run_cli("study", tiny_book, "--out", out, "--methods", "ad", "--quiet")
    assert code == 0, err
    run = dipsd.read_report(out)["Run"]
    assert len(run) > 5


def test_names_are_limited_and_normalized(tmp_path):
    sheets = good_sheets()
    sheets["users"][1][1] = "x" * 256
    with pytest.raises(dipsd.WorkbookError, match="at most 255 characters"):
        load_workbook(write_book(tmp_path / "long.xlsx", sheets))
    sheets = good_sheets()
    sheets["users"][1][1], sheets["users"][2][1] = "caf\u00e9", "cafe\u0301"  # NFC and NFD
    with pytest.raises(dipsd.WorkbookError, match="unique within scenario"):
        load_workbook(write_book(tmp_path / "nfd.xlsx", sheets))
    for trick in ("u1\u200b", "\u202eu1"):
        sheets = good_sheets()
        sheets["users"][1][1] = trick
        with pytest.raises(dipsd.WorkbookError, match="invisible or direction-changing"):
            load_workbook(write_book(tmp_path / "trick.xlsx", sheets))


@pytest.mark.parametrize("text", ["1_024", "\u0661\u0662", "\uff11\uff12", "1,000"])
def test_numbers_are_plain_decimal_text(tmp_path, text):
    sheets = good_sheets()
    sheets["users"][1][3] = text  # prefix_len
    with pytest.raises(dipsd.WorkbookError, match="written plainly"):
        load_workbook(write_book(tmp_path / "n.xlsx", sheets))


# 8. duplicates ------------------------------------------------------------------------------------
def test_duplicate_methods_are_refused(tiny_book, tmp_path, run_cli):
    code, _, err = run_cli("study", tiny_book, "--out", str(tmp_path / "d.xlsx"), "--methods", "ad,ad,dipsd", "--quiet")
    assert code == 2 and "listed twice" in err and not (tmp_path / "d.xlsx.jsonl").exists()


# 9. sizes before checks ------------------------------------------------------------------------
@pytest.mark.parametrize("users", [200, 1500])
def test_enumerate_refuses_large_instances_at_once(users, monkeypatch):
    """Refused from the sizes alone: not one partition is generated (nothing proportional to the size)."""
    from dipsd.solvers import brute

    def never(*args, **kwargs):
        raise AssertionError("enumeration started")

    monkeypatch.setattr(brute, "partitions", never)
    r = dipsd.solve(dipsd.paper_scenario(users), "enumerate")
    assert r.status.value == "error" and "use method 'exact'" in r.message


# 11. API and CLI agree -----------------------------------------------------------------------------
def test_api_arguments_are_validated_like_the_cli(tiny_book, tmp_path):
    for bad in (float("inf"), "x", 0, True):
        with pytest.raises(InputError, match="time_limit"):
            dipsd.run_study(tiny_book, methods=["ad"], time_limit=bad, progress=False)
    with pytest.raises(InputError, match="not a dipsd study report"):
        dipsd.read_report(tiny_book)
    foreign = tmp_path / "foreign.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "Summary"
    wb.active.append(["hello"])
    wb.save(foreign)
    with pytest.raises(InputError, match="not a dipsd study report"):
        dipsd.read_report(str(foreign))


# 12. SIGTERM and odd arguments ---------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_ends_a_study_like_ctrl_c(tmp_path):
    book = tmp_path / "b.xlsx"
    save_scenarios(book, generate([12, 14], 2, seed=3))
    out = tmp_path / "r.xlsx"
    proc = subprocess.Popen([sys.executable, "-m", "dipsd.cli", "study", str(book), "--out", str(out), "--methods",
                             "ad,exact", "--workers", "1", "--time-limit", "60"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    deadline = time.time() + 60
    while time.time() < deadline and (not (out.parent / "r.xlsx.jsonl").exists()
                                      or len(open(str(out) + ".jsonl").read().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-2000:]
    assert "--resume" in stderr and "Traceback" not in stderr
    assert out.exists() and len(dipsd.read_report(str(out))["Results"]) >= 2


def test_generate_refuses_a_negative_seed(tmp_path, run_cli):
    code, _, err = run_cli("generate", str(tmp_path / "g.xlsx"), "--seed", "-1")
    assert code == 2 and "0..4294967295" in err and "Traceback" not in err


# 5. disk full / file too large while writing the report ------------------------------------------
@pytest.mark.slow
def test_a_report_that_cannot_be_written_is_one_clear_line_and_exit_74(tiny_book, tmp_path):
    import resource

    out = tmp_path / "r.xlsx"

    def small_files():  # RLIMIT_FSIZE: the checkpoint fits, the report does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    run = subprocess.run([sys.executable, "-m", "dipsd.cli", "study", tiny_book, "--out", str(out), "--methods", "ad,dipsd",
                          "--workers", "1", "--quiet"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, preexec_fn=small_files, timeout=300)
    assert run.returncode == 74, run.stderr[-2000:]
    assert "could not write" in run.stderr and "--resume" in run.stderr and "Traceback" not in run.stderr
    lines = open(str(out) + ".jsonl").read().splitlines()
    assert len(lines) == 1 + 4 and all(json.loads(line) for line in lines)  # every finished task kept
    assert not out.exists()
    code = subprocess.run([sys.executable, "-m", "dipsd.cli", "study", tiny_book, "--out", str(out), "--methods", "ad,dipsd",
                           "--workers", "1", "--quiet", "--resume"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT}, timeout=300).returncode
    assert code == 0 and out.exists()


# 3. a hung worker never hangs the study ----------------------------------------------------------
@pytest.mark.slow
def test_a_task_with_no_answer_is_stopped_and_the_study_ends(tiny_book, tmp_path, monkeypatch):
    from dipsd import study
    from dipsd.solvers.catalog import register_method
    from dipsd.solvers.registry import METHODS
    from tests.solvers import user_methods as um

    monkeypatch.setattr(study.scheduler, "grace", lambda time_limit: 1.0)
    register_method("stuck", um.never_answers)
    try:
        book = load_workbook(tiny_book)
        outcome = study.run_study(book, ["ad", "stuck", "dipsd"], time_limit=1.0, checkpoint_path=str(tmp_path / "c.jsonl"),
                                  workers=2)
    finally:
        METHODS.pop("stuck", None)
    by = {(r.scenario, r.method): r for r in outcome.records}
    assert len(by) == 3 * len(book.scenarios)
    for s in book.scenarios:
        assert by[(s.name, "stuck")].status.value == "error" and "no answer after" in by[(s.name, "stuck")].message
        assert by[(s.name, "ad")].status.value == "feasible" and by[(s.name, "dipsd")].status.value == "feasible"


# issue 37: studies survive their methods ------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))  # a worker's death races the queue: repeated
def test_a_worker_killed_with_tasks_queued_costs_only_its_task(tiny_book, tmp_path, attempt):
    """os._exit in a method (as the out-of-memory killer would end the worker) while other tasks wait:
    that task is retried, then an error row; every other task finishes; the study and its report too."""
    out = tmp_path / "r.xlsx"
    code = subprocess.run([sys.executable, "-c", STUDY_WITH_USER_METHODS, tiny_book, str(out), "dies,ad,dipsd,exits,interrupts"],
                          cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=600)
    assert code.returncode == 0 and "Traceback" not in code.stderr, code.stderr[-3000:]
    records = {(r["scenario"], r["method"]): r for r in map(json.loads, (tmp_path / "r.xlsx.jsonl").read_text().splitlines()[1:])}
    assert len(records) == 2 * 5 and out.exists()
    for (_, method), r in records.items():
        if method in ("ad", "dipsd"):
            assert r["status"] == "feasible", r["message"]
        else:
            assert r["status"] == "error", r
    dead = [r for (s, m), r in records.items() if m == "dies"]
    assert all("worker process died" in r["message"] for r in dead)
    assert all("SystemExit" in r["message"] or "sys.exit" in r["message"] for (s, m), r in records.items() if m == "exits")
    assert all("KeyboardInterrupt" in r["message"] for (s, m), r in records.items() if m == "interrupts")


STUDY_WITH_USER_METHODS = """
import sys
from dipsd.solvers.catalog import register_method
from dipsd.cli import main
from tests.solvers import user_methods as um
for name in sys.argv[3].split(","):
    if hasattr(um, name):
        register_method(name, getattr(um, name))
sys.exit(main(["study", sys.argv[1], "--out", sys.argv[2], "--methods", sys.argv[3], "--workers", "2", "--time-limit", "20",
               "--quiet"]))
"""


def test_a_method_that_prints_never_breaks_solve_json(tiny_book, run_cli):
    from dipsd.solvers.catalog import register_method
    from dipsd.solvers.registry import METHODS
    from tests.solvers import user_methods as um

    register_method("prints", um.prints)
    try:
        code, out, err = run_cli("solve", tiny_book, "--method", "prints", "--json")
    finally:
        METHODS.pop("prints", None)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 2 and all(r["status"] == "feasible" for r in rows)


# issue 37: limits that hold ---------------------------------------------------------------------------
def test_threads_beyond_the_cores_are_refused(tiny_book, run_cli):
    from dipsd.solvers.milp.solvers import available_cores, use

    code, _, err = run_cli("solve", tiny_book, "--method", "dipsd", "--threads", "4096")
    assert code == 2 and f"expected 1..{available_cores()} (the cores available here)" in err and "Traceback" not in err
    with pytest.raises(InputError, match="threads: a whole number from 1"):
        with use("highs", threads=100_000):
            pass


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["silent", "http"])
def test_a_scheduler_address_that_is_not_a_dask_scheduler_is_one_line(tiny_book, tmp_path, run_cli, monkeypatch, kind):
    """A port that accepts and never answers, and a web server: one line, exit 2, within the connect limit."""
    import http.server
    import socket
    import threading

    from dipsd.study import backends

    monkeypatch.setattr(backends, "CONNECT_S", 2.0)
    if kind == "silent":
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        accepted = []
        threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    else:
        class Quiet(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

        web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        port = web.server_address[1]
        threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        code, _, err = run_cli("study", tiny_book, "--out", str(tmp_path / "r.xlsx"), "--methods", "ad", "--quiet",
                               "--scheduler", f"tcp://127.0.0.1:{port}")
    finally:
        if kind == "silent":
            server.close()
        else:
            web.shutdown()
    assert code == 2 and "Traceback" not in err and f"--scheduler tcp://127.0.0.1:{port}: " in err
    assert len([line for line in err.splitlines() if line.startswith("dipsd: error")]) == 1


# issue 37, items 9 and 10 ------------------------------------------------------------------------------
def test_a_plan_length_above_the_users_own_limit_is_refused_at_load(tmp_path, run_cli):
    sheets = good_sheets()
    sheets["users"] = [["scenario", "user", "max_draft_length"], ["s1", "a", 2], ["s1", "b", None], ["s2", "x", None]]
    sheets["plans"] = [["scenario", "plan", "user", "batch", "draft_length"], ["s1", "p", "a", 1, 3], ["s1", "p", "b", 2, 3]]
    code, _, err = run_cli("check", write_book(tmp_path / "p.xlsx", sheets))
    assert code == 2 and "Traceback" not in err
    assert "sheet 'plans', row 2, column 'draft_length': bad value '3': a draft length in 1..2 (max_draft_length of " \
           "user 'a'" in err and "plan 'p' of scenario 's1' cannot be used" in err


def test_a_plan_name_with_a_comma_is_refused(tmp_path, run_cli):
    sheets = good_sheets()
    sheets["plans"] = [["scenario", "plan", "user", "batch", "draft_length"], ["s1", "a,b", "a", 1, 1], ["s1", "a,b", "b", 2, 1]]
    code, _, err = run_cli("check", write_book(tmp_path / "p.xlsx", sheets))
    assert code == 2 and "sheet 'plans', row 2, column 'plan': bad value 'a,b': a plan name without commas" in err


def test_a_finished_study_with_plans_for_one_scenario_is_not_called_interrupted(tmp_path, run_cli):
    sheets = good_sheets()
    sheets["plans"] = [["scenario", "plan", "user", "batch", "draft_length"], ["s1", "p", "a", 1, 1], ["s1", "p", "b", 2, 1]]
    code, out, err = run_cli("study", write_book(tmp_path / "p.xlsx", sheets), "--out", str(tmp_path / "r.xlsx"),
                             "--methods", "ad,plan:p", "--workers", "1", "--quiet")
    assert code == 0, err
    assert "scenarios done" not in out


def test_a_scenario_name_with_pattern_characters_selects_itself(tmp_path, run_cli):
    sheets = {"scenarios": [["scenario"], ["M1"], ["M[1]"]],
              "users": [["scenario", "user"], ["M1", "a"], ["M[1]", "a"]]}
    code, out, err = run_cli("study", write_book(tmp_path / "m.xlsx", sheets), "--out", str(tmp_path / "r.xlsx"),
                             "--methods", "ad", "--scenario", "M[1]", "--workers", "1", "--quiet")
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "r.xlsx.jsonl").read_text().splitlines()[1:]]
    assert [r["scenario"] for r in rows] == ["M[1]"]


def test_a_deleted_current_folder_is_one_line(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    run = subprocess.run(f"cd {gone} && rmdir {gone} && {sys.executable} -m dipsd.cli study --out r.xlsx", shell=True,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "the current folder no longer exists" in run.stderr


def test_stdout_that_cannot_be_written_is_exit_74(tiny_book):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "w") as full:
        run = subprocess.run([sys.executable, "-m", "dipsd.cli", "solve", tiny_book, "--method", "ad", "--json"], stdout=full,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert run.returncode == 74 and "Traceback" not in run.stderr and "standard output cannot be written" in run.stderr


def test_a_report_edited_by_hand_is_refused_naming_the_cell(tiny_book, tmp_path, run_cli):
    out = tmp_path / "r.xlsx"
    code, _, err = run_cli("study", tiny_book, "--out", str(out), "--methods", "ad", "--workers", "1", "--quiet")
    assert code == 0, err
    wb = openpyxl.load_workbook(out)
    ws = wb["Results"]
    column = [c.value for c in ws[1]].index("iterations") + 1
    ws.cell(row=3, column=column).value = "2.5 rounds"
    wb.save(tmp_path / "edited.xlsx")
    with pytest.raises(InputError, match=r"sheet 'Results', row 3, column 'iterations': bad value '2.5 rounds': a whole number"):
        dipsd.read_report(str(tmp_path / "edited.xlsx"))


def _plugin(folder, version: str, target: str = "tests.solvers.user_methods:claims_optimal"):
    """An installed package declaring the method 'claims' in dipsd's entry-point group (a dist-info on the path)."""
    info = folder / "hostile_plugin-0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: hostile-plugin\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[dipsd.methods]\nclaims = {target}\n")


@pytest.mark.slow
def test_an_installed_plugin_proves_nothing_and_its_upgrade_is_not_resumed(tiny_book, tmp_path):
    """Issue 37, cases 1 and 6 end to end: a plugin's poor plan called optimal is recorded as feasible (no proven
    gap rests on it), and the plugin upgraded from 0.1 to 0.2 is a difference --resume refuses."""
    site = tmp_path / "site"
    site.mkdir()
    _plugin(site, "0.1")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), ROOT])}
    out = tmp_path / "r.xlsx"
    argv = [sys.executable, "-m", "dipsd.cli", "study", tiny_book, "--out", str(out), "--methods", "claims,ad", "--workers", "1",
            "--quiet"]
    first = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "r.xlsx.jsonl").read_text().splitlines()]
    assert rows[0]["user_methods"]["claims"].startswith("package hostile-plugin 0.1; ")
    claims = [r for r in rows[1:] if r["method"] == "claims"]
    assert claims and all(r["status"] == "feasible" and "said optimal" in r["message"] for r in claims)
    said = first.stdout.split("\n\n")[0]
    assert "(proven" not in said and "optimal (within" not in said  # no sentence states a proven gap or an optimum
    _plugin(site, "0.2")
    again = subprocess.run(argv + ["--resume"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 2 and "user_methods" in again.stderr and "Traceback" not in again.stderr
