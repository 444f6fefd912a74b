"""The l-step's exact search (solvers.length_search) against brute force on the independent cost
model, and against the Dinkelbach MILP on seeded instances (issue 36: the MILP stays the cross-check)."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from dipsd import evaluate
from dipsd.data.generate import generate
from dipsd.formulation.evaluate import greedy_batches
from dipsd.formulation.plan import Plan
from dipsd.formulation.tables import Tables
from dipsd.solvers.deadline import Deadline
from dipsd.solvers.dipsd import split_to
from dipsd.solvers.length_search import best_lengths
from dipsd.solvers.steps import l_step, l_step_milp

from .. import costmodel
from .instances import far_scaled_instances, limited_instances, odd_instances, tiny_instances


def _random_partition(m: int, rng) -> tuple[tuple[int, ...], ...]:
    labels = rng.integers(0, int(rng.integers(1, m + 1)), size=m)
    return tuple(tuple(int(i) for i in np.nonzero(labels == b)[0]) for b in np.unique(labels))


def _brute_best(s, batches) -> float:
    """The best tokens/s over every length vector for ``batches``, on the independent cost model."""
    server, devices = costmodel.read(s)
    return max(costmodel.value(server, devices, batches, ls).tps
               for ls in itertools.product(*(range(1, d.limit + 1) for d in devices)))


def _cases(seed: int):
    rng = np.random.default_rng(seed)
    pools = (tiny_instances(16, seed), odd_instances(24, seed), limited_instances(16, seed), far_scaled_instances(12, seed))
    for s in itertools.chain(*pools):
        if np.prod([s.limits[m] for m in range(s.num_users)], dtype=float) > 4096:
            continue
        for _ in range(2):
            yield s, _random_partition(s.num_users, rng)


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)])
def test_l_step_equals_brute_force_on_tiny_and_odd_instances(seed):
    """Every batching (memory ignored: the step's optimum does not depend on it), odd corners
    included (alpha 0/1, flat tables, own limits, 6e5 ms and 5e-324 latencies): the step's plan is
    the best length vector within 1e-9, and its value is its closed form's."""
    checked = 0
    for s, batches in _cases(seed):
        start = evaluate(s, Plan(batches, (1,) * s.num_users))
        got = l_step(s, Tables.of(s), start, Deadline(60))
        assert got.plan.batches == batches
        best = _brute_best(s, batches)
        server, devices = costmodel.read(s)
        own = costmodel.value(server, devices, batches, got.plan.lengths).tps
        assert own == pytest.approx(got.throughput_tps, rel=1e-12), s.name
        assert own >= best * (1 - 1e-9), (s.name, batches, own, best)
        checked += 1
    assert checked >= 80


def test_best_lengths_says_nothing_beats_an_optimal_incumbent():
    """Given the optimum as incumbent the search returns None; just below it, a plan at the optimum."""
    for s in tiny_instances(12, seed=21):
        batches = tuple((m,) for m in range(s.num_users))
        t = Tables.of(s)
        best = max(evaluate(s, Plan(batches, ls)).ratio
                   for ls in itertools.product(*(range(1, s.limits[m] + 1) for m in range(s.num_users))))
        assert best_lengths(t, batches, best) == (None, True), s.name
        lengths, proven = best_lengths(t, batches, best * (1 - 1e-6))
        assert proven
        assert lengths is not None and evaluate(s, Plan(batches, lengths)).ratio == pytest.approx(best, rel=1e-12)


def test_shortest_length_among_equal_tokens():
    """alpha 0 gives one token at every length: the search drafts one token (the shortest length
    with the chosen tokens), never a longer draft that only costs time."""
    s = tiny_instances(1, seed=5)[0]
    s = s.with_(users=tuple(u.__class__(**{**u.__dict__, "alpha": 0.0, "acceptance": None}) for u in s.users))
    batches = (tuple(range(s.num_users)),)
    s = s.with_(min_batches=1)
    got = l_step(s, Tables.of(s), evaluate(s, Plan(batches, s.clipped(s.max_draft_length))), Deadline(60))
    assert got.plan.lengths == (1,) * s.num_users


def _seeded(sizes, seeds):
    for m in sizes:
        for seed in seeds:
            (s,) = generate([m], 1, seed=seed)
            packed = greedy_batches(s)
            for n in sorted({len(packed), len(packed) + 1, max(len(packed), m // 3)} & set(s.batch_range)):
                batches = split_to(packed, n)
                start = evaluate(s, Plan(batches, s.clipped(s.start_length)))
                yield s, start


@pytest.mark.parametrize("sizes,seeds", [((8,), (0, 1)), pytest.param((10, 14), range(6), marks=pytest.mark.slow)])
def test_l_step_equals_the_milp_on_seeded_instances(sizes, seeds):
    """The search and Dinkelbach over the step MILP reach the same ratio (1e-9)."""
    logging.disable(logging.WARNING)
    try:
        for s, start in _seeded(sizes, seeds):
            t = Tables.of(s)
            fast = l_step(s, t, start, Deadline(60))
            milp = l_step_milp(s, t, start, Deadline(60))
            assert fast.ratio == pytest.approx(milp.ratio, rel=1e-9), s.name
    finally:
        logging.disable(logging.NOTSET)


def test_a_search_stopped_by_its_deadline_says_so():
    """An expired deadline stops the search at once: not proven, the incumbent kept; l_step then
    marks the clock as hit, so DiP-SD's result says time_limit."""
    s = tiny_instances(1, seed=5)[0]
    batches = tuple((m,) for m in range(s.num_users))
    assert best_lengths(Tables.of(s), batches, 0.0, expired=lambda: True) == (None, False)
    clock = Deadline(0.0)
    start = evaluate(s, Plan(batches, (1,) * s.num_users))
    assert l_step(s, Tables.of(s), start, clock).ratio >= start.ratio and clock.hit
