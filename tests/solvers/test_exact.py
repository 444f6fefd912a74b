"""The exact solver against brute force, and its statuses, bounds and trace."""

from __future__ import annotations

import pytest

from dipsd import Scenario, User, paper_scenario
from dipsd.data.generate import generate
from dipsd.solvers.brute import partitions, solve_enumerate
from dipsd.solvers.deadline import Deadline
from dipsd.solvers.exact import solve_exact
from dipsd.solvers.results import Status
from tests import costmodel as cm
from tests.solvers.instances import assert_consistent, nested_room_instances, tiny_instances

INSTANCES = tiny_instances()


def test_instances_cover_the_model():
    assert len(INSTANCES) >= 40
    assert {s.num_users for s in INSTANCES} == {2, 3, 4, 5, 6}
    assert any(s.min_batches == 1 for s in INSTANCES)
    assert any(u.acceptance for s in INSTANCES for u in s.users)
    assert any(s.max_batch_size(max(u.prefix_len for u in s.users)) < s.num_users for s in INSTANCES)
    assert any(len({u.prefix_len for u in s.users}) > 2 for s in INSTANCES)
    assert any(s.max_draft_length <= 3 for s in INSTANCES)
    assert any(s.name.endswith("clones") for s in INSTANCES)


FAST = {"het-0", "paper-3", "het-9", "het-12", "het-17"}
"""In the fast default run (het-17 takes three Dinkelbach iterations from the simple plan)."""


@pytest.mark.parametrize("scenario", [pytest.param(s, marks=() if s.name in FAST else pytest.mark.slow, id=s.name)
                                      for s in INSTANCES])
def test_exact_equals_enumeration(scenario):
    """Against the tests' own brute force (:mod:`tests.costmodel`) and the package's ``enumerate``."""
    optimum, argmax = cm.brute_optimum(scenario)
    brute = solve_enumerate(scenario)
    exact = solve_exact(scenario, time_limit=120)
    assert exact.status is brute.status
    if argmax is None:
        assert brute.status is Status.INFEASIBLE
        return
    assert exact.status is Status.OPTIMAL
    assert exact.throughput_tps == pytest.approx(optimum, rel=1e-9)
    assert brute.throughput_tps == pytest.approx(optimum, rel=1e-12)
    # the certified bound is q + F_ub/S_min with HiGHS's dual bound F_ub (its tolerances, ~1e-8 and below)
    assert exact.upper_bound_tps == pytest.approx(exact.throughput_tps, rel=1e-6)
    assert_consistent(scenario, exact)
    assert_consistent(scenario, brute)
    # Dinkelbach: q never decreases and the last F(q) is <= eps
    qs = [it.q for it in exact.trace]
    assert all(b >= a for a, b in zip(qs, qs[1:]))
    assert exact.trace[-1].value <= 1e-7
    assert exact.iterations == len(exact.trace)


NESTED = nested_room_instances(6, seed=9)


@pytest.mark.parametrize("scenario", NESTED, ids=[s.name for s in NESTED])
def test_exact_equals_enumeration_where_higher_prefixes_have_smaller_rooms(scenario):
    """The MILP's rows ``sum_n P_nj >= r_j`` count the greedy packing of the users of prefix ``>= P_j``
    (more than ``ceil(h_j / B_j)`` on these instances): they cut off no plan, exact finds the optimum."""
    brute = solve_enumerate(scenario)
    exact = solve_exact(scenario, time_limit=120, start_plan=None)
    assert exact.status is Status.OPTIMAL
    assert exact.throughput_tps == pytest.approx(brute.throughput_tps, rel=1e-9)
    assert_consistent(scenario, exact)


def test_two_paper_users_by_hand():
    # two batches, l = 3 each (see tests/formulation/test_evaluate.py): 28.405 tokens/s
    r = solve_exact(paper_scenario(2))
    assert r.status is Status.OPTIMAL and r.plan.lengths == (3, 3) and r.plan.num_batches == 2
    assert r.throughput_tps == pytest.approx(1000 * 5.725904 / 201.577386, rel=1e-6)


def test_start_plan_sets_first_q():
    s = paper_scenario(4)
    best = solve_exact(s)
    again = solve_exact(s, start_plan=best.plan)
    assert again.trace[0].q == pytest.approx(best.throughput_tps / 1000, rel=1e-12)
    assert again.iterations == 1 and again.throughput_tps == pytest.approx(best.throughput_tps, rel=1e-12)


def test_infeasible_memory_cap_is_a_status():
    # each batch holds one user (cap: parameters + one user's KV), but at most 2 batches for 4 users
    t = paper_scenario(1).target
    cap = t.parameter_bytes + t.kv_bytes(1, 512) + 1
    s = paper_scenario(4, memory_cap_bytes=cap, max_batches=2)
    r = solve_exact(s)
    assert r.status is Status.INFEASIBLE and r.plan is None and r.upper_bound_tps is None
    assert solve_enumerate(s).status is Status.INFEASIBLE


def test_time_limit_gives_incumbent_and_certified_bound(monkeypatch):
    """The clock runs out right after the first Dinkelbach iteration (an injected clock, so the status
    does not depend on how fast the machine is): the incumbent and that iteration's certificate."""
    from dipsd.solvers import exact as E

    (s,) = generate([4], 1, seed=3, max_draft_length=5)  # Dinkelbach takes 3 iterations from the simple plan
    s = s.with_(min_batches=1)
    optimum = cm.brute_optimum(s)[0]
    solved: list = []

    class OneIteration(Deadline):
        def remaining(self) -> float:
            return 0.0 if solved else super().remaining()

    def counted(*args, **kwargs):
        solved.append(real(*args, **kwargs))
        return solved[-1]

    real = E._iteration
    monkeypatch.setattr(E, "Deadline", OneIteration)
    monkeypatch.setattr(E, "_iteration", counted)
    r = solve_exact(s, time_limit=600)
    assert r.status is Status.TIME_LIMIT and r.iterations == 1, r.message
    assert r.throughput_tps < optimum * (1 - 1e-6), "the first iteration already found the optimum: the test would not test"
    assert_consistent(s, r)
    assert r.upper_bound_tps is None or r.upper_bound_tps >= optimum * (1 - 1e-12)
    assert r.throughput_tps <= optimum * (1 + 1e-12)
    assert r.to_json(s)["status"] == "time_limit"


def test_partitions_are_bell_numbers():
    assert [sum(1 for _ in partitions(m, 1, m)) for m in range(1, 7)] == [1, 2, 5, 15, 52, 203]
    assert sum(1 for _ in partitions(4, 2, 3)) == 7 + 6


def test_enumerate_refuses_large_instances():
    from dipsd.errors import TooLargeError
    with pytest.raises(TooLargeError, match="use method 'exact'"):
        solve_enumerate(paper_scenario(8))


def test_json_contract_keys():
    s = paper_scenario(3)
    data = solve_exact(s).to_json(s)
    assert list(data) == ["scenario", "method", "status", "throughput_tps", "upper_bound_tps", "num_batches", "batches",
                          "draft_lengths", "span_ms", "expected_tokens", "iterations", "runtime_s", "message"]
    assert data["status"] == "optimal" and sorted(sum(data["batches"], [])) == ["u1", "u2", "u3"]


def test_model_too_large_for_the_time_limit_stops_at_once_without_a_bound():
    (s,) = generate([120], 1, seed=0)
    r = solve_exact(s, time_limit=5)
    assert r.status is Status.TIME_LIMIT and r.upper_bound_tps is None and r.iterations == 0 and r.build_s == 0.0
    assert "would take about" in r.message and r.plan is not None


# ----------------------------------------------------------------------------- tolerance-level regressions
def test_a_mip_start_highs_maps_wrongly_is_solved_again_in_exact_too():
    """Paper defaults but beta_v = 5 ms, L_ub = 1, 1..2 batches: HiGHS returned the start's columns
    with the optimal value (exact used to end in `error`); the session solves again without it."""
    from dipsd.data.scenario import DraftModel, TargetModel

    alphas, betas = (0, 0, 1, 0.5, 0.78), (33.8151, 1, 1, 33.8151, 5)
    users = tuple(User(name=f"u{i}", alpha=a, draft=DraftModel(beta_ms=b)) for i, (a, b) in enumerate(zip(alphas, betas)))
    s = Scenario("mip-start", users, target=TargetModel(beta_ms=5), max_draft_length=1, min_batches=1, max_batches=2)
    brute = solve_enumerate(s)
    assert brute.throughput_tps == pytest.approx(169.045157, rel=1e-8)
    for start in (None, brute.plan):
        e = solve_exact(s, start_plan=start)
        assert e.status is Status.OPTIMAL and e.throughput_tps == pytest.approx(brute.throughput_tps, rel=1e-9)
        assert e.upper_bound_tps >= brute.throughput_tps
        assert_consistent(s, e)


def test_optimal_is_claimed_only_when_the_bound_proves_it():
    """A 600,000 ms server and draft latency with 1e-15 ms/FLOP slopes: HiGHS's default tolerances
    (1e-6 absolute on an objective of a few tokens) made exact claim `optimal` 6.7e-9 below the
    optimum, its own F(q) bound positive.  Scaled and tightened, the claim holds to 1e-9 and the
    bound is above the optimum."""
    from dipsd.data.scenario import DraftModel, TargetModel

    def user(name, alpha, prefix, comm, c, beta, table=None):
        return User(name=name, alpha=alpha, prefix_len=prefix, comm_latency_ms=comm,
                    draft=DraftModel(c_ms_per_flop=c, beta_ms=beta), acceptance=table)

    users = (user("u0", 1.0, 1, 3.0, 1e-15, 600000.0, (1.094959628464748, 1.6802342525380105)),
             user("u1", 0.78, 512, 3.0, 4.0305e-11, 5.0), user("u2", 1.0, 512, 33.8151, 4.0305e-11, 33.8151),
             user("u3", 1.0, 16, 3.0, 1e-09, 33.8151, (1.6467924198198634, 2.1637315860115773)),
             user("u4", 0.0, 512, 0.01, 4.0305e-11, 33.8151))
    s = Scenario("huge-latencies", users, target=TargetModel(beta_ms=600000.0), memory_cap_bytes=48989470720.0,
                 max_draft_length=2, min_batches=4, max_batches=4)
    brute = solve_enumerate(s)
    for start in (None, brute.plan):
        e = solve_exact(s, start_plan=start)
        assert e.status is Status.OPTIMAL and e.throughput_tps >= brute.throughput_tps * (1 - 1e-9)
        assert e.upper_bound_tps >= brute.throughput_tps
        assert e.upper_bound_tps <= brute.throughput_tps * (1 + 1e-9)  # optimal: the bound proves it
