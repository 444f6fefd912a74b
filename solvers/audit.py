"""Records are re-checked, never trusted: what a checkpoint, a start or a report may believe.

Two checks, both in closed form (no solver):

* :func:`record_problem` checks one record against its scenario: its plan is a partition of
  the users into a batch count within the range, every length within 1..L_ub, every batch
  within the memory cap, and its throughput, span and tokens are the closed form's values;
  a target-only value (``ad``, ``ad-batch``) is recomputed from its batches; a bound is not
  below the record's own plan, and ``optimal`` carries a plan.
* :func:`conflicts` checks the records of one scenario against each other: no upper bound
  below a plan any method found, and no ``optimal`` plan below another method's plan by more
  than the contract's :data:`~dipsd.solvers.tolerances.OPTIMAL_RTOL`.  A plan is checkable,
  a bound is not, so in a conflict the record that claims the bound (or the optimum) is the
  one blamed.
"""

from __future__ import annotations

import math

from ..data.scenario import Scenario
from ..errors import PlanError
from ..formulation.evaluate import evaluate, target_only_round_ms
from .results import Record, Status
from .tolerances import OPTIMAL_RTOL

VALUE_RTOL = 1e-12
"""A recorded throughput must equal its closed-form value to this relative precision (the JSON
keeps every digit, so an honest record is equal to the last bit or to rounding)."""
BOUND_RTOL = 1e-14
"""A bound counts as below a plan only when lower by more than this (a few units in the last place)."""


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isfinite(a) and abs(a - b) <= VALUE_RTOL * max(abs(a), abs(b))


def record_problem(record: Record, scenario: Scenario) -> str | None:
    """Why ``record`` cannot be believed for ``scenario``, or None when it checks out."""
    if record.status is Status.ERROR:
        return None
    if record.has_plan:
        try:
            plan = record.plan_of(scenario)
        except PlanError as exc:
            return f"its plan is not a plan of the scenario ({exc})"
        named = len(record.draft_lengths or ())
        if named != scenario.num_users:
            return f"its plan names {named} draft lengths for {scenario.num_users} users"
        ev = evaluate(scenario, plan)
        if not ev.feasible:
            return f"its plan is infeasible ({ev.reason})"
        if not _close(record.throughput_tps, ev.throughput_tps):
            return f"its throughput {record.throughput_tps!r} is not its plan's closed-form value {ev.throughput_tps!r} tok/s"
        if not (_close(record.span_ms, ev.span_ms) and _close(record.expected_tokens, ev.expected_tokens)):
            return "its span or expected tokens are not its plan's closed-form values"
        own = ev.throughput_tps
    elif record.batches and record.throughput_tps is not None:  # a target-only baseline's value
        index = {u.name: i for i, u in enumerate(scenario.users)}
        try:
            batches = tuple(tuple(index[n] for n in b) for b in record.batches)
        except KeyError as exc:
            return f"its batches name an unknown user {exc.args[0]!r}"
        if sorted(i for b in batches for i in b) != list(range(scenario.num_users)) or not all(batches):
            return "its batches are not a partition of the users"
        value = 1000.0 * scenario.num_users / target_only_round_ms(scenario, batches)
        if not _close(record.throughput_tps, value):
            return f"its throughput {record.throughput_tps!r} is not the closed-form value {value!r} tok/s of its batches"
        own = None
    else:
        if record.throughput_tps is not None:
            return "it states a throughput without a plan"
        if record.status is Status.OPTIMAL:
            return "it claims optimal without a plan"
        own = None
    if record.status is Status.OPTIMAL and own is None:
        return "it claims optimal without a plan"
    bound = record.upper_bound_tps
    if bound is not None and own is not None and bound < own * (1 - BOUND_RTOL):
        return f"its bound {bound!r} is below its own plan's {own!r} tok/s"
    return None


def conflicts(records: list[Record]) -> list[tuple[Record, str]]:
    """Records of one scenario whose bound or optimum another record's plan refutes, with why.

    Only records that passed :func:`record_problem` should be given."""
    plans = [(r.throughput_tps, r) for r in records if r.has_plan and r.throughput_tps is not None]
    if not plans:
        return []
    top, best = max(plans, key=lambda p: p[0])
    found = []
    for r in records:
        if r.upper_bound_tps is not None and r.upper_bound_tps < top * (1 - BOUND_RTOL):
            found.append((r, f"its bound {r.upper_bound_tps:.9g} tok/s is below {best.method}'s plan "
                             f"({top:.9g} tok/s)"))
        elif r.status is Status.OPTIMAL and r.throughput_tps is not None \
                and r.throughput_tps < top * (1 - OPTIMAL_RTOL):
            found.append((r, f"it claims optimal at {r.throughput_tps:.9g} tok/s, but {best.method}'s plan reaches "
                             f"{top:.9g} tok/s"))
    return found


def audit(records: list[Record], scenarios: dict[str, Scenario]) -> list[str]:
    """Every problem :func:`record_problem` and :func:`conflicts` find in a study's records, one line
    each naming scenario and method (empty when everything checks out)."""
    lines: list[str] = []
    sound: dict[str, list[Record]] = {}
    for r in records:
        scenario = scenarios.get(r.scenario)
        why = record_problem(r, scenario) if scenario is not None else None
        if why is not None:
            lines.append(f"{r.scenario}/{r.method}: {why}")
        else:
            sound.setdefault(r.scenario, []).append(r)
    for group in sound.values():
        lines += [f"{r.scenario}/{r.method}: {why}" for r, why in conflicts(group)]
    return lines
