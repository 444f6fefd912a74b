"""DiP-SD and the baselines: against a plain re-implementation, the optimum and hand values."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from dipsd import Plan, evaluate, paper_scenario
from dipsd.data.generate import generate
from dipsd.formulation.evaluate import greedy_batches
from dipsd.formulation.steps import build_assignment_model
from dipsd.formulation.tables import Tables
from dipsd.solvers import dipsd as D
from dipsd.solvers import steps as step_mod
from dipsd.solvers.baselines import solve_ad, solve_ad_batch, solve_sd_nobatch
from dipsd.solvers.deadline import Deadline
from dipsd.solvers.exact import solve_exact
from dipsd.solvers.milp.session import MilpSession
from dipsd.solvers.registry import METHODS, run_method
from dipsd.solvers.results import Status
from tests.solvers.instances import assert_consistent, rg_partitions, tie_free_instances, tiny_instances

TIE_FREE = tie_free_instances()


FAST = {0, 1, 5, 12, 17}
"""The cases in the fast default run: three need more than one x-step/l-step round (0, 12, 17: DiP-SD
stopped after one round gives less there), two are cheap."""


@pytest.mark.parametrize("s,ref,ref_fixed", [pytest.param(*c, marks=() if i in FAST else pytest.mark.slow, id=c[0].name)
                                             for i, c in enumerate(TIE_FREE)])
def test_dipsd_matches_its_definition(s, ref, ref_fixed):
    got = D.solve_dipsd(s)
    assert got.throughput_tps == pytest.approx(1000 * ref, rel=1e-9)
    fixed = D.solve_dipsd(s, fixed_lengths=True)
    assert fixed.throughput_tps == pytest.approx(1000 * ref_fixed, rel=1e-9)
    assert set(fixed.plan.lengths) == {s.start_length}
    assert_consistent(s, got)
    assert_consistent(s, fixed)


def test_dipsd_is_deterministic():
    s = tiny_instances(8, seed=5)[6]
    a, b = D.solve_dipsd(s), D.solve_dipsd(s)
    assert a.plan == b.plan and a.throughput_tps == b.throughput_tps


def test_a_run_whose_time_runs_out_between_steps_says_time_limit(monkeypatch):
    """The steps finish without touching the limit, but the time runs out after the first l-step:
    the alternation is not settled (or an N that could win is left), so the run is stopped, not
    finished; without the limit the same scenario takes more steps and ends feasible."""
    (s,) = generate([20], 1, seed=4)
    full = D.solve_dipsd(s)
    assert full.status is Status.FEASIBLE and len(full.trace) > 1
    inner = D.l_step

    def then_expire(scenario, tables, current, clock):
        got = inner(scenario, tables, current, clock)
        clock.limit = 0.0  # the deadline passes right after this step (which finished)
        return got

    monkeypatch.setattr(D, "l_step", then_expire)
    cut = D.solve_dipsd(s)
    assert cut.status is Status.TIME_LIMIT and cut.message == "time limit: stopped before the alternation finished"
    assert len(cut.trace) == 1 and cut.plan is not None and cut.throughput_tps <= full.throughput_tps


@pytest.mark.slow
@pytest.mark.parametrize("s", tiny_instances(16, seed=42), ids=lambda s: s.name)
def test_every_method_feasible_consistent_and_below_the_optimum(s):
    optimum = solve_exact(s)
    results = {name: run_method(name, s, time_limit=60) for name in METHODS if name not in ("exact", "enumerate")}
    if optimum.status is Status.INFEASIBLE:
        assert results["dipsd"].status is Status.INFEASIBLE
        return
    for name, r in results.items():
        if r.plan is not None:
            assert_consistent(s, r)
            assert r.throughput_tps <= optimum.throughput_tps * (1 + 1e-9), name
    dip = results["dipsd"].throughput_tps
    assert results["dipsd-fixed"].throughput_tps <= dip * (1 + 1e-12)
    if s.max_batches == s.num_users:
        assert results["sd-nobatch"].throughput_tps <= dip * (1 + 1e-12)


@pytest.mark.slow
def test_x_step_is_exact_on_small_cases():
    for s in tiny_instances(12, seed=8):
        t = Tables.of(s)
        lengths = tuple((i % s.max_draft_length) + 1 for i in range(s.num_users))
        for n in s.batch_range:
            evs = [evaluate(s, Plan(p, lengths)) for p in rg_partitions(s.num_users, n)]
            feasible = [e.span_ms for e in evs if e.feasible]
            got = D.x_step(s, t, lengths, n, Deadline(60))
            if not feasible:
                assert got is None
            else:
                assert got.span_ms == pytest.approx(min(feasible), rel=1e-9)


def test_l_step_is_exact_on_small_cases():
    for s in tiny_instances(12, seed=9):
        if s.max_draft_length ** s.num_users > 5000:
            continue
        t = Tables.of(s)
        batches = tuple((i,) for i in range(s.num_users)) if s.num_users <= s.max_batches else None
        if batches is None:
            continue
        start = evaluate(s, Plan(batches, (1,) * s.num_users))
        got = D.l_step(s, t, start, Deadline(60))
        best = max(evaluate(s, Plan(batches, l)).ratio for l in itertools.product(range(1, s.max_draft_length + 1), repeat=s.num_users))
        assert got.ratio == pytest.approx(best, rel=1e-9)


def test_bound_for_n_is_valid():
    for s in tiny_instances(10, seed=10):
        t = Tables.of(s)
        for n in s.batch_range:
            b = D.bound_for_n(t, n)
            for p in rg_partitions(s.num_users, n):
                for l in [(1,) * s.num_users, (s.max_draft_length,) * s.num_users]:
                    assert evaluate(s, Plan(p, l)).ratio <= b


def test_some_n_memory_infeasible_still_works():
    t = paper_scenario(1).target
    cap = t.parameter_bytes + t.kv_bytes(2, 512) + 1  # at most 2 users per batch
    s = paper_scenario(5, memory_cap_bytes=cap)  # N = 2 infeasible, N >= 3 feasible
    r = D.solve_dipsd(s)
    assert r.status is Status.FEASIBLE and r.plan.num_batches >= 3
    assert_consistent(s, r)


def test_every_n_infeasible_reports_infeasible():
    t = paper_scenario(1).target
    s = paper_scenario(4, memory_cap_bytes=t.parameter_bytes + t.kv_bytes(1, 512) + 1, max_batches=3)
    for name in ("dipsd", "dipsd-fixed", "sd-nobatch"):
        assert run_method(name, s).status is Status.INFEASIBLE, name


def test_ad_baselines_by_hand():
    # paper defaults, 4 users: one pass costs 95.1074 + 0.575452 ms (see test_evaluate)
    s = paper_scenario(4)
    one = 95.1074 + 1.2077e-11 * 1_310_720 * 36353
    assert solve_ad(s).throughput_tps == pytest.approx(1000 / one, rel=1e-12)
    r = solve_ad_batch(s)
    assert r.throughput_tps == pytest.approx(4000 / (95.1074 + 4 * (one - 95.1074)), rel=1e-12)
    assert r.batches == ((0, 1, 2, 3),) and r.to_json(s)["draft_lengths"] is None


def test_sd_nobatch_by_hand():
    # one paper user per batch, 2 users: the exact optimum over lengths is l = 3 for both
    # (tests/solvers/test_exact.py finds the same plan as the global optimum of P)
    r = solve_sd_nobatch(paper_scenario(2))
    assert r.plan.lengths == (3, 3) and r.throughput_tps == pytest.approx(1000 * 5.725904 / 201.577386, rel=1e-6)


def test_assignment_model_plan_roundtrip():
    s = paper_scenario(5)
    model, decoder = build_assignment_model(Tables.of(s), (2,) * 5, 2)
    from pyomo.contrib.solver.common.factory import SolverFactory
    SolverFactory("highs").solve(model, threads=1)
    plan = decoder.plan()
    # with l = 2 the verification sum sets S for every split, so any split of 5 into 2 is optimal
    assert plan.num_batches == 2 and sorted(sum(plan.batches, ())) == [0, 1, 2, 3, 4]
    assert evaluate(s, plan).span_ms == pytest.approx(2 * 95.1074 + 5 * 1.2077e-11 * 1_310_720 * 2 * 36354, rel=1e-9)


def test_single_user_every_method_agrees():
    s = paper_scenario(1)
    results = {m: run_method(m, s) for m in METHODS}
    assert results["exact"].status is Status.OPTIMAL  # alone, exact starts from certify, which proves it here
    # from DiP-SD's plan without a bound, exact proves it with its own MILP
    results["exact"] = run_method("exact", s, start_plan=results["dipsd"].plan)
    assert results["exact"].status is Status.OPTIMAL
    assert float(results["exact"].message.split()[2]) <= 1e-6  # HiGHS's bound plus the tolerance margin
    best = results["enumerate"].throughput_tps
    for m in ("dipsd", "sd-nobatch", "exact"):
        assert results[m].throughput_tps == pytest.approx(best, rel=1e-12), m
        assert_consistent(s, results[m])
    assert results["ad"].throughput_tps == results["ad-batch"].throughput_tps


def test_time_limits_are_reported_honestly():
    from dipsd.solvers.baselines import solve_sd_nobatch

    r = solve_sd_nobatch(paper_scenario(10), time_limit=1e-4)
    assert r.status is Status.TIME_LIMIT and "not (fully) optimized" in r.message
    (s,) = generate([12], 1, seed=3)
    d = D.solve_dipsd(s, time_limit=1e-4)
    assert d.status is Status.TIME_LIMIT and d.plan is not None and "greedy memory packing" in d.message
    assert d.throughput_tps == evaluate(s, d.plan).throughput_tps


def test_batch_counts_below_the_memory_packing_are_skipped_without_changing_the_result():
    (s,) = generate([6], 1, seed=7, max_draft_length=6)
    s = s.with_(memory_cap_bytes=s.target.parameter_bytes + s.target.kv_bytes(2, max(u.prefix_len for u in s.users)) + 1.0,
                min_batches=1)
    from dipsd.formulation.evaluate import greedy_batches

    fewest = len(greedy_batches(s))
    assert fewest >= 2
    full = D.solve_dipsd(s)
    assert all(r.num_batches >= fewest for r in full.trace)
    reference = D.solve_dipsd(s, batch_counts=range(fewest, s.max_batches + 1))
    assert full.plan == reference.plan and full.throughput_tps == reference.throughput_tps


def _first_incumbent(scenario, build, start_plan, q=None):
    """Solve a step model from ``start_plan`` with HiGHS's log captured; the value HiGHS reports
    for the MIP start (None if it did not take it), and the optimum."""
    import io
    import re

    from dipsd.solvers.milp.highs_adapter import set_mip_start

    model, decoder = build()
    if q is not None:
        model.q.set_value(q * decoder.unit_ms)
    solver = MilpSession(scenario, model, decoder).solver
    assert set_mip_start(solver, decoder.start(start_plan))
    log = io.StringIO()
    res = solver.solve(model, time_limit=60, rel_gap=0.0, abs_gap=0.0, threads=1, load_solutions=False,
                       raise_exception_on_nonoptimal_result=False, tee=[log])
    found = re.search(r"MIP start solution is feasible: objective value is ([-+0-9.eE]+)", log.getvalue())
    return (None if found is None else float(found.group(1))), res.incumbent_objective


def test_x_step_start_is_accepted_as_the_first_incumbent():
    from dipsd.formulation.steps import build_assignment_model

    (s,) = generate([9], 1, seed=5)
    t = Tables.of(s)
    lengths = tuple(2 + m % 4 for m in range(s.num_users))
    start = D.split_to(greedy_batches(s), 4)
    ev = evaluate(s, Plan(start, lengths))
    reported, optimum = _first_incumbent(s, lambda: build_assignment_model(t, lengths, 4), Plan(start, lengths))
    # the x-step maximizes U - 1 * S with U fixed by the lengths
    assert reported == pytest.approx(ev.expected_tokens - ev.span_ms, rel=1e-7)
    assert optimum >= reported - 1e-7


def test_l_step_start_is_accepted_as_the_first_incumbent():
    from dipsd.formulation.steps import build_length_model

    (s,) = generate([8], 1, seed=6)
    t = Tables.of(s)
    plan = Plan(((0, 1, 2), (3, 4), (5, 6, 7)), tuple(1 + m % 5 for m in range(8)))
    ev = evaluate(s, plan)
    q = 0.8 * ev.ratio  # the start's U - q S is then positive
    reported, optimum = _first_incumbent(s, lambda: build_length_model(t, plan.batches, q), plan, q)
    assert reported == pytest.approx(ev.expected_tokens - q * ev.span_ms, rel=1e-7)
    assert optimum >= reported - 1e-7


def test_split_to_keeps_a_memory_feasible_partition():
    t = paper_scenario(1).target
    s = paper_scenario(7, memory_cap_bytes=t.parameter_bytes + t.kv_bytes(3, 512) + 1)  # at most 3 users per batch
    packed = greedy_batches(s)
    for n in range(len(packed), 8):
        parts = D.split_to(packed, n)
        assert len(parts) == n and sorted(sum(parts, ())) == list(range(7))
        assert evaluate(s, Plan(parts, (3,) * 7)).feasible
    assert D.split_to(packed, len(packed) - 1) is None and D.split_to(packed, 8) is None


def test_step_start_must_fit_the_layout():
    from dipsd.formulation.steps import build_assignment_model, build_length_model

    s = paper_scenario(4)
    t = Tables.of(s)
    _, dec = build_assignment_model(t, (2, 2, 3, 3), 2)
    with pytest.raises(ValueError, match="length"):
        dec.start(Plan(((0, 1), (2, 3)), (2, 2, 2, 3)))
    _, dec = build_length_model(t, ((0, 1), (2, 3)))
    with pytest.raises(ValueError, match="fixed batches"):
        dec.start(Plan(((0, 2), (1, 3)), (1, 1, 1, 1)))


def test_a_highs_error_in_a_step_is_an_error_not_infeasible(monkeypatch):
    from pyomo.contrib.solver.common.results import TerminationCondition

    from dipsd.errors import SolverError

    class Broken:
        termination_condition = TerminationCondition.error
        incumbent_objective = None
        objective_bound = None

    class Solver:
        def update_parameters(self):
            pass

        def solve(self, *args, **kwargs):
            return Broken()

    monkeypatch.setattr(MilpSession, "_instance", lambda self: Solver())
    s = paper_scenario(3)
    with pytest.raises(SolverError, match="HiGHS ended"):
        step_mod.x_step_milp(s, Tables.of(s), (2, 2, 2), 2, Deadline(10))
    monkeypatch.setattr(step_mod, "SEARCH_BUDGET", (1, 1))  # the x-step's search hands over to the MILP
    assert run_method("dipsd", s).status is Status.ERROR


def test_a_mip_start_that_highs_maps_wrongly_is_caught_and_the_step_solved_again(caplog):
    """HiGHS 1.16 reports this l-step's optimum (0.06395) with the start's columns as its solution
    once presolve maps the start into the reduced space; the value check catches it and the
    step is solved again without the start."""
    from dipsd.formulation.steps import build_length_model

    (s,) = generate([6], 1, seed=7, max_draft_length=6)
    s = s.with_(memory_cap_bytes=s.target.parameter_bytes + s.target.kv_bytes(2, max(u.prefix_len for u in s.users)) + 1.0,
                min_batches=1)
    plan = Plan(((0, 5), (1, 3), (2, 4)), (6, 4, 5, 3, 5, 5))
    ev = evaluate(s, plan)
    model, decoder = build_length_model(Tables.of(s), plan.batches, q=ev.ratio)
    got = step_mod._step(MilpSession(s, model, decoder), ev.ratio, Deadline(30), plan)
    model2, decoder2 = build_length_model(Tables.of(s), plan.batches, q=ev.ratio)
    fresh = step_mod._step(MilpSession(s, model2, decoder2), ev.ratio, Deadline(30), None)
    assert got.ratio == pytest.approx(fresh.ratio, rel=1e-12) and got.ratio > ev.ratio


def _step_cases(count, seed):
    """Odd tiny instances (clones, flat tables, 600,000 ms latencies: near ties) with one batch count
    and one length vector each, small enough to enumerate."""
    from tests.solvers.instances import odd_instances

    rng = np.random.default_rng(seed)
    for s in odd_instances(count, seed):
        if s.max_draft_length ** s.num_users > 4096:
            continue
        n = int(rng.choice(list(s.batch_range)))
        lengths = tuple(int(rng.integers(1, s.max_draft_length + 1)) for _ in range(s.num_users))
        yield s, n, lengths


@pytest.mark.slow
@pytest.mark.parametrize("seed", [120, 121])
def test_steps_return_their_own_optimum_within_the_contract_on_near_ties(seed):
    """Issue 19, item 4: each step, "solved with gap 0", must return its own problem's optimum
    within a relative 1e-9 (the x-step's least span for the lengths; the l-step's best ratio for
    the batches; sd-nobatch is the l-step on singletons), checked by enumeration."""
    logging.disable(logging.WARNING)
    try:
        for s, n, lengths in _step_cases(40, seed):
            t = Tables.of(s)
            spans = [e.span_ms for p in rg_partitions(s.num_users, n) if (e := evaluate(s, Plan(p, lengths))).feasible]
            got = D.x_step(s, t, lengths, n, Deadline(60))
            assert (got is None) == (not spans), s.name
            if got is None:
                continue
            assert got.span_ms <= min(spans) * (1 + 1e-9), (s.name, got.span_ms, min(spans))
            for batches in {got.plan.batches, tuple((m,) for m in range(s.num_users))}:
                start = evaluate(s, Plan(batches, (1,) * s.num_users))
                if not start.feasible:
                    continue
                best = max(evaluate(s, Plan(batches, ls)).ratio
                           for ls in itertools.product(range(1, s.max_draft_length + 1), repeat=s.num_users))
                assert D.l_step(s, t, start, Deadline(60)).ratio >= best * (1 - 1e-9), (s.name, batches)
    finally:
        logging.disable(logging.NOTSET)
