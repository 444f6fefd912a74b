"""The one map from HiGHS's (Pyomo's) termination conditions to how a MILP solve ended."""

from __future__ import annotations

import enum
from typing import Any

from pyomo.contrib.solver.common.results import TerminationCondition

from ..tolerances import AGREE_RTOL


class MilpOutcome(enum.Enum):
    """How one MILP solve ended."""

    OPTIMAL = "optimal"
    """Solved with MIP gap 0: the incumbent is a maximizer and the bound equals it."""
    TIME_LIMIT = "time_limit"
    """Stopped by the time limit; an incumbent may or may not exist."""
    INFEASIBLE = "infeasible"
    """No solution satisfies the constraints."""
    ERROR = "error"
    """Anything else: solver error, interruption, unknown status."""


_HIGHS_OUTCOME: dict[TerminationCondition, MilpOutcome] = {
    TerminationCondition.convergenceCriteriaSatisfied: MilpOutcome.OPTIMAL,
    TerminationCondition.maxTimeLimit: MilpOutcome.TIME_LIMIT,
    TerminationCondition.provenInfeasible: MilpOutcome.INFEASIBLE,
    TerminationCondition.locallyInfeasible: MilpOutcome.INFEASIBLE,
    # every model here is bounded (U <= sum_m (L+1), S >= 0): "infeasible or unbounded" means infeasible
    TerminationCondition.infeasibleOrUnbounded: MilpOutcome.INFEASIBLE,
}


def outcome(res: Any) -> MilpOutcome:
    """The outcome of a ``pyomo.contrib.solver`` HiGHS result; unmapped conditions are errors."""
    return _HIGHS_OUTCOME.get(res.termination_condition, MilpOutcome.ERROR)




def agrees(ended: MilpOutcome, milp: float, closed: float, scale: float) -> bool:
    """Whether a MILP's objective ``milp`` agrees with the closed-form ``U - q S`` of its decoded
    plan, within ``AGREE_RTOL * scale``: equal at an optimum; at a stopped solve the model's S may
    exceed the true span (so ``closed`` may exceed ``milp``), never fall below it."""
    tol = AGREE_RTOL * scale
    return not (closed < milp - tol or (ended is MilpOutcome.OPTIMAL and abs(closed - milp) > tol))
