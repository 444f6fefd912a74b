"""DiP-SD on the shared formulation gives the results it gave on its own step models (issue 12).

The reference (``data/dipsd_reference.json``, recorded by ``tests/solvers/dipsd_reference.py``
at commit b8a872a) holds, for the bundled examples and seeded heterogeneous instances, each
method's status, throughput and plan.  Every step is solved to optimality, so a step's value
is unique; only *which* of several equally good step solutions HiGHS returns may differ, and
that can steer the alternation elsewhere.  So the throughput must agree, or else the two
runs' x-step histories must part at a tie: the same N and lengths, the same optimal span, other
batches (the reference records every x-step).  The test prints each such tie.
"""

from __future__ import annotations

import json

import pytest

from tests.solvers.dipsd_reference import METHODS, PATH, instances, run

REFERENCE = json.loads(PATH.read_text())
CASES = list(instances())


def test_reference_covers_every_instance():
    assert sorted(REFERENCE) == sorted(key for key, _ in CASES) and len(CASES) >= 30


def _partition(batches):
    return None if batches is None else sorted(sorted(b) for b in batches)


def _tie(scenario, old_steps, new_steps) -> str | None:
    """Where two x-step histories first part at a tie, or None when they part otherwise (then the
    change is not a tie).  An x-step tie: the same N and lengths, the same (unique) optimal span,
    other batches (partitions compared up to the order of batches and users).  An l-step tie: an
    x-step of the same N on the same batches, after which the next x-steps start from other
    lengths whose ratio on those batches is the same (the l-step's unique optimum)."""
    from dipsd import evaluate
    from dipsd.formulation.plan import Plan

    for i, (old, new) in enumerate(zip(old_steps, new_steps)):
        (n0, l0, b0, s0), (n1, l1, b1, s1) = old, new
        if i > 0 and n0 == n1 and l0 != l1 and old_steps[i - 1][0] == n0 and new_steps[i - 1][0] == n1:
            batches = tuple(tuple(b) for b in old_steps[i - 1][2])
            r0, r1 = (evaluate(scenario, Plan(batches, tuple(lengths))).ratio for lengths in (l0, l1))
            if r1 == pytest.approx(r0, rel=1e-9):
                return f"l-step {i} (N = {n0}): ratio {r0:.12g} at lengths {l0} and {l1}"
        if n0 != n1 or l0 != l1 or (s0 is None) != (s1 is None):
            return None
        if s0 is not None and s1 != pytest.approx(s0, rel=1e-9):
            return None
        if _partition(b0) != _partition(b1):
            return f"x-step {i + 1} (N = {n0}): span {s0:.9f} ms from {b0} and from {b1}"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("key,scenario", CASES, ids=[key for key, _ in CASES])
def test_results_unchanged(key, scenario):
    for method in METHODS:
        was = REFERENCE[key][method]
        got, steps = run(method, scenario)
        assert got.status.value == was["status"], method
        if was["throughput_tps"] is None:
            assert got.throughput_tps is None, method
            continue
        if got.throughput_tps == pytest.approx(was["throughput_tps"], rel=1e-9):
            continue
        tie = _tie(scenario, was["x_steps"], steps)
        assert tie is not None, f"{method}: {got.throughput_tps} tok/s, was {was['throughput_tps']}, and not after a tie"
        print(f"{key} {method}: {got.throughput_tps:.6f} tok/s, was {was['throughput_tps']:.6f}: a tie at {tie}")
