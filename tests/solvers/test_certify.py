"""``certify``: exact pricing, a bound that is valid always, and plans checked against proven optima."""

from __future__ import annotations

import dataclasses
import math
from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dipsd import Scenario, User, paper_scenario
from dipsd.data.generate import generate
from dipsd.formulation.columns import NO_RULES, Classes, Pricer, Rules, columns_of, make_column
from dipsd.formulation.evaluate import Evaluation, evaluate
from dipsd.formulation.plan import Plan
from dipsd.formulation.tables import Tables
from dipsd.solvers import certify as C
from dipsd.solvers.brute import partitions, solve_enumerate
from dipsd.solvers.deadline import Deadline
from dipsd.solvers.dipsd import solve_dipsd
from dipsd.solvers.exact import solve_exact
from dipsd.solvers.results import Status
from dipsd.solvers.start import simple_plan
from tests.solvers.instances import (
    assert_consistent,
    assert_feasible,
    far_scaled_instances,
    nested_room_instances,
    odd_instances,
    tiny_instances,
)

INSTANCES = tiny_instances()


def test_master_duals_reproduce_highs_reduced_costs():
    """The highspy adapter: our reduced costs are minus HiGHS's column duals (sign convention)."""
    s = generate([5], 1, seed=3, max_draft_length=4)[0]
    t = Tables.of(s)
    master = C._Master(s, t)
    bounder = C._Bounder(s, t, master, Pricer(t), Deadline(math.inf))
    budget = 400.0
    bounder.at(budget, s.min_batches, s.max_batches)
    duals = master.solve()
    d = np.array(master.h.getSolution().col_dual)
    for i, col in enumerate(master.columns):
        if master.enabled[i] and master.where[i] >= 0:
            assert master.reduced_cost(col, duals) == pytest.approx(-d[master.where[i]], abs=1e-7)
    # the same for every column the LP holds at once, with the LP's unclipped duals
    held = master.reduced_costs(master._last, master.held)
    assert held == pytest.approx(-d[master.first:], abs=1e-7)


def _lp_value(master: C._Master, s: Scenario, t: Tables, budget: float, rules=NO_RULES) -> float:
    lp = C._Bounder(s, t, master, Pricer(t), Deadline(math.inf)).at(budget, s.min_batches, s.max_batches, rules=rules,
                                                                    rtol=0.0)
    return lp.value


@pytest.mark.parametrize("seed", range(4))
def test_purged_columns_leave_the_lp_not_the_pool(seed):
    """:meth:`_Master.purge` takes nonbasic columns out of the LP: its optimum and basis stay (a re-solve
    takes no iteration), the pool keeps every column, :meth:`_Master.add` and :meth:`_Master.restore`
    bring them back, and each node's LP value is the one of a master that never purged."""
    s = generate([8], 1, seed=seed)[0]
    t = Tables.of(s)
    budget = 1.5 * t.span_lower_bound(s.min_batches)
    master = C._Master(s, t)
    value = _lp_value(master, s, t, budget)
    pool = list(master.columns)
    gone = master.purge(0.0)
    assert gone > 0 and master.columns == pool
    assert len(master.held) == len(pool) - gone == master.h.getNumCol() - master.first
    assert (master.where[master.held] == master.first + np.arange(len(master.held))).all()
    assert (master.where >= 0).sum() == len(master.held)
    master.solve()
    assert master.optimal() and master.h.getInfo().simplex_iteration_count == 0
    assert master.value() == pytest.approx(value, rel=1e-12)
    assert master.restore() == 0  # the LP's optimum is the pool's: nothing of positive reduced cost is out
    out = int(np.flatnonzero(master.where < 0)[0])
    assert master.add([master.columns[out]]) == 1 and master.where[out] >= 0
    assert master.add([master.columns[out]]) == 0
    # nodes under rules: purging between them changes no LP value
    rng = np.random.default_rng(seed)
    rules = NO_RULES
    for _ in range(4):
        i, j = (int(x) for x in rng.choice(s.num_users, 2, replace=False))
        rules = rules.join(i, j) if rng.random() < 0.5 else rules.part(i, j)
        fresh = C._Master(s, t)
        fresh.add(master.columns)
        master.purge(C.PURGE_SHARE)
        got, want = _lp_value(master, s, t, budget, rules), _lp_value(fresh, s, t, budget, rules)
        if math.isnan(want):
            assert math.isnan(got)
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_master_lp_stops_at_the_clock():
    """Every master LP solve is held to the search's time limit (a master of 20-40k columns takes
    seconds): past the limit a solve stops at once, is not optimal and gives zero duals (valid ones),
    and column generation then returns a valid bound without an LP solution to read."""
    s = generate([5], 1, seed=3, max_draft_length=3)[0]
    t = Tables.of(s)
    budget = 2 * t.span_lower_bound(s.min_batches)
    pool = C._Master(s, t, clock=Deadline(3600.0))
    pool.add(columns_of(t, simple_plan(s)))
    assert math.isfinite(C._Bounder(s, t, pool, Pricer(t), Deadline(3600.0)).at(budget, s.min_batches, s.max_batches).value)
    assert pool.optimal()
    clock = Deadline(0.0)
    master = C._Master(s, t, clock=clock)  # the same columns (not solved in presolve), the limit reached
    master.add(pool.columns)
    master.set_budget(budget)
    duals = master.solve()
    assert not master.optimal() and duals.mu == 0.0 and not duals.pi.any()
    lp = C._Bounder(s, t, master, Pricer(t), clock).at(budget, s.min_batches, s.max_batches)
    assert not lp.support and math.isnan(lp.value)
    best = max(ev.ratio for ev in _every_plan(s) if ev.span_ms <= budget)
    assert lp.k + lp.mu * budget >= best * budget * (1 - 1e-12)  # still a bound on G(budget)


def test_interval_bound_by_hand():
    # G(S) <= K + mu S on [a, b]: K >= 0 peaks at a, K < 0 at b; never above U_max / a
    assert C._interval_bound(2.0, 0.1, 100.0, 200.0, 1e9) == pytest.approx(0.1 + 2.0 / 100.0)
    assert C._interval_bound(-2.0, 0.1, 100.0, 200.0, 1e9) == pytest.approx(0.1 - 2.0 / 200.0)
    assert C._interval_bound(2.0, 0.1, 100.0, 200.0, 5.0) == pytest.approx(0.05)
    assert C._interval_bound(-math.inf, 0.0, 100.0, 200.0, 5.0) == 0.0


def test_two_paper_users_by_hand():
    # two batches, l = 3 each (tests/formulation/test_evaluate.py): 28.405 tokens/s, proven
    r = C.solve_certify(paper_scenario(2))
    assert r.status is Status.OPTIMAL and r.plan.lengths == (3, 3) and r.plan.num_batches == 2
    assert r.throughput_tps == pytest.approx(1000 * 5.725904 / 201.577386, rel=1e-6)
    assert r.upper_bound_tps == pytest.approx(r.throughput_tps, rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", INSTANCES, ids=[s.name for s in INSTANCES])
def test_bound_and_plan_against_enumeration(scenario):
    brute = solve_enumerate(scenario)
    r = C.solve_certify(scenario, time_limit=60)
    if brute.status is Status.INFEASIBLE:
        assert r.status is Status.INFEASIBLE and r.plan is None
        return
    opt = brute.throughput_tps
    assert_consistent(scenario, r)
    assert r.upper_bound_tps >= opt * (1 - 1e-12), "the certified bound is below a proven optimum"
    assert r.throughput_tps <= opt * (1 + 1e-12)
    assert r.throughput_tps >= opt * (1 - 1e-3), "plans within 0.1 % of the optimum at M <= 10"
    meets = r.throughput_tps >= r.upper_bound_tps / (1 + 2e-9)
    assert (r.status is Status.OPTIMAL) == meets


NESTED = nested_room_instances(12, seed=9)


def test_nested_room_instances_need_more_than_the_ceiling():
    """The instances below exercise the level rows' greedy counts: the ceiling is smaller somewhere."""
    def weaker(s: Scenario) -> bool:
        t = Tables.of(s)
        heavy = [sum(1 for j in t.level_of if j >= level) for level in range(len(t.levels))]
        return any(t.fewest_batches(j) > -(-heavy[j] // t.room[j]) for j in range(1, len(t.levels)) if t.room[j] >= 1)
    assert all(weaker(s) for s in NESTED)


@pytest.mark.parametrize("scenario", NESTED, ids=[s.name for s in NESTED])
def test_certify_proves_the_optimum_where_higher_prefixes_have_smaller_rooms(scenario):
    """Where the level rows count the greedy packing, certify proves the enumerated optimum (the rows'
    validity itself: test_box_bound_with_the_span_priced_holds_for_every_plan)."""
    brute = solve_enumerate(scenario)
    r = C.solve_certify(scenario, time_limit=60)
    assert brute.status is not Status.INFEASIBLE
    assert_consistent(scenario, r)
    assert r.upper_bound_tps >= brute.throughput_tps * (1 - 1e-12), "the certified bound is below a proven optimum"
    assert r.status is Status.OPTIMAL and r.throughput_tps >= brute.throughput_tps * (1 - 1e-9)


@pytest.mark.slow
def test_most_tiny_instances_are_certified_optimal():
    results = [C.solve_certify(s, time_limit=60) for s in INSTANCES[:20]]
    proven = sum(r.status is Status.OPTIMAL for r in results)
    assert proven >= 17, [(r.scenario, r.status) for r in results]


@pytest.mark.parametrize("limit", [1e-4, 0.02, 0.2])
def test_bound_valid_under_a_time_limit(limit):
    for s in INSTANCES[:10]:
        brute = solve_enumerate(s)
        r = C.solve_certify(s, time_limit=limit)
        if brute.status is Status.INFEASIBLE:
            assert r.plan is None
            continue
        assert r.upper_bound_tps is not None and r.upper_bound_tps >= brute.throughput_tps * (1 - 1e-12)
        if r.plan is not None:
            assert_consistent(s, r)
        assert r.status in (Status.OPTIMAL, Status.TIME_LIMIT, Status.NO_PLAN, Status.FEASIBLE)


@pytest.mark.slow
def test_never_below_the_start_plan_and_dipsd():
    for s in INSTANCES[:16]:
        heuristic = solve_dipsd(s)
        if heuristic.plan is None:
            continue
        r = C.solve_certify(s, start_plan=heuristic.plan)
        assert r.throughput_tps >= heuristic.throughput_tps * (1 - 1e-12)


@pytest.mark.slow
def test_bound_above_exact_optimum_at_m8():
    (s,) = generate([8], 1, seed=5)
    exact = solve_exact(s, time_limit=120)
    assert exact.status is Status.OPTIMAL
    r = C.solve_certify(s, time_limit=60)
    assert_consistent(s, r)
    assert r.upper_bound_tps >= exact.throughput_tps * (1 - 1e-12) and r.throughput_tps <= exact.throughput_tps * (1 + 1e-12)


def test_exact_stops_when_its_start_meets_a_certified_bound():
    s = paper_scenario(6)
    c = C.solve_certify(s)
    assert c.status is Status.OPTIMAL
    e = solve_exact(s, start_plan=c.plan, known_bound_tps=c.upper_bound_tps)
    assert e.status is Status.OPTIMAL and e.iterations == 0 and "certified bound" in e.message
    assert e.throughput_tps == c.throughput_tps and e.upper_bound_tps <= c.upper_bound_tps


@pytest.mark.slow
def test_columns_of_a_plan_rebuild_it():
    s = generate([5], 1, seed=9)[0]
    heuristic = solve_dipsd(s)
    t = Tables.of(s)
    cols = columns_of(t, heuristic.plan)
    assert sum(c.tokens for c in cols) == pytest.approx(heuristic.evaluation.expected_tokens, rel=1e-12)
    assert max(max(c.stage_ms for c in cols), sum(c.verify_ms for c in cols)) == pytest.approx(heuristic.span_ms, rel=1e-12)


@st.composite
def tiny_scenarios(draw):
    m = draw(st.integers(1, 4))
    lub = draw(st.integers(1, 4))
    users = tuple(
        User(name=f"u{i}", alpha=draw(st.floats(0.3, 1.0)), prefix_len=draw(st.sampled_from([128, 512, 2048])),
             comm_latency_ms=draw(st.floats(0.5, 40.0)))
        for i in range(m)
    )
    s = Scenario(name="p", users=users, max_draft_length=lub)
    if draw(st.booleans()):  # a cap that binds at the longest prefix
        longest = max(u.prefix_len for u in users)
        fit = draw(st.integers(1, m))
        s = s.with_(memory_cap_bytes=s.target.parameter_bytes + s.target.kv_bytes(fit, longest) + 1.0)
    nmin = draw(st.integers(1, m))
    return s.with_(min_batches=nmin, max_batches=draw(st.integers(nmin, m)))


@pytest.mark.slow
@settings(max_examples=40)
@given(tiny_scenarios())
def test_property_bound_valid_on_tiny_random_instances(s):
    brute = solve_enumerate(s)
    r = C.solve_certify(s, time_limit=30)
    if brute.status is Status.INFEASIBLE:
        assert r.status is Status.INFEASIBLE
        return
    assert_consistent(s, r)
    assert r.upper_bound_tps >= brute.throughput_tps * (1 - 1e-12)
    assert r.throughput_tps <= brute.throughput_tps * (1 + 1e-12)


def test_classes_keep_columns_canonical_and_realize_a_partition():
    # users 0, 2, 3 identical (class 0), user 1 on its own
    base = paper_scenario(4, max_draft_length=4)
    users = list(base.users)
    users[1] = dataclasses.replace(users[1], alpha=0.6)
    s = base.with_(users=tuple(users))
    t = Tables.of(s)
    classes = Classes(t)
    assert classes.members == ((0, 2, 3), (1,)) and list(classes.size) == [3, 1]
    col = make_column(t, (3, 1, 2), (2, 4, 3))  # two class-0 places (lengths 2, 3) and user 1
    canon = classes.canonical(col)
    assert canon.users == (0, 1, 2) and canon.lengths == (3, 4, 2)  # the longest on the first member
    assert canon.tokens == pytest.approx(col.tokens) and canon.stage_ms == pytest.approx(col.stage_ms)
    assert classes.counts(canon) == {0: 2, 1: 1} and classes.most(canon) == 1
    single = classes.canonical(make_column(t, (3,), (4,)))
    assert single.users == (0,) and classes.most(single) == 3
    assert classes.covers([(canon, 1), (single, 1)])
    assert not classes.covers([(canon, 1)]) and not classes.covers([(canon, 1), (single, 2)])
    plan = classes.realize([(canon, 1), (single, 1)])
    assert sorted(m for b in plan.batches for m in b) == [0, 1, 2, 3]
    assert plan.batches == ((0, 1, 2), (3,)) and plan.lengths == (3, 4, 2, 4)
    # distinct users: every column is its own canonical form
    apart = Classes(t, merge=False)
    assert len(apart) == 4 and apart.canonical(col) is col


def _clone_instances():
    out = [s for s in INSTANCES if any(len(c) > 1 for c in Tables.of(s).classes)]
    out += [paper_scenario(m, max_draft_length=6) for m in (5, 9)]
    return out


def _every_plan(scenario: Scenario, rules: Rules = NO_RULES) -> list[Evaluation]:
    """Every feasible plan whose batches obey ``rules``, evaluated, by enumeration of partitions and
    lengths (an oracle independent of certify's columns)."""
    M, t = scenario.num_users, Tables.of(scenario)
    out = []
    for labels in partitions(M, scenario.min_batches, scenario.max_batches):
        if any(labels[i] != labels[j] for i, j in rules.together) or any(labels[i] == labels[j] for i, j in rules.apart):
            continue
        batches = tuple(tuple(m for m in range(M) if labels[m] == n) for n in range(max(labels) + 1))
        for lengths in product(*(range(1, t.limit(m) + 1) for m in range(M))):
            ev = evaluate(scenario, Plan(batches, lengths))
            if ev.feasible:
                out.append(ev)
    return out


@pytest.mark.parametrize("seed", [pytest.param(3, marks=pytest.mark.slow), 8])  # the fast run: one of the two
def test_phase_one_proves_only_nodes_without_plans_empty(seed):
    """A node whose master keeps artificial columns is proven empty by phase 1 (:meth:`_Bounder.empty`)
    only when no plan of span ``<= b`` with its batch counts obeys its rules (enumeration), and it
    does prove such nodes empty (three users pairwise apart in at most two batches; spans below
    every plan's); the master's costs are back afterwards (the same LP as a fresh master)."""
    (s,) = generate([5], 1, seed=seed, max_draft_length=2)
    t = Tables.of(s)
    apart = NO_RULES.part(0, 1).part(1, 2).part(0, 2)
    proven = 0
    for rules in (NO_RULES, apart, apart.join(3, 4), NO_RULES.join(0, 1).join(1, 2).narrow(3, 2, 2)):
        plans = _every_plan(s, rules)
        spans = sorted(ev.span_ms for ev in plans)
        for low, high in ((s.min_batches, 2), (s.min_batches, s.max_batches), (3, s.max_batches)):
            counted = [ev.span_ms for ev in plans if low <= ev.plan.num_batches <= high]
            for b in (spans[0] * 0.99, spans[len(spans) // 2], spans[-1]):
                master = C._Master(s, t)
                bounder = C._Bounder(s, t, master, Pricer(t), Deadline(math.inf))
                lp = bounder.at(b, low, high, 0.5 * b, 0.01, rules)
                exists = any(span <= b for span in counted)
                assert not (lp.k == -math.inf and exists), (rules, low, high, b)
                proven += lp.k == -math.inf
                again = bounder.at(spans[-1], s.min_batches, s.max_batches, 0.5 * spans[-1], 0.01)
                fresh = C._Bounder(s, t, C._Master(s, t), Pricer(t), Deadline(math.inf)).at(
                    spans[-1], s.min_batches, s.max_batches, 0.5 * spans[-1], 0.01)
                assert again.value == pytest.approx(fresh.value, rel=1e-9)
    assert proven >= 8


def test_a_node_whose_artificial_columns_pay_is_bounded_without_them():
    """Where the master keeps artificial columns although the node has plans (their cost ``BIG`` is
    too small for a nearly infeasible node: here made cheap on purpose), phase 1 finds real columns
    and column generation goes on without the artificial ones: the same LP and bound as a master
    where they never pay; afterwards they are back."""
    (s,) = generate([5], 1, seed=3, max_draft_length=3)
    t = Tables.of(s)
    spans = sorted(ev.span_ms for ev in _every_plan(s))
    a, b = spans[0], spans[len(spans) // 2]
    normal = C._Bounder(s, t, C._Master(s, t), Pricer(t), Deadline(math.inf)).at(b, s.min_batches, s.max_batches, a, 0.01)
    master = C._Master(s, t)
    master.big = 1e-3  # what feasibility(False) restores as well
    art = np.arange(1, master.first, dtype=np.int32)
    master.h.changeColsCost(len(art), art, np.full(len(art), master.big))
    lp = C._Bounder(s, t, master, Pricer(t), Deadline(math.inf)).at(b, s.min_batches, s.max_batches, a, 0.01)
    assert lp.support and lp.value == pytest.approx(normal.value, rel=1e-9)
    assert C._interval_bound(lp.k, lp.mu, a, b, math.inf) == pytest.approx(C._interval_bound(normal.k, normal.mu, a, b, math.inf), rel=1e-9)
    assert master.artificials and np.all(np.array(master.h.getLp().col_upper_)[art] == np.inf)


BOX_INSTANCES = [generate([4], 1, seed=seed, max_draft_length=3)[0] for seed in (3, 8, 21)] + NESTED[:3]


@pytest.mark.parametrize("s", [pytest.param(s, id=f"{s.name}-{n}", marks=pytest.mark.slow if s.name.startswith("nested-9-2") else ())
                               for n, s in enumerate(BOX_INSTANCES)])
def test_box_bound_with_the_span_priced_holds_for_every_plan(s):
    """Column generation over a span range ``[a, b]`` with the span priced at ``q`` (Dinkelbach over
    the box, :meth:`_Bounder.at`): the line ``k + mu S`` is above every plan of span ``S <= b`` that
    obeys the rules, and the box's bound above the ratio of every such plan in ``[a, b]``; for ``q``
    below, at and above the optimum, wide and narrow boxes, converged and stopped early.  The last
    instances have nested rooms, where the level rows count the greedy packing (:meth:`Tables.fewest_batches`)."""
    t = Tables.of(s)
    every = {rules: [(ev.expected_tokens, ev.span_ms) for ev in _every_plan(s, rules)]
             for rules in (NO_RULES, Rules(together=frozenset({(0, 1)})), Rules(apart=frozenset({(1, 2)})))}
    best = max(u / span for u, span in every[NO_RULES])
    checked = 0
    for rules, plans in every.items():
        if not plans:  # (users 0 and 1 together do not fit where the cap holds one user at their prefix)
            continue
        spans = sorted(span for _, span in plans)
        middle = spans[len(spans) // 2]
        for a, b in [(spans[0], spans[-1]), (spans[len(spans) // 3], spans[2 * len(spans) // 3]),
                     (middle * 0.999, middle * 1.001)]:
            for q in (0.5 * best, best, 1.2 * best):
                for rtol in (0.0, 0.5):
                    master = C._Master(s, t)
                    bounder = C._Bounder(s, t, master, Pricer(t), Deadline(math.inf))
                    lp = bounder.at(b, s.min_batches, s.max_batches, a, q, rules, rtol)
                    below = [(u, span) for u, span in plans if span <= b]
                    for u, span in below:
                        assert u <= lp.k + lp.mu * span + 1e-9 * u
                    inside = [u / span for u, span in below if span >= a]
                    if inside:
                        assert C._interval_bound(lp.k, lp.mu, a, b, math.inf) >= max(inside) * (1 - 1e-12)
                        checked += 1
    assert checked >= 12 * sum(bool(plans) for plans in every.values()) >= 24


@pytest.mark.parametrize("seed", [3, 8, 21])
def test_reduced_cost_filter_keeps_every_column_of_a_good_plan(seed):
    """The budget IP's column filter (:meth:`_Master.promising`) at a converged pool keeps every
    column of every enumerated plan of span ``<= budget`` with at least the target's tokens, and
    drops some columns (targets at the best such plan and a little below it)."""
    (s,) = generate([4], 1, seed=seed, max_draft_length=3)
    t = Tables.of(s)
    plans = _every_plan(s)
    dropped = 0
    for budget in sorted(ev.span_ms for ev in plans)[len(plans) // 4:: len(plans) // 4]:
        master = C._Master(s, t)
        C._Bounder(s, t, master, Pricer(t), Deadline(math.inf)).at(budget, s.min_batches, s.max_batches, rtol=0.0)
        under = [ev for ev in plans if ev.span_ms <= budget]
        top = max(ev.expected_tokens for ev in under)
        for tokens in (top, 0.97 * top):
            good = [ev for ev in under if ev.expected_tokens >= tokens]
            for ev in good:
                master.add(columns_of(t, ev.plan))
            keep = master.promising(budget, s.min_batches, s.max_batches, tokens)
            kept = {c.key for c, k in zip(master.columns, keep) if k}
            for ev in good:
                assert {master.classes.canonical(c).key for c in columns_of(t, ev.plan)} <= kept
            dropped += int((~keep & master.enabled).sum())
    assert dropped > 0


@pytest.mark.parametrize("scenario", _clone_instances(), ids=lambda s: s.name)
def test_class_master_has_the_per_user_masters_lp_value(scenario):
    """Aggregating identical users changes the master's rows, not its LP optimum: any per-user
    solution sums to a class solution, and any class solution spread evenly over the members
    is a per-user one of the same value."""
    t = Tables.of(scenario)
    lo = t.span_lower_bound(1)
    hi = scenario.num_users * (t.beta_ms + t.seq(t.max_length, len(t.levels) - 1)) + max(r[-1] for r in t.ready)
    for budget in np.geomspace(lo * 1.01, hi, 5):
        values = []
        for merge in (True, False):
            master = C._Master(scenario, t, Classes(t, merge=merge))
            bounder = C._Bounder(scenario, t, master, Pricer(t), Deadline(math.inf))
            lp = bounder.at(float(budget), scenario.min_batches, scenario.max_batches)
            values.append(lp.k + lp.mu * budget if lp.k != -math.inf else -math.inf)
        if values[1] == -math.inf:
            assert values[0] == -math.inf
        else:
            assert values[0] == pytest.approx(values[1], rel=1e-6, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", INSTANCES[:16], ids=[s.name for s in INSTANCES[:16]])
def test_the_bound_holds_at_every_work_limit(scenario):
    """Stopped after 1, 3, 10 or 40 work units, certify's bound is still above the enumerated optimum
    and its plan below it; a stop by the work limit says so."""
    brute = solve_enumerate(scenario)
    if brute.status is Status.INFEASIBLE:
        return
    for work in (1, 3, 10, 40):
        r = C.solve_certify(scenario, time_limit=60, work_limit=work)
        assert_consistent(scenario, r)
        assert r.upper_bound_tps >= brute.throughput_tps * (1 - 1e-12)
        assert r.throughput_tps <= brute.throughput_tps * (1 + 1e-12)
        assert r.status in (Status.OPTIMAL, Status.FEASIBLE, Status.WORK_LIMIT)
        if r.status is Status.WORK_LIMIT:
            assert r.throughput_tps < r.upper_bound_tps / (1 + 1e-9)


@pytest.mark.parametrize("seed", [300] + [pytest.param(s, marks=pytest.mark.slow) for s in (301, 302, 303)])
def test_the_bound_holds_at_every_work_limit_on_odd_instances(seed):
    """The same on the contract's odd corners (alpha 0 / 1, L_ub 1, 6e5 ms latencies, caps one byte
    from binding, clones) and at the far ends of the time scale."""
    bad = []
    for scenario in odd_instances(20, seed) + far_scaled_instances(5, seed):
        brute = solve_enumerate(scenario)
        if brute.status is not Status.OPTIMAL:
            continue
        for work in (2, 25):
            r = C.solve_certify(scenario, time_limit=60, work_limit=work)
            assert_consistent(scenario, r)
            if r.upper_bound_tps < brute.throughput_tps * (1 - 1e-12) or r.throughput_tps > brute.throughput_tps * (1 + 1e-12):
                bad.append((scenario.name, work, r.upper_bound_tps, r.throughput_tps, brute.throughput_tps))
            if r.status is Status.OPTIMAL and r.throughput_tps < brute.throughput_tps * (1 - 1e-9):
                bad.append((scenario.name, work, "optimal claimed", r.throughput_tps, brute.throughput_tps))
    assert not bad, bad


def test_a_work_limit_gives_the_same_result_twice():
    for s in generate([9, 14], 1, seed=11):
        runs = [C.solve_certify(s, time_limit=120, work_limit=60) for _ in range(2)]
        a, b = runs
        assert (a.status, a.plan, a.throughput_tps, a.upper_bound_tps, a.message) == \
               (b.status, b.plan, b.throughput_tps, b.upper_bound_tps, b.message)


def test_deadline_counts_work_and_decides_by_it():
    clock = Deadline(1e9, work=10)
    assert clock.progress() == 0.0 and not clock.over() and clock.work_left() == 10
    clock.spend(4)
    assert clock.progress() == pytest.approx(0.4) and clock.work_left() == 6
    clock.spend(6)
    assert clock.out_of_work() and clock.over() and clock.work_left() == 0
    worked, timed = Deadline(5.0, work=3), Deadline(5.0)
    worked.elapsed = timed.elapsed = lambda: 1.25  # an injected clock: 1.25 s used
    assert worked.share(0.2, cap=0.1).limit == 3.75  # under a work limit: the wall clock's rest
    assert timed.share(0.2, cap=0.5).limit == 0.5  # 0.2 of the 3.75 s left, capped
    assert timed.share(0.1, cap=0.5).limit == pytest.approx(0.375, rel=1e-15)
    plain = Deadline(1e9)
    plain.spend(100)
    assert not plain.over() and plain.work_left() is None


# ---------------------------------------------------------------- branch-and-price

BRANCHING = [generate([m], 1, seed=seed, max_draft_length=4)[0] for m, seed in ((6, 26), (6, 29), (7, 5))]
"""Instances whose column LP stays fractional where the optimum lies (found by a scan of seeds)."""


def _branch_and_price_alone(s, work_limit=None):
    """certify's bound and branch-and-price with no plan search and no start but the simple plan:
    plans come only from integral node LPs."""
    search = C._Search(s, 60, work_limit)
    search.offer(C.simple_plan(s))
    search.open_box(search.s_min, search.s_high(), search.n_low, s.max_batches)
    search.refine()
    search.refine(branching=True)
    return search


@pytest.mark.parametrize("scenario", BRANCHING, ids=lambda s: s.name)
def test_branch_and_price_proves_the_enumerated_optimum(scenario):
    opt = solve_enumerate(scenario).throughput_tps
    search = _branch_and_price_alone(scenario)
    r = search.result()
    assert search.branches > 0, "the instance no longer needs branching: the test would not test it"
    assert_consistent(scenario, r)
    assert r.status is Status.OPTIMAL
    assert r.throughput_tps == pytest.approx(opt, rel=1e-12)
    assert opt * (1 - 1e-12) <= r.upper_bound_tps <= opt * (1 + 2e-9)


@pytest.mark.parametrize("scenario", [pytest.param(s, marks=() if n == 0 else pytest.mark.slow) for n, s in enumerate(BRANCHING)],
                         ids=lambda s: s.name)
def test_branch_and_price_bound_holds_wherever_the_tree_stops(scenario):
    """Stopped after any number of LP solves (nodes half bounded, children not yet opened), the bound
    over the open nodes stays above the optimum and the plan below it."""
    opt = solve_enumerate(scenario).throughput_tps
    for work in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512):
        r = _branch_and_price_alone(scenario, work).result()
        assert_consistent(scenario, r)
        assert r.upper_bound_tps >= opt * (1 - 1e-12), work
        assert r.throughput_tps <= opt * (1 + 1e-12), work


def test_branch_picks_the_pair_with_most_tokens_at_stake_then_a_split_length(monkeypatch):
    s = generate([4], 1, seed=1, max_draft_length=4)[0]
    # users 0, 1 bring few tokens (alpha 0.1: u <= 1.11), users 2, 3 many (alpha 0.9: u(4) = 4.10)
    s = s.with_(users=tuple(dataclasses.replace(u, alpha=a, acceptance=None) for u, a in zip(s.users, (0.1, 0.1, 0.9, 0.9))))
    t = Tables.of(s)
    classes = Classes(t)
    col = lambda users, lengths: make_column(t, users, lengths)  # noqa: E731
    # w_01 = 0.5 (nearest 1/2, stake 0.5 * 2.2), w_23 = 0.3 (stake 0.3 * 8.2): branch on (2, 3)
    support = [(col((0, 1), (2, 2)), 0.5), (col((0,), (2,)), 0.5), (col((1,), (2,)), 0.5),
               (col((2, 3), (4, 4)), 0.3), (col((2,), (4,)), 0.7), (col((3,), (4,)), 0.7)]
    together, apart = C._branch(support, NO_RULES, classes)
    assert together.together == {(2, 3)} and apart.apart == {(2, 3)}
    monkeypatch.setattr(C, "BRANCH_WEIGHTED", False)  # most fractional: (0, 1)
    together, apart = C._branch(support, NO_RULES, classes)
    assert together.together == {(0, 1)} and apart.apart == {(0, 1)}
    monkeypatch.undo()
    # a pair already ruled is not branched on again
    together, apart = C._branch(support, Rules().part(2, 3), classes)
    assert together.together == {(0, 1)} and together.apart == {(2, 3)}
    t = Tables.of(generate([4], 1, seed=1, max_draft_length=4)[0])
    classes = Classes(t)
    col = lambda users, lengths: make_column(t, users, lengths)  # noqa: E731
    # the same sets, user 3 at length 1 (0.4) or 3 (0.6): branch on l_3 <= 1 / >= 2
    support = [(col((0, 1), (2, 2)), 1.0), (col((2, 3), (1, 1)), 0.4), (col((2, 3), (1, 3)), 0.6)]
    low, high = C._branch(support, NO_RULES, classes)
    assert low.lengths == ((3, 1, 1),) and high.lengths == ((3, 2, t.limit(3)),)
    # integral: nothing to branch on
    assert C._branch([(col((0, 1), (2, 2)), 1.0), (col((2, 3), (1, 1)), 1.0)], NO_RULES, classes) is None


# ---------------------------------------------------------------- rebatching (large-neighbourhood search)


def test_rebatch_ip_is_dinkelbachs_problem_with_the_true_span():
    """Two users, as one batch or two: the IP's choice is the larger ``U - q max(T + sum tv, stages)``
    (the kept batches' verification ``T`` and stage floor), computed here from the columns alone, for
    spans that the verification sum sets and spans that a stage sets."""
    (s,) = generate([2], 1, seed=3, max_draft_length=3)
    t = Tables.of(s)
    classes = Classes(t)
    pair, one, two = make_column(t, (0, 1), (2, 2)), make_column(t, (0,), (2,)), make_column(t, (1,), (2,))
    apart = Plan(((0,), (1,)), (2, 2))

    def value(cols, q, kept_tv, floor):
        return sum(c.tokens for c in cols) - q * max([kept_tv + sum(c.verify_ms for c in cols), floor] + [c.stage_ms for c in cols])

    span = 10 * max(c.stage_ms for c in (pair, one, two))
    seen = set()
    for q in (0.0, 0.001, 0.01, 0.05):
        for kept_tv in (0.0, 50.0, 500.0):
            for floor in (0.0, pair.stage_ms, 3 * pair.stage_ms):
                chosen = C._rebatch_ip(classes, [pair, one, two], q, kept_tv, floor, span, 1, 2, Deadline(60), apart)
                got = sorted(c.users for c, _ in chosen)
                options = {((0, 1),): value([pair], q, kept_tv, floor), ((0,), (1,)): value([one, two], q, kept_tv, floor)}
                assert value([pair] if got == [(0, 1)] else [one, two], q, kept_tv, floor) == pytest.approx(max(options.values()), rel=1e-9)
                seen.add(tuple(got))
    assert len(seen) == 2, "both answers occur: the cases test the span's terms"


def test_master_within_returns_the_pool_columns_inside_a_user_set():
    (s,) = generate([5], 1, seed=4, max_draft_length=3)
    t = Tables.of(s)
    master = C._Master(s, t)
    cols = [make_column(t, u, [1] * len(u)) for u in ((0, 1), (1, 2), (3,), (0, 3, 4), (2,))]
    master.add(cols)
    inside = np.array([True, True, True, False, False])
    assert sorted(c.users for c in master.within(inside)) == [(0, 1), (1, 2), (2,)]


def _spoiled(scenario, plan):
    """Plans one move from ``plan``: a user moved to another batch (every such plan that is feasible)."""
    for src, batch in enumerate(plan.batches):
        if len(batch) < 2:
            continue
        for m in batch:
            for dst in range(plan.num_batches):
                if dst != src:
                    batches = [tuple(sorted(set(b) - {m} | ({m} if n == dst else set()))) for n, b in enumerate(plan.batches)]
                    moved = Plan(tuple(batches), plan.lengths)
                    if evaluate(scenario, moved).feasible:
                        yield moved, (src, dst)


REBATCH = [s for s in tiny_instances() + odd_instances(12, seed=31) if s.num_users >= 3]


@pytest.mark.parametrize("scenario", REBATCH, ids=lambda s: s.name)
def test_rebatching_keeps_the_other_batches_and_stays_below_the_optimum(scenario):
    brute = solve_enumerate(scenario)
    if brute.status is Status.INFEASIBLE:
        return
    opt = brute.throughput_tps
    search = C._Search(scenario, 60)
    search.offer(simple_plan(scenario))
    before = search.best
    for chosen in [(0, 1), (1, 2), (0, 2)]:
        if max(chosen) >= search.best.plan.num_batches:
            continue
        plan = search.best.plan
        kept = {b for n, b in enumerate(plan.batches) if n not in chosen}
        if search._rebatch(chosen, Deadline(60)):
            new = search.best.plan
            assert kept <= set(new.batches), "a batch outside the neighbourhood changed"
            assert all(new.lengths[m] == plan.lengths[m] for b in kept for m in b)
    search.rebatch(Deadline(60), set())
    assert_feasible(scenario, search.best.plan)
    assert search.best.ratio == evaluate(scenario, search.best.plan).ratio
    assert before.ratio <= search.best.ratio <= brute.evaluation.ratio * (1 + 1e-12)
    assert search.best.throughput_tps <= opt * (1 + 1e-12)


def test_rebatching_repairs_a_plan_one_move_from_the_optimum():
    """From every feasible plan one user-move away from the enumerated optimum (and no shorter span),
    rebatching the two batches the move touched gets back to the optimum's ratio: the optimum's two
    batches are a solution of the sub-problem, and on these instances price-and-branch over the
    sub-problem's columns finds one as good (it is a heuristic in general: the instances are fixed
    and every one of them must be repaired, including those with kept batches)."""
    tried = repaired = kept = 0
    capped = [s.with_(memory_cap_bytes=s.target.parameter_bytes + s.target.kv_bytes(2, max(u.prefix_len for u in s.users)),
                      min_batches=1) for s in generate([6, 7], 4, seed=5, max_draft_length=3)]  # optima of 3 batches
    for scenario in generate([5, 6, 7], 3, seed=8, max_draft_length=4) + capped:
        brute = solve_enumerate(scenario)
        best = brute.evaluation
        if best is None or best.plan.num_batches < 2:
            continue
        for moved, (src, dst) in _spoiled(scenario, best.plan):
            ev = evaluate(scenario, moved)
            if ev.ratio >= best.ratio * (1 - 1e-9) or ev.span_ms < best.span_ms:
                continue
            search = C._Search(scenario, 60)
            search.offer(moved)
            tried += 1
            where = [n for n, b in enumerate(search.best.plan.batches) if b in (moved.batches[src], moved.batches[dst])]
            search._rebatch(tuple(where), Deadline(60))
            repaired += search.best.ratio >= best.ratio * (1 - 1e-9)
            kept += moved.num_batches > 2
    assert tried >= 10 and kept >= 3, "too few spoiled plans: the test would not test"
    assert repaired == tried


@pytest.mark.parametrize("work_limit", [None, 10_000])
def test_a_plan_round_keeps_to_its_share_of_the_limit(monkeypatch, work_limit):
    """Under a time limit a round's dives and IPs get at most ``share`` of the limit together, an even
    part each of what the round has left; under a work limit their own caps as before (no wall-clock share)."""
    scenario = BRANCHING[0]
    search = C._Search(scenario, 100, work_limit)
    search.offer(simple_plan(scenario))
    search.open_box(search.s_min, search.s_high(), search.n_low, scenario.max_batches)
    search.refine()
    caps: list[tuple[str, float]] = []
    now = [40.0]  # an injected clock: 40 s of the 100 used, and only the steps move it
    search.clock.elapsed = lambda: now[0]

    def spend(kind, cap):  # each step runs for all of its cap
        caps.append((kind, cap))
        if work_limit is None:
            now[0] += cap

    monkeypatch.setattr(C, "_dive", lambda *a, **k: spend("dive", a[6]))
    monkeypatch.setattr(C, "_budget_ip", lambda *a, **k: spend("ip", k["cap"]))
    points = len(search.budgets())
    assert points >= 2, "a round of one point would not test the split"
    assert search.plan_round(0.1)
    assert [kind for kind, _ in caps] == ["dive", "ip"] * points
    if work_limit is None:
        assert caps[0][1] == pytest.approx(10 / (2 * points), rel=1e-12)
        assert [cap for _, cap in caps] == pytest.approx([caps[0][1]] * len(caps), rel=1e-12)
        assert sum(cap for _, cap in caps) == pytest.approx(10, rel=1e-12)
    else:
        assert all(cap == (C.DIVE_MAX_S if kind == "dive" else C.IP_MAX_S) for kind, cap in caps)
