"""The closed-form evaluator and the models' tables against the tests' own cost model
(:mod:`tests.costmodel`, which imports nothing of dipsd), at every draft length up to 64, and
the cost model itself against values computed by hand (exact fractions) at long drafts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dipsd import Scenario, User, evaluate, paper_scenario
from dipsd.data.scenario import DraftModel, TargetModel
from dipsd.formulation.plan import Plan
from dipsd.formulation.tables import Tables
from tests import costmodel as cm

# exact values (fractions.Fraction over the paper defaults, alpha 0.78, prefix 512), rounded to floats
U_078 = {4: 3.23310256, 10: 4.24991340234708, 64: 4.545454105177043}
READY = {4: 138.65804592623616, 10: 342.1451148155904, 64: 2173.5287348197785}


def test_cost_model_by_hand_at_long_drafts():
    s = paper_scenario(3, max_draft_length=64)
    server, devices = cm.read(s)
    for l, u in U_078.items():
        assert cm.tokens(devices[0], l) == pytest.approx(u, rel=1e-14)
        assert cm.ready(devices[0], l) == pytest.approx(READY[l], rel=1e-14)
    half = cm.Device(0.5, 512, 3.0, 28, 2048, 6144, 4.0305e-11, 33.8151, None, 20)
    assert cm.tokens(half, 20) == pytest.approx(1.9999990463256836, rel=1e-15)
    assert cm.verify(server, 3, 10, 512) == pytest.approx(112.3752397558784, rel=1e-14)
    assert cm.verify(server, 1, 64, 512) == pytest.approx(132.00016512403457, rel=1e-14)
    assert cm.verify(server, 2, 64, 2048) == pytest.approx(172.00514945009664, rel=1e-14)


def test_a_plan_by_hand_at_long_drafts():
    """Users at 10 and 4 tokens in one batch, one at 64 alone: batch 2's stage (ready 2173.53 ms plus
    132.00 ms) sets S = 2305.53 ms; U = 12.03 tokens; 5.2172 tokens/s (exact fractions)."""
    s = paper_scenario(3, max_draft_length=64)
    plan = Plan(((0, 1), (2,)), (10, 4, 64))
    ev, own = evaluate(s, plan), cm.value(*cm.read(s), plan.batches, plan.lengths)
    assert ev.span_term == "batch 2"
    for tokens, verify_sum, span, tps in ((ev.expected_tokens, ev.verify_total_ms, ev.span_ms, ev.throughput_tps),
                                          (own.tokens, own.verify_sum_ms, own.span_ms, own.tps)):
        assert tokens == pytest.approx(12.028470067524124, rel=1e-14)
        assert verify_sum == pytest.approx(238.61945829462016, rel=1e-14)
        assert span == pytest.approx(2305.528899943813, rel=1e-14)
        assert tps == pytest.approx(5.217228058957432, rel=1e-13)


def random_scenario(rng: np.random.Generator, m: int, lub: int) -> Scenario:
    """Users of every kind the ranges allow (alpha 0 and 1, measured tables, own limits, prefixes
    1 to 131,072, latencies 1e-6 to 6e5 ms), L_ub up to 64, and sometimes a binding memory cap."""
    users = []
    for k in range(m):
        limit = int(rng.integers(1, lub + 1)) if rng.random() < 0.3 else None
        top = lub if limit is None else limit
        table = None
        if rng.random() < 0.3:
            v, values = 1.0, []
            for kk in range(1, top + 1):
                v = min(v + float(rng.uniform(0, 1)), kk + 1.0)
                values.append(v)
            table = tuple(values)
        draft = DraftModel(blocks=int(rng.integers(1, 100)), hidden=int(rng.integers(64, 8192)),
                           ffn_hidden=int(rng.integers(64, 30000)),
                           c_ms_per_flop=float(rng.choice([1e-15, 4.0305e-11, 1e-9, 1e-6])),
                           beta_ms=float(rng.choice([1e-6, 33.8151, 600000.0, rng.uniform(0.01, 100)])))
        users.append(User(name=f"u{k}", alpha=float(rng.choice([0.0, 1.0, rng.uniform(0, 1)])),
                          prefix_len=int(rng.choice([1, 512, 4096, 131072])),
                          comm_latency_ms=float(rng.choice([1e-6, 3.0, 600000.0])), draft=draft, acceptance=table,
                          max_draft_length=limit))
    target = TargetModel(blocks=int(rng.integers(1, 100)), hidden=int(rng.integers(64, 8192)),
                         ffn_hidden=int(rng.integers(64, 30000)), c_ms_per_flop=float(rng.choice([1e-15, 1.2077e-11, 1e-6])),
                         beta_ms=float(rng.choice([1e-6, 95.1074, 600000.0])))
    s = Scenario(f"random-{m}-{lub}", tuple(users), target=target, max_draft_length=lub, min_batches=1, max_batches=m)
    if rng.random() < 0.4:  # a cap that holds b users at the largest prefix, or one byte less
        b = int(rng.integers(1, m + 1))
        cap = target.parameter_bytes + target.kv_bytes(b, max(u.prefix_len for u in users)) - float(rng.choice([0, 1]))
        s = s.with_(memory_cap_bytes=cap)
    return s


def random_plan(rng: np.random.Generator, s: Scenario) -> Plan:
    n = int(rng.integers(1, s.num_users + 1))
    labels = list(range(n)) + [int(rng.integers(0, n)) for _ in range(s.num_users - n)]
    rng.shuffle(labels)
    batches = tuple(tuple(m for m in range(s.num_users) if labels[m] == b) for b in range(n))
    lengths = tuple(int(rng.integers(1, limit + 1)) for limit in s.limits)
    return Plan(batches, lengths)


@pytest.mark.parametrize("seed", range(6))
def test_evaluator_equals_the_cost_model_at_every_length_up_to_64(seed):
    rng = np.random.default_rng(seed)
    checked_long = 0
    for _ in range(40):
        s = random_scenario(rng, int(rng.integers(1, 9)), int(rng.choice([1, 3, 8, 20, 33, 64])))
        server, devices = cm.read(s)
        for _ in range(5):
            plan = random_plan(rng, s)
            ev, want = evaluate(s, plan), cm.value(server, devices, plan.batches, plan.lengths)
            assert ev.expected_tokens == pytest.approx(want.tokens, rel=1e-12)
            assert ev.verify_total_ms == pytest.approx(want.verify_sum_ms, rel=1e-12)
            assert ev.span_ms == pytest.approx(want.span_ms, rel=1e-12)
            assert ev.throughput_tps == pytest.approx(want.tps, rel=1e-12)
            assert ev.feasible is want.feasible
            checked_long += max(plan.lengths) > 3
    assert checked_long >= 50


@pytest.mark.parametrize("seed", range(3))
def test_every_table_entry_equals_the_cost_model(seed):
    """The models' tables (MILP, certify, DiP-SD's steps) hold the cost model's numbers at every length."""
    rng = np.random.default_rng(100 + seed)
    for _ in range(10):
        s = random_scenario(rng, int(rng.integers(1, 7)), int(rng.choice([1, 7, 64])))
        server, devices = cm.read(s)
        t = Tables.of(s)
        for m, d in enumerate(devices):
            for k in range(1, d.limit + 1):
                assert t.tokens[m][k - 1] == pytest.approx(cm.tokens(d, k), rel=1e-13)
                assert t.ready[m][k - 1] == pytest.approx(cm.ready(d, k), rel=1e-13)
        for j, prefix in enumerate(t.levels):
            for k in range(1, s.max_draft_length + 1):
                assert t.seq(k, j) + t.beta_ms == pytest.approx(cm.verify(server, 1, k, prefix), rel=1e-13)
            b = t.room[j]
            assert b == s.num_users or not cm.fits(server, b + 1, prefix)
            assert b == 0 or cm.fits(server, b, prefix)


def test_the_brute_force_oracle_on_two_users_by_hand():
    """Two paper users: two batches at l = 3 each, 28.405 tokens/s (tests/formulation/test_evaluate.py)."""
    best, (batches, lengths) = cm.brute_optimum(paper_scenario(2))
    assert best == pytest.approx(1000 * 5.725904 / 201.577386, rel=1e-6)
    assert lengths == (3, 3) and len(batches) == 2


def test_the_brute_force_oracle_says_infeasible():
    t = paper_scenario(1).target
    s = paper_scenario(3, memory_cap_bytes=t.parameter_bytes + t.kv_bytes(1, 512) + 1, max_batches=2)
    assert cm.brute_optimum(s) == (0.0, None)
    assert cm.brute_optimum(dataclasses.replace(s, max_batches=3))[0] > 0
