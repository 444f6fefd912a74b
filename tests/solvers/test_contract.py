"""The contract of docs/model.md ("What the numbers promise") against the tests' own brute force
(:mod:`tests.costmodel`, nothing shared with dipsd) on odd tiny instances: every method (enumerate
too), certify at 0.001 s and 10 s, exact plain and from a start plan.

* a plan is feasible and its throughput is its closed-form value, never above the optimum;
* ``optimal`` is within a relative 1e-9 of the optimum;
* no upper bound is below the optimum, not even by a rounding error;
* ``infeasible`` only where the oracle finds no plan (sd-nobatch: where no all-singleton plan is);
* no valid input ends in ``error``.

CI (``-m "not sweep"``, the README's test command) covers 600 instances (seeds below; 50 of them
at the far ends of the time scale: latencies down to 5e-324 ms, the server's intercept at its
floor; 50 with per-user draft limits); ``-m sweep`` runs a longer sweep.
"""

from __future__ import annotations

import logging

import pytest

from dipsd.formulation.evaluate import evaluate
from dipsd.formulation.plan import Plan
from dipsd.solvers.registry import Start, run_method
from dipsd.solvers.results import Status
from tests import costmodel as cm
from tests.solvers.instances import far_scaled_instances, limited_instances, odd_instances

RUNS = (("enumerate", None), ("dipsd", None), ("dipsd-fixed", None), ("sd-nobatch", None), ("ad", None), ("ad-batch", None),
        ("certify", 0.001), ("certify", 10.0), ("exact", None), ("exact-from-start", None))


def violations(scenario) -> list[str]:
    """Every breach of the contract by any method on ``scenario`` (empty when none)."""
    best, argmax = cm.brute_optimum(scenario)  # the tests' own oracle: nothing shared with dipsd
    optimum = best if argmax is not None else None
    server, devices = cm.read(scenario)
    found, dipsd_plan = [], None
    for name, limit in RUNS:
        if name == "exact-from-start":
            r = run_method("exact", scenario, time_limit=30, start=Start(dipsd_plan, None, "dipsd") if dipsd_plan else None)
        else:
            r = run_method(name, scenario, time_limit=limit or 30)
        label = f"{name}@{limit}" if limit else name
        if name == "dipsd":
            dipsd_plan = r.plan
        if r.status is Status.ERROR:
            found.append(f"{label}: error ({r.message[:200]})")
            continue
        if r.plan is not None:
            if any(length > limit for length, limit in zip(r.plan.lengths, scenario.limits)):
                found.append(f"{label}: a length above a user's own limit")
            ev = evaluate(scenario, r.plan)
            if not ev.feasible:
                found.append(f"{label}: infeasible plan ({ev.reason})")
            elif r.throughput_tps != ev.throughput_tps:
                found.append(f"{label}: throughput {r.throughput_tps!r} is not the closed form {ev.throughput_tps!r}")
            elif abs(cm.value(server, devices, r.plan.batches, r.plan.lengths).tps - ev.throughput_tps) > 1e-12 * ev.throughput_tps:
                found.append(f"{label}: the evaluator and the tests' cost model disagree on its plan")
            if optimum is None:
                found.append(f"{label}: a plan where the oracle finds none")
            elif ev.throughput_tps > optimum * (1 + 1e-12):
                found.append(f"{label}: a plan above the optimum (the oracle is wrong?)")
        if optimum is None:
            continue
        if r.status is Status.OPTIMAL and r.throughput_tps < optimum * (1 - 1e-9):
            found.append(f"{label}: optimal but {(optimum - r.throughput_tps) / optimum:.3g} below the optimum")
        if r.upper_bound_tps is not None and r.upper_bound_tps < optimum:
            found.append(f"{label}: bound {(optimum - r.upper_bound_tps) / optimum:.3g} below the optimum ({r.status.value})")
        if r.status is Status.INFEASIBLE:
            singletons = Plan(tuple((m,) for m in range(scenario.num_users)), (1,) * scenario.num_users)
            if name != "sd-nobatch" or evaluate(scenario, singletons).feasible:
                found.append(f"{label}: infeasible although the optimum is {optimum:.9g}")
    return found


CHUNKS = [(seed, odd_instances(50, seed)) for seed in range(100, 110)]  # 500 instances
CHUNKS += [(seed, far_scaled_instances(25, seed)) for seed in (110, 111)]  # 50 at the ends of the time scale
CHUNKS += [(seed, limited_instances(25, seed)) for seed in (112, 113)]  # 50 with per-user draft limits


@pytest.mark.slow
@pytest.mark.parametrize("seed,instances", CHUNKS, ids=[f"seed{seed}" for seed, _ in CHUNKS])
def test_contract_on_odd_tiny_instances(seed, instances):
    logging.disable(logging.WARNING)  # the tolerance re-solves log warnings by design
    try:
        bad = {s.name: v for s in instances if (v := violations(s))}
    finally:
        logging.disable(logging.NOTSET)
    assert not bad, bad


QUICK = odd_instances(10, 300) + far_scaled_instances(3, 301) + limited_instances(3, 302)
"""The contract's everyday part: 16 instances the fast default run checks in a few seconds."""


@pytest.mark.parametrize("scenario", QUICK, ids=lambda s: s.name)
def test_contract_on_a_few_odd_instances(scenario):
    logging.disable(logging.WARNING)
    try:
        assert violations(scenario) == []
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.sweep
@pytest.mark.parametrize("seed", range(200, 250))
def test_contract_long_sweep(seed):
    logging.disable(logging.WARNING)
    try:
        make = odd_instances if seed < 240 else far_scaled_instances
        bad = {s.name: v for s in make(50, seed) if (v := violations(s))}
    finally:
        logging.disable(logging.NOTSET)
    assert not bad, bad


def test_the_instances_reach_the_corners():
    every = [s for _, chunk in CHUNKS for s in chunk]
    assert len(every) >= 500
    users = [u for s in every for u in s.users]
    assert {0.0, 1.0} <= {u.alpha for u in users}
    assert any(s.max_draft_length == 1 for s in every)
    assert any(u.comm_latency_ms == 600000.0 for u in users) and any(s.target.beta_ms == 600000.0 for s in every)
    assert any(u.acceptance is not None for u in users)
    assert any(s.memory_cap_bytes == s.target.parameter_bytes + s.target.kv_bytes(1, max(u.prefix_len for u in s.users)) - 1
               for s in every) or any(s.max_batch_size(max(u.prefix_len for u in s.users)) < s.num_users for s in every)
    assert any(s.min_batches == s.max_batches for s in every)
