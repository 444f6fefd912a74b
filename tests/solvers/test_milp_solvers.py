"""Any MILP solver Pyomo speaks: exact and DiP-SD's steps with SCIP (and Gurobi where gurobipy is
importable) against HiGHS and brute force; a missing solver is one line before any work."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from dipsd.data.generate import generate
from dipsd.errors import InputError
from dipsd.solvers.brute import solve_enumerate
from dipsd.solvers.milp import solvers as milp_solvers
from dipsd.solvers.registry import Start, run_method
from dipsd.solvers.results import Status
from tests.solvers.instances import odd_instances, tie_free_instances

SOLVERS = ["scip", pytest.param("gurobi", marks=pytest.mark.skipif(
    importlib.util.find_spec("gurobipy") is None, reason="gurobipy is not installed (pip install -e '.[gurobi]')"))]
INSTANCES = generate([3, 4, 5], 1, seed=21, max_draft_length=4) + odd_instances(12, 22)
TIE_FREE = tie_free_instances(8, seed=4)


@pytest.mark.slow
@pytest.mark.parametrize("solver", SOLVERS)
def test_exact_and_dipsd_match_highs_and_brute_force(solver):
    for s in INSTANCES:
        best = solve_enumerate(s)
        with milp_solvers.use("highs"):
            ref = {m: run_method(m, s, time_limit=60) for m in ("dipsd", "sd-nobatch")}
        with milp_solvers.use(solver):
            assert milp_solvers.current().name == solver
            exact = run_method("exact", s, time_limit=60, start=Start(ref["dipsd"].plan))
            dip = {m: run_method(m, s, time_limit=60) for m in ("dipsd", "sd-nobatch")}
        if best.status is Status.OPTIMAL:
            assert exact.status is Status.OPTIMAL, (s.name, exact.message)
            assert exact.throughput_tps >= best.throughput_tps * (1 - 1e-9), s.name
            assert exact.upper_bound_tps >= best.throughput_tps, s.name
        for m in ("dipsd", "sd-nobatch"):
            assert dip[m].status is ref[m].status, (s.name, m)
            if ref[m].throughput_tps is not None:
                assert dip[m].throughput_tps <= best.throughput_tps * (1 + 1e-12)
        # sd-nobatch is one l-step on the singletons: its optimum is unique, whatever the solver (the contract's 1e-9)
        if ref["sd-nobatch"].throughput_tps is not None:
            assert dip["sd-nobatch"].throughput_tps == pytest.approx(ref["sd-nobatch"].throughput_tps, rel=1e-9), s.name
    # DiP-SD itself may part at a tie between equally good step solutions; where no step has a tie, it is
    # what its definition gives (both steps by enumeration), with any solver, to the contract's 1e-9
    with milp_solvers.use(solver):
        for s, ref_tps, ref_fixed in TIE_FREE:
            assert run_method("dipsd", s, time_limit=60).throughput_tps == pytest.approx(1000 * ref_tps, rel=1e-9), s.name
            assert run_method("dipsd-fixed", s, time_limit=60).throughput_tps == pytest.approx(1000 * ref_fixed, rel=1e-9)


def test_a_missing_solver_is_one_line(monkeypatch):
    broken = milp_solvers.MilpSolver("scip", "no_such_solver", "pyscipopt", "scip")
    monkeypatch.setitem(milp_solvers.SOLVERS, "scip", broken)
    with pytest.raises(InputError, match=r"pip install -e '\.\[scip\]'"):
        milp_solvers.check("scip")
    with pytest.raises(InputError, match="unknown solver 'cplex'"):
        milp_solvers.check("cplex")


@pytest.mark.slow
def test_the_cli_uses_the_solver_and_records_it(tmp_path):
    run = subprocess.run([sys.executable, "-m", "dipsd.cli", "solve", "--method", "exact", "--solver", "scip",
                          "--scenario", "het-M4-1", "--json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    (line,) = run.stdout.splitlines()
    assert json.loads(line)["status"] == "optimal"
    from dipsd.data.writer import save_scenarios

    book = tmp_path / "b.xlsx"
    save_scenarios(book, generate([3], 1, seed=2, max_draft_length=3))
    out = tmp_path / "r.xlsx"
    args = [sys.executable, "-m", "dipsd.cli", "study", str(book), "--out", str(out), "--methods", "dipsd,exact",
            "--workers", "1", "--quiet"]
    assert subprocess.run(args + ["--solver", "scip"], capture_output=True, text=True, timeout=300).returncode == 0
    header = json.loads(open(str(out) + ".jsonl").readline())
    assert header["solver"] == "scip" and header["solver_version"] != "not installed"
    again = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "solver" in again.stderr
    import dipsd

    run_sheet = dict(dipsd.read_report(str(out))["Run"].values.tolist())
    assert run_sheet["MILP solver"].startswith("scip (pyscipopt")


@pytest.mark.slow
def test_threads_for_a_single_solve_give_the_same_answers():
    """`solve --threads 2` (a process's one HiGHS thread count, certify's LPs included: a pool made with
    another count returned empty dives) proves the same optima as one thread."""
    def run(threads):
        out = subprocess.run([sys.executable, "-m", "dipsd.cli", "solve", "--method", "all", "--threads", str(threads),
                              "--scenario", "het-M5-1", "--scenario", "het-M6-2", "--json"], capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        assert all(r["status"] != "error" for r in rows), [r["message"] for r in rows if r["status"] == "error"]
        return {(r["scenario"], r["method"]): r for r in rows}

    one, two = run(1), run(2)
    for key in one:
        if key[1] in ("exact", "certify"):
            assert two[key]["status"] == "optimal" and two[key]["throughput_tps"] == pytest.approx(one[key]["throughput_tps"], rel=1e-9)


def test_check_needs_no_earlier_import():
    """The solver check registers Pyomo's solvers itself (it once said 'highspy is not installed' when
    nothing had imported pyomo.environ before it)."""
    code = "from dipsd.solvers.milp.solvers import check; print(check('highs').name, check('scip').name)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.split() == ["highs", "scip"], run.stderr[-1000:]
