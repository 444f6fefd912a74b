"""DiP-SD's step layouts: the stage-free test is a proof obligation, checked by enumeration,
and the x-step on merged classes still finds the enumerated optimum."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dipsd import Plan, evaluate
from dipsd.data.generate import generate
from dipsd.formulation.steps import assignment_layout
from dipsd.formulation.tables import Tables
from dipsd.solvers import dipsd as D
from dipsd.solvers.deadline import Deadline
from tests.solvers.instances import rg_partitions


def _cases():
    rng = np.random.default_rng(12)
    out = []
    for _i in range(40):
        m = int(rng.integers(3, 7))
        (s,) = generate([m], 1, seed=int(rng.integers(1 << 30)), max_draft_length=6)
        lengths = tuple(int(rng.integers(1, 7)) for _ in range(m))
        for n in range(2, m + 1):
            out.append((s, lengths, n))
    return out


CASES = _cases()


def test_stage_free_holds_both_ways_in_the_cases():
    flags = [assignment_layout(Tables.of(s), lengths, n).stage_free for s, lengths, n in CASES]
    assert any(flags) and not all(flags)


@pytest.mark.parametrize("s,lengths,n", [c for c in CASES if assignment_layout(Tables.of(c[0]), c[1], c[2]).stage_free][:25])
def test_stage_free_means_every_plan_spans_its_verification_sum(s, lengths, n):
    for batches in rg_partitions(s.num_users, n):
        ev = evaluate(s, Plan(batches, lengths))
        assert ev.span_ms == pytest.approx(sum(b.verify_ms for b in ev.batches), rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("s,lengths,n", [c for c in CASES if assignment_layout(Tables.of(c[0]), c[1], c[2]).stage_free][:25])
def test_x_step_on_merged_classes_finds_the_enumerated_optimum(s, lengths, n):
    t = Tables.of(s)
    layout = assignment_layout(t, lengths, n)
    assert layout.stage_free and len(layout.classes) <= len({(t.level_of[m], lengths[m]) for m in range(s.num_users)})
    feasible = [e.span_ms for e in (evaluate(s, Plan(p, lengths)) for p in rg_partitions(s.num_users, n)) if e.feasible]
    got = D.x_step(s, t, lengths, n, Deadline(60))
    assert (got is None) == (not feasible)
    if feasible:
        assert got.span_ms == pytest.approx(min(feasible), rel=1e-9) and got.plan.lengths == lengths


def test_n_equal_one_is_never_stage_free():
    (s,) = generate([4], 1, seed=3)
    assert not any(assignment_layout(Tables.of(s), l, 1).stage_free for l in itertools.product(range(1, 4), repeat=4))


def _mixed(case):
    s, lengths, n = case
    lay = assignment_layout(Tables.of(s), lengths, n)
    return 0 < len(lay.untimed) < len(lay.classes)


@pytest.mark.parametrize("s,lengths,n", [c for c in CASES if _mixed(c)][:25])
def test_x_step_with_fast_and_slow_users_finds_the_enumerated_optimum(s, lengths, n):
    """Fast users merged and untimed, slow users timed: still the exact x-step."""
    t = Tables.of(s)
    feasible = [e.span_ms for e in (evaluate(s, Plan(p, lengths)) for p in rg_partitions(s.num_users, n)) if e.feasible]
    got = D.x_step(s, t, lengths, n, Deadline(60))
    assert (got is None) == (not feasible)
    if feasible:
        assert got.span_ms == pytest.approx(min(feasible), rel=1e-9)


def test_some_cases_mix_fast_and_slow_users():
    assert sum(_mixed(c) for c in CASES) >= 10
