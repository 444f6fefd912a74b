"""The Pyomo/HiGHS adapter: fails if Pyomo's persistent HiGHS internals stop accepting a MIP start."""

from __future__ import annotations

import io
import re

import pytest
from pyomo.contrib.solver.common.factory import SolverFactory

from dipsd.data.generate import generate
from dipsd.formulation.evaluate import evaluate
from dipsd.formulation.milp import build_model
from dipsd.solvers.highs_adapter import manual_parameter_updates, pyomo_supported, set_mip_start
from dipsd.solvers.start import simple_plan


def test_pyomo_version_is_one_the_adapter_was_tested_against():
    assert pyomo_supported(), "Pyomo changed: check dipsd/solvers/highs_adapter.py and extend TESTED_PYOMO"


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
