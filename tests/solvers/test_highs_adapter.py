"""The Pyomo/HiGHS adapter: fails if Pyomo's persistent HiGHS internals stop accepting a MIP start, and shows
the HiGHS LP time-limit quirk that run_for works around."""

from __future__ import annotations

import io
import re

import highspy
import numpy as np
import pytest
from pyomo.contrib.solver.common.factory import SolverFactory

from dipsd.data.generate import generate
from dipsd.formulation.evaluate import evaluate
from dipsd.formulation.milp import build_model
from dipsd.solvers.milp.highs_adapter import manual_parameter_updates, pyomo_supported, run_for, set_mip_start
from dipsd.solvers.start import simple_plan


def test_pyomo_version_is_one_the_adapter_was_tested_against():
    assert pyomo_supported(), "Pyomo changed: check solvers/milp/highs_adapter.py and extend TESTED_PYOMO"


def test_highs_reports_the_start_as_its_first_incumbent():
    s = generate([6], 1, seed=1)[0]
    plan = simple_plan(s)
    ev = evaluate(s, plan)
    q = 0.9 * ev.ratio  # below the start's ratio: the start has F(q) = U - q S > 0
    model, decoder = build_model(s, q=q)
    solver = SolverFactory("highs")
    solver.set_instance(model)
    manual_parameter_updates(solver)
    assert set_mip_start(solver, decoder.start(plan))
    log = io.StringIO()
    res = solver.solve(model, time_limit=30, rel_gap=0.0, abs_gap=0.0, threads=1, load_solutions=False,
                       raise_exception_on_nonoptimal_result=False, tee=[log],
                       solver_options={"mip_max_nodes": 0, "presolve": "off"})
    found = re.search(r"MIP start solution is feasible: objective value is ([-+0-9.eE]+)", log.getvalue())
    assert found, "HiGHS did not take the MIP start"
    value = ev.expected_tokens - q * ev.span_ms
    assert float(found.group(1)) == pytest.approx(value, rel=1e-7)
    assert res.incumbent_objective >= value - 1e-7


def _busy_lp(seed: int = 0):
    rng = np.random.default_rng(seed)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", "off")
    n, m = 600, 250
    h.addVars(n, np.zeros(n), np.full(n, 10.0))
    for _ in range(m):
        idx = rng.choice(n, 30, replace=False).astype(np.int32)
        h.addRow(-highspy.kHighsInf, 5.0, 30, idx, rng.random(30))
    return h, rng, n


def test_an_lp_time_limit_counts_the_objects_total_run_time_and_run_for_gives_each_run_its_own():
    """HiGHS's quirk (:func:`run_for`): once a persistent LP's total run time is past ``time_limit``,
    a later solve stops at once with no iteration; ``run_for`` gives the later solve its seconds."""
    h, rng, n = _busy_lp()
    cols = np.arange(n, dtype=np.int32)
    h.changeColsCost(n, cols, -rng.random(n))
    h.run()
    spent = h.getRunTime()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal and spent > 0
    h.setOptionValue("time_limit", 0.9 * spent)  # a limit this one solve would meet, but not the total
    h.changeColsCost(n, cols, -rng.random(n))
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kTimeLimit and h.getInfo().simplex_iteration_count == 0
    run_for(h, 3600.0)
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal and h.getInfo().simplex_iteration_count > 0
    h.changeColsCost(n, cols, -rng.random(n))
    run_for(h, 0.0)  # nothing left: stops
    assert h.getModelStatus() == highspy.HighsModelStatus.kTimeLimit
