"""The MILP reproduces the closed-form evaluator on every plan, not only at optima.

With the integer variables fixed to a plan (through :func:`start_values`, which also checks
that the canonical form of any plan satisfies the symmetry breaking), the remaining LP
minimizes S, so its objective must equal the evaluator's ``U - q S`` of that plan.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from dipsd import Plan, evaluate, paper_scenario
from dipsd.formulation.milp import build_model
from dipsd.formulation.tables import Tables
from tests.solvers.instances import tiny_instances


def random_plan(scenario, rng) -> Plan:
    m = scenario.num_users
    n = int(rng.integers(scenario.min_batches, scenario.max_batches + 1))
    labels = list(range(n)) + [int(rng.integers(0, n)) for _ in range(m - n)]
    rng.shuffle(labels)
    batches = tuple(tuple(i for i in range(m) if labels[i] == b) for b in range(n))
    lengths = tuple(int(rng.integers(1, scenario.max_draft_length + 1)) for _ in range(m))
    return Plan(batches, lengths)


def canonical_lengths(scenario, plan: Plan) -> Plan:
    """Identical users sharing a batch raised to their longest length (as the model requires)."""
    classes = Tables.of(scenario).classes
    cls_of = {m: c for c, members in enumerate(classes) for m in members}
    lengths = list(plan.lengths)
    for batch in plan.batches:
        for c in {cls_of[m] for m in batch}:
            same = [m for m in batch if cls_of[m] == c]
            top = max(lengths[m] for m in same)
            for m in same:
                lengths[m] = top
    return Plan(plan.batches, tuple(lengths))


CASES = []
_rng = np.random.default_rng(7)
for _s in tiny_instances(24, seed=99) + [paper_scenario(5, max_draft_length=6)]:
    for _ in range(3):
        _p = random_plan(_s, _rng)
        if evaluate(_s, _p).feasible:
            CASES.append((_s, _p))


def test_enough_cases():
    assert len(CASES) >= 40


@pytest.mark.slow
@pytest.mark.parametrize("scenario,plan", CASES, ids=[f"{s.name}-{i}" for i, (s, _) in enumerate(CASES)])
def test_fixed_plan_objective_equals_closed_form(scenario, plan):
    plan = canonical_lengths(scenario, plan)
    ev = evaluate(scenario, plan)
    q = 0.7 * ev.ratio  # any q > 0 works; the LP minimizes S for the fixed plan
    model, decoder = build_model(scenario, q=q)
    for var, value in decoder.start(plan).items():
        var.fix(value)
    res = SolverFactory("highs").solve(model, threads=1, raise_exception_on_nonoptimal_result=False, load_solutions=True)
    assert res.termination_condition is TerminationCondition.convergenceCriteriaSatisfied, "canonical plan infeasible in the model"
    assert res.incumbent_objective == pytest.approx(ev.expected_tokens - q * ev.span_ms, rel=1e-9, abs=1e-9)
    assert pyo.value(model.S) * decoder.unit_ms == pytest.approx(ev.span_ms, rel=1e-9)
    back = decoder.plan()
    assert evaluate(scenario, back).ratio == pytest.approx(ev.ratio, rel=1e-12)
    # the same plan up to swapping identical users
    cls_of = {m: c for c, members in enumerate(Tables.of(scenario).classes) for m in members}

    def signature(p):
        return sorted(sorted((cls_of[m], p.lengths[m]) for m in b) for b in p.batches)

    assert signature(back) == signature(plan)


def test_docstring_states_the_math():
    import dipsd.formulation.milp as milp
    for phrase in ("Symmetry breaking", "big-M", "restricted growth", "D_kj", "Bbar_n"):
        assert phrase in milp.__doc__


@pytest.mark.slow
@pytest.mark.parametrize("scenario,plan", CASES[::2], ids=[f"{s.name}-{i}" for i, (s, _) in enumerate(CASES[::2])])
def test_step_models_value_every_plan_in_closed_form(scenario, plan):
    """The x-step (lengths fixed, corner counts included) and the l-step (batches fixed) admit the
    plan and price it exactly: with its integer variables fixed, the LP's S is the plan's span."""
    from dipsd.formulation.steps import build_assignment_model, build_length_model

    t = Tables.of(scenario)
    ev = evaluate(scenario, plan)
    x_model, x_dec = build_assignment_model(t, plan.lengths, plan.num_batches)
    canon = canonical_lengths(scenario, plan)
    l_model, l_dec = build_length_model(t, plan.batches, q=0.5 * ev.ratio)
    for model, decoder, p in ((x_model, x_dec, plan), (l_model, l_dec, canon)):
        for var, value in decoder.start(p).items():
            var.fix(value)
        res = SolverFactory("highs").solve(model, threads=1, raise_exception_on_nonoptimal_result=False, load_solutions=True)
        assert res.termination_condition is TerminationCondition.convergenceCriteriaSatisfied, model.name
        assert pyo.value(model.S) * decoder.unit_ms == pytest.approx(evaluate(scenario, p).span_ms, rel=1e-9), model.name
        assert evaluate(scenario, decoder.plan()).ratio == pytest.approx(evaluate(scenario, p).ratio, rel=1e-12)
