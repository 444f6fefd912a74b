"""polish.exchange: swaps of two users between batches, where moves cannot change full batches."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from dipsd import Plan, User, evaluate, paper_scenario
from dipsd.data.generate import generate
from dipsd.solvers.polish import exchange
from dipsd.solvers.tolerances import IMPROVE_RTOL


def _two_full_batches():
    """Users 0, 1 with prefix 2048 and 2, 3 with 128; the cap holds 2 users at 2048, N = 2."""
    s = paper_scenario(4, max_draft_length=6, min_batches=2, max_batches=2)
    users = tuple(User(name=f"u{m}", alpha=0.8, prefix_len=2048 if m < 2 else 128) for m in range(4))
    s = s.with_(users=users)
    cap = s.target.parameter_bytes + s.target.kv_bytes(2, 2048)
    return s.with_(memory_cap_bytes=cap)


def test_a_swap_sorts_long_prefixes_into_one_batch_where_no_move_fits():
    s = _two_full_batches()
    assert s.max_batch_size(2048) == 2
    start = evaluate(s, Plan(((0, 2), (1, 3)), (1, 1, 1, 1)))  # both batches padded to 2048
    assert start.feasible and start.span_term == "verification"  # the span is the verification
    for m in range(4):  # moving one user breaks the cap (3 users at 2048) or N = 2 (one batch)
        batches = [[u for u in b if u != m] for b in start.plan.batches]
        batches[1 - (m in (1, 3))].append(m)
        assert not evaluate(s, Plan(tuple(tuple(sorted(b)) for b in batches if b), start.plan.lengths)).feasible
    found = exchange(s, start)
    assert {tuple(b) for b in found.plan.batches} == {(0, 1), (2, 3)}
    # by hand: the same lengths and the batch of users 2 and 3 padded to prefix 128, not 2048
    t = s.target
    assert found.plan.lengths == (1, 1, 1, 1)
    assert math.isclose(found.span_ms, t.verify_ms(2, 1, 2048) + t.verify_ms(2, 1, 128), rel_tol=1e-12)
    assert found.span_ms < start.span_ms and found.ratio == evaluate(s, found.plan).ratio


def test_exchange_ends_where_no_swap_improves():
    rng = np.random.default_rng(5)
    moved = 0
    for seed in range(6):
        (s,) = generate([7], 1, seed=seed, max_draft_length=5)
        s = dataclasses.replace(s, min_batches=3, max_batches=3)
        lengths = tuple(int(v) for v in rng.integers(1, 6, size=7))
        start = evaluate(s, Plan(((0, 1, 2), (3, 4), (5, 6)), lengths))
        if not start.feasible:
            continue
        found = exchange(s, start)
        assert found.feasible and found.ratio >= start.ratio
        assert evaluate(s, found.plan).ratio == found.ratio
        moved += found.plan.batches != start.plan.batches
        where = {m: n for n, b in enumerate(found.plan.batches) for m in b}
        for i, j in itertools.combinations(range(7), 2):
            if where[i] == where[j]:
                continue
            batches = [list(b) for b in found.plan.batches]
            batches[where[i]] = sorted([m for m in batches[where[i]] if m != i] + [j])
            batches[where[j]] = sorted([m for m in batches[where[j]] if m != j] + [i])
            traded = list(found.plan.lengths)
            traded[i], traded[j] = traded[j], traded[i]
            for ls in (found.plan.lengths, tuple(traded)):
                ev = evaluate(s, Plan(tuple(tuple(b) for b in batches), ls))
                assert not (ev.feasible and ev.ratio > found.ratio * (1 + IMPROVE_RTOL))
    assert moved >= 2  # the instances exercise swaps


def test_exchange_keeps_each_users_length_limit():
    s = _two_full_batches()
    users = tuple(dataclasses.replace(u, max_draft_length=1) if m in (0, 1) else u for m, u in enumerate(s.users))
    s = s.with_(users=users)
    start = evaluate(s, Plan(((0, 2), (1, 3)), (1, 1, 6, 6)))
    found = exchange(s, start)
    assert found.feasible and all(length <= limit for length, limit in zip(found.plan.lengths, s.limits))
