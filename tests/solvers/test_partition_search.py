"""The x-step's branch and bound (solvers.partition_search) against brute force on the independent
cost model, and against the step MILP on seeded instances (issue 36: the MILP stays the cross-check)."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from dipsd.data.generate import generate
from dipsd.formulation.tables import Tables
from dipsd.solvers import steps
from dipsd.solvers.deadline import Deadline
from dipsd.solvers.partition_search import best_partition, span_of

from .. import costmodel
from .instances import far_scaled_instances, limited_instances, nested_room_instances, odd_instances, tiny_instances


def _least_span(s, lengths, n) -> float | None:
    """The least span over every memory-feasible partition into n batches (independent model)."""
    server, devices = costmodel.read(s)
    spans = [v.span_ms for p in costmodel.set_partitions(s.num_users) if len(p) == n
             and all(costmodel.fits(server, len(b), max(devices[m].prefix for m in b)) for b in p)
             for v in [costmodel.value(server, devices, p, lengths)]]
    return min(spans) if spans else None


def _cases(seed: int):
    rng = np.random.default_rng(seed)
    pools = (tiny_instances(16, seed), odd_instances(20, seed), limited_instances(12, seed),
             far_scaled_instances(10, seed), nested_room_instances(8, seed))
    for s in itertools.chain(*pools):
        lengths = tuple(int(rng.integers(1, s.limits[m] + 1)) for m in range(s.num_users))
        for n in range(1, s.num_users + 1):
            yield s, lengths, n


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)])
def test_search_equals_brute_force_on_tiny_and_odd_instances(seed):
    """Both orders, from no incumbent: the least span within 1e-9 (None exactly when no partition
    fits memory), a partition into exactly n non-empty memory-feasible batches whose closed-form
    span is the reported one; the search proves it."""
    checked = 0
    for s, lengths, n in _cases(seed):
        t = Tables.of(s)
        want = _least_span(s, lengths, n)
        server, devices = costmodel.read(s)
        for by_ready in (False, True):
            got = best_partition(t, lengths, n, float("inf"), by_ready=by_ready)
            assert got.proven
            if want is None:
                assert got.batches is None, s.name
                continue
            assert got.batches is not None and len(got.batches) == n and all(got.batches), s.name
            assert sorted(m for b in got.batches for m in b) == list(range(s.num_users))
            assert all(costmodel.fits(server, len(b), max(devices[m].prefix for m in b)) for b in got.batches)
            span = costmodel.value(server, devices, got.batches, lengths).span_ms
            assert span == pytest.approx(got.span_ms, rel=1e-12, abs=1e-300)
            assert span <= want * (1 + 1e-9), (s.name, lengths, n, span, want)
        checked += 1
    assert checked >= 60


def test_search_from_an_incumbent_returns_only_a_better_partition():
    """Given the least span as incumbent the search proves nothing beats it (no partition); given
    slightly more, it returns one at the least span."""
    for s, lengths, n in itertools.islice(_cases(7), 0, 200, 3):
        want = _least_span(s, lengths, n)
        if want is None or want <= 0:
            continue
        t = Tables.of(s)
        none = best_partition(t, lengths, n, want)
        assert none.proven and none.batches is None, s.name
        some = best_partition(t, lengths, n, want * (1 + 1e-6))
        assert some.batches is not None and span_of(t, lengths, some.batches) == pytest.approx(want, rel=1e-9)


def test_x_step_falls_back_to_the_milp_when_the_search_stops(monkeypatch):
    """With a node budget of one the search proves nothing; the step still returns the least span
    (the MILP from the search's incumbent)."""
    monkeypatch.setattr(steps, "SEARCH_BUDGET", (1, 1))
    logging.disable(logging.WARNING)
    try:
        for s, lengths, n in itertools.islice(_cases(4), 0, 120, 7):
            if n not in s.batch_range:
                continue  # DiP-SD asks only for allowed counts (the MILP enforces the range)
            want = _least_span(s, lengths, n)
            got = steps.x_step(s, Tables.of(s), lengths, n, Deadline(60))
            assert (got is None) == (want is None), s.name
            if got is not None:
                assert got.span_ms <= want * (1 + 1e-9)
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("sizes,seeds", [((10,), (0, 1)), pytest.param((12, 16), range(5), marks=pytest.mark.slow)])
def test_x_step_equals_the_milp_on_seeded_instances(sizes, seeds):
    """The search and the step MILP reach the same least span (1e-9) at the start length and at
    lengths spread over 1..L_ub."""
    logging.disable(logging.WARNING)
    try:
        for m in sizes:
            for seed in seeds:
                (s,) = generate([m], 1, seed=seed)
                t, rng = Tables.of(s), np.random.default_rng(seed)
                for lengths in (s.clipped(s.start_length), tuple(int(rng.integers(1, s.limits[u] + 1)) for u in range(m))):
                    for n in sorted({2, 3, m // 3} & set(s.batch_range)):
                        fast = steps.x_step(s, t, lengths, n, Deadline(60))
                        milp = steps.x_step_milp(s, t, lengths, n, Deadline(60))
                        assert (fast is None) == (milp is None)
                        if fast is not None:
                            assert fast.span_ms == pytest.approx(milp.span_ms, rel=1e-9), (s.name, lengths, n)
    finally:
        logging.disable(logging.NOTSET)


def test_sorted_segments_is_exact_where_it_applies():
    """Every user fast and one common length (or one common prefix): the one-dimensional dynamic
    program returns the least span (brute force), or says no partition fits memory."""
    from dipsd.solvers.partition_search import sorted_segments

    applied = 0
    rng = np.random.default_rng(11)
    for s, lengths, n in _cases(11):
        common = (int(rng.integers(1, min(s.limits) + 1)),) * s.num_users
        one_level = s.with_(users=tuple(u.__class__(**{**u.__dict__, "prefix_len": s.users[0].prefix_len}) for u in s.users))
        for scenario, ls in ((s, common), (one_level, lengths)):
            got = sorted_segments(Tables.of(scenario), ls, n)
            if got is None:
                continue
            applied += 1
            want = _least_span(scenario, ls, n)
            batches, span = got
            assert (batches is None) == (want is None), scenario.name
            if want is not None:
                server, devices = costmodel.read(scenario)
                assert costmodel.value(server, devices, batches, ls).span_ms == pytest.approx(span, rel=1e-12)
                assert span <= want * (1 + 1e-9), (scenario.name, ls, n, span, want)
    assert applied >= 40


def test_a_search_stopped_by_its_deadline_returns_its_incumbent_and_says_so():
    """The deadline is polled every 256 nodes: an expired one stops the search (not proven, timed
    out), and x_step returns the best partition so far without the MILP, marking the clock as hit."""
    (s,) = generate([40], 1, seed=0)
    t = Tables.of(s)
    lengths = tuple(1 + (m * 7) % s.max_draft_length for m in range(40))
    got = best_partition(t, lengths, 4, float("inf"), expired=lambda: True)
    assert got.timed_out and not got.proven and got.nodes == 256
    clock = Deadline(0.0)
    ev = steps.x_step(s, t, lengths, 4, clock)
    assert clock.hit and (ev is None or ev.plan.num_batches == 4)
