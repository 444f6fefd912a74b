"""The closed-form evaluator on hand-checked instances (docs/model.md section 3)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dipsd import Plan, PlanError, Scenario, User, evaluate, paper_scenario
from dipsd.formulation.evaluate import ad_batch_throughput_tps, ad_throughput_tps

# Paper defaults, worked by hand:
#   F_d(512) = 4*28*2048*(2*2048 + 512 + 1 + 6144) = 2,466,480,128 FLOP
#   one draft token: 4.0305e-11 * 2,466,480,128 + 33.8151 = 33.914511... ms
#   F_v(L, 512) = 4*64*5120*L*(2*5120 + 512 + L + 25600) = 1,310,720 * L * (36352 + L)
#     L = 1: 47,648,604,160 FLOP -> 0.575452 ms per sequence
#     L = 2: 95,299,829,760 FLOP -> 1.150936 ms per sequence
#     L = 3: 142,953,676,800 FLOP -> 1.726452 ms per sequence
TOKEN_MS = 4.0305e-11 * 2_466_480_128 + 33.8151
SEQ_MS = {L: 1.2077e-11 * 1_310_720 * L * (36352 + L) for L in (1, 2, 3)}
BETA_V = 95.1074


def u(alpha, l):
    return (1 - alpha ** (l + 1)) / (1 - alpha)


def test_two_users_one_batch_length_2():
    s = paper_scenario(2, min_batches=1)
    e = evaluate(s, Plan(((0, 1),), (2, 2)))
    # U = 2 * (1 - 0.78^3) / 0.22 = 2 * 2.388400 = 4.776800
    assert e.expected_tokens == pytest.approx(4.7768, abs=1e-6)
    # t_v = 95.1074 + 2 * 1.150936 = 97.409272 ms; t_d = 2 * 33.914511 + 3 = 70.829023 ms
    b = e.batches[0]
    assert (b.size, b.max_length, b.max_prefix) == (2, 2, 512)
    assert b.verify_ms == pytest.approx(BETA_V + 2 * SEQ_MS[2], rel=1e-12)
    assert b.verify_ms == pytest.approx(97.409272, abs=1e-6)
    assert b.ready_ms == pytest.approx(2 * TOKEN_MS + 3.0, rel=1e-12)
    # one batch: S = max(97.41, 70.83 + 97.41) = 168.238295 ms, set by the batch's stage
    assert e.span_ms == pytest.approx(168.238295, abs=1e-6)
    assert e.span_term == "batch 1"
    # R = 1000 * 4.7768 / 168.238295 = 28.393 tokens/s
    assert e.throughput_tps == pytest.approx(1000 * 4.7768 / 168.238295, rel=1e-7)
    assert e.feasible and e.reason == "feasible"
    # memory: Gamma_p = 64 * (8*5120^2 + 4*5120*25600) = 46,976,204,800; KV = 4*64*5120*2*512 = 1,342,177,280
    assert b.memory_bytes == 46_976_204_800 + 1_342_177_280


def test_two_users_two_batches_length_3_span_set_by_drafting():
    s = paper_scenario(2)
    e = evaluate(s, Plan(((0,), (1,)), (3, 3)))
    # U = 2 * (1 - 0.78^4) / 0.22 = 5.725904
    assert e.expected_tokens == pytest.approx(2 * u(0.78, 3), rel=1e-12)
    assert e.expected_tokens == pytest.approx(5.725904, abs=1e-6)
    # t_v = 95.1074 + 1.726452 = 96.833852 per batch; sum = 193.667703
    # t_d = 3 * 33.914511 + 3 = 104.743534; stage = 201.577386 > 193.667703: drafting sets S
    assert e.verify_total_ms == pytest.approx(193.667703, abs=1e-6)
    assert e.span_ms == pytest.approx(201.577386, abs=1e-6)
    assert e.span_term == "batch 1"
    assert e.throughput_tps == pytest.approx(1000 * 5.725904 / 201.577386, rel=1e-6)


def test_span_set_by_verification():
    s = paper_scenario(6)
    e = evaluate(s, Plan(((0, 1, 2), (3, 4, 5)), (1,) * 6))
    # t_v = 95.1074 + 3 * 0.575452 = 96.833756; sum = 193.667512
    # stage = 33.914511 + 3 + 96.833756 = 133.748267 < 193.667512
    assert e.span_term == "verification"
    assert e.span_ms == pytest.approx(2 * (BETA_V + 3 * SEQ_MS[1]), rel=1e-12)
    assert e.span_ms == pytest.approx(193.667512, abs=1e-5)


def test_padding_to_longest_draft_and_prefix():
    users = (User("a", prefix_len=100), User("b", prefix_len=900))
    s = Scenario("pad", users, min_batches=1)
    e = evaluate(s, Plan(((0, 1),), (1, 3)))
    b = e.batches[0]
    assert (b.max_length, b.max_prefix) == (3, 900)
    # F_v(3, 900) = 1,310,720 * 3 * (10240 + 900 + 3 + 25600) = 1,310,720 * 3 * 36743
    assert b.verify_ms == pytest.approx(BETA_V + 2 * 1.2077e-11 * 1_310_720 * 3 * 36743, rel=1e-12)
    # user a drafts 1 token with prefix 100: F_d(100) = 229,376 * (4096 + 101 + 6144)
    token_a = 4.0305e-11 * 229_376 * (4096 + 101 + 6144) + 33.8151
    assert e.user_ready_ms[0] == pytest.approx(token_a + 3.0, rel=1e-12)


def test_memory_cap_broken():
    # cap fits parameters + 3 users of prefix 512 (KV 671,088,640 bytes each), not 4
    cap = 46_976_204_800 + 3 * 671_088_640 + 1
    s = paper_scenario(4, memory_cap_bytes=cap)
    bad = evaluate(s, Plan(((0, 1, 2, 3),), (2,) * 4))
    assert not bad.feasible and "batch 1 needs" in bad.reason and not bad.batches[0].memory_ok
    ok = evaluate(s, Plan(((0, 1, 2), (3,)), (2,) * 4))
    assert ok.feasible and s.max_batch_size(512) == 3


def test_batch_count_outside_range_is_infeasible():
    s = paper_scenario(3, max_batches=2)
    e = evaluate(s, Plan(((0,), (1,), (2,)), (1, 1, 1)))
    assert not e.feasible and "3 batches outside 2..2" in e.reason


def test_acceptance_table_replaces_closed_form():
    table = (1.5, 1.9, 2.2, 2.4)
    s = Scenario("t", (User("a", acceptance=table), User("b", alpha=0.5)), max_draft_length=4, min_batches=1)
    e = evaluate(s, Plan(((0, 1),), (3, 2)))
    # U = 2.2 (table at k=3) + (1 - 0.5^3) / 0.5 = 2.2 + 1.75
    assert e.expected_tokens == pytest.approx(3.95, abs=1e-12)


def test_alpha_one_gives_l_plus_one():
    s = Scenario("a1", (User("a", alpha=1.0), User("b", alpha=0.0)), min_batches=1)
    e = evaluate(s, Plan(((0,), (1,)), (5, 5)))
    # alpha = 1: u = 6; alpha = 0: u = 1
    assert e.user_tokens == (6.0, 1.0) and e.expected_tokens == 7.0


@pytest.mark.parametrize("plan,msg", [
    (Plan(((0,), (1,)), (1,)), "2 users"),
    (Plan(((0,), ()), (1, 1)), "empty"),
    (Plan(((0, 0),), (1, 1)), "partition"),
    (Plan(((0, 1),), (0, 1)), "outside 1..20"),
    (Plan(((0, 1),), (1, 21)), "outside 1..20"),
])
def test_malformed_plans(plan, msg):
    with pytest.raises(PlanError, match=msg):
        evaluate(paper_scenario(2), plan)


def test_ad_baselines_by_hand():
    s = paper_scenario(4)
    # AD: 4 / (4 * (95.1074 + 0.575452)) tokens per ms
    assert ad_throughput_tps(s) == pytest.approx(1000 / (BETA_V + SEQ_MS[1]), rel=1e-12)
    # greedy: all 4 users fit one batch: 4 / (95.1074 + 4 * 0.575452)
    assert ad_batch_throughput_tps(s) == pytest.approx(4000 / (BETA_V + 4 * SEQ_MS[1]), rel=1e-12)
    tight = paper_scenario(4, memory_cap_bytes=46_976_204_800 + 3 * 671_088_640 + 1)
    # batches of 3 and 1: 4 / (2 * 95.1074 + 4 * 0.575452)
    assert ad_batch_throughput_tps(tight) == pytest.approx(4000 / (2 * BETA_V + 4 * SEQ_MS[1]), rel=1e-12)


# ---------------------------------------------------------------- properties
@st.composite
def scenario_and_plan(draw):
    m = draw(st.integers(1, 5))
    lub = draw(st.integers(1, 6))
    users = tuple(
        User(f"u{i}", alpha=draw(st.floats(0, 1)), prefix_len=draw(st.integers(1, 4096)),
             comm_latency_ms=draw(st.floats(0.01, 50)))
        for i in range(m)
    )
    s = Scenario("p", users, max_draft_length=lub, min_batches=1)
    labels = [draw(st.integers(0, m - 1)) for _ in range(m)]
    groups = {}
    for i, g in enumerate(labels):
        groups.setdefault(g, []).append(i)
    batches = tuple(tuple(v) for v in groups.values())
    lengths = tuple(draw(st.integers(1, lub)) for _ in range(m))
    return s, Plan(batches, lengths)


@settings(max_examples=150, deadline=None)
@given(scenario_and_plan())
def test_evaluator_invariants(sp):
    s, plan = sp
    e = evaluate(s, plan)
    assert math.isclose(e.expected_tokens, sum(e.user_tokens))
    assert e.span_ms >= e.verify_total_ms - 1e-9
    for b in e.batches:
        assert e.span_ms >= b.ready_ms + b.verify_ms - 1e-9
        assert b.verify_ms >= s.target.beta_ms
    assert 1 <= min(e.user_tokens) and all(t <= plan.lengths[i] + 1 + 1e-12 for i, t in enumerate(e.user_tokens))
    # the verification order does not change the span
    rev = evaluate(s, Plan(tuple(reversed(plan.batches)), plan.lengths))
    assert rev.span_ms == pytest.approx(e.span_ms, rel=1e-12)
