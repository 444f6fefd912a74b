"""A simple feasible plan of P, used to start Dinkelbach when no better plan is given."""

from __future__ import annotations

from ..data.scenario import Scenario
from ..formulation.evaluate import evaluate, greedy_batches
from ..formulation.plan import Plan


def simple_plan(scenario: Scenario) -> Plan | None:
    """Greedy memory packing, split up to ``N_min`` batches, everyone at the start length.

    Users are packed longest prefix first into as few memory-feasible batches as possible
    (:func:`~dipsd.formulation.evaluate.greedy_batches`); while there are fewer than
    ``N_min`` batches the largest one gives up its last user to a new batch.  ``None`` when
    this packing needs more than ``N_max`` batches (the scenario may still be feasible).
    """
    packed = greedy_batches(scenario)
    if packed is None or len(packed) > scenario.max_batches:
        return None
    batches = [list(b) for b in packed]
    while len(batches) < scenario.min_batches:
        largest = max(range(len(batches)), key=lambda n: (len(batches[n]), -n))
        batches.append([batches[largest].pop()])
    plan = Plan(tuple(tuple(sorted(b)) for b in batches), (scenario.start_length,) * scenario.num_users)
    return plan if evaluate(scenario, plan).feasible else None
