"""A simple feasible plan of P, used to start Dinkelbach when no better plan is given."""

from __future__ import annotations

from ..data.scenario import Scenario
from ..formulation.evaluate import evaluate, greedy_batches
from ..formulation.plan import Plan


def simple_plan(scenario: Scenario) -> Plan | None:
    """Greedy memory packing, split up to ``N_min`` batches, everyone at the best common length.

    Users are packed longest prefix first into as few memory-feasible batches as possible
    (:func:`~dipsd.formulation.evaluate.greedy_batches`); while there are fewer than
    ``N_min`` batches the largest one gives up its last user to a new batch.  All users get
    the same draft length, the one (of 1..L_ub) with the best closed-form U/S.  ``None`` when
    this packing needs more than ``N_max`` batches (the scenario may still be feasible).
    """
    packed = greedy_batches(scenario)
    if packed is None or len(packed) > scenario.max_batches:
        return None
    batches = [list(b) for b in packed]
    while len(batches) < scenario.min_batches:
        largest = max(range(len(batches)), key=lambda n: (len(batches[n]), -n))
        batches.append([batches[largest].pop()])
    parts = tuple(tuple(sorted(b)) for b in batches)
    candidates = [Plan(parts, scenario.clipped(length)) for length in range(1, scenario.max_draft_length + 1)]
    best = max(candidates, key=lambda p: (evaluate(scenario, p).ratio, max(p.lengths) == scenario.start_length))
    return best if evaluate(scenario, best).feasible else None
