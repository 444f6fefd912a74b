"""The methods ``dipsd solve`` and studies can run, by name, with one calling convention."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from ..data.scenario import Scenario
from ..errors import DipsdError
from ..formulation.plan import Plan
from .brute import solve_enumerate
from .exact import solve_exact
from .results import SolveResult, Status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Method:
    """A named method: ``run(scenario, time_limit, start_plan)`` returns a :class:`SolveResult`."""

    name: str
    help: str
    run: Callable[[Scenario, float, Plan | None], SolveResult]


METHODS: dict[str, Method] = {
    "exact": Method("exact", "Dinkelbach over the full MILP with HiGHS (proven optimum or certified bound)",
                    lambda s, tl, start: solve_exact(s, time_limit=tl, start_plan=start)),
    "enumerate": Method("enumerate", "brute force over all partitions and lengths (tiny instances only)",
                        lambda s, tl, start: solve_enumerate(s)),
}


def run_method(name: str, scenario: Scenario, *, time_limit: float = 60.0, start_plan: Plan | None = None) -> SolveResult:
    """Run one method; a failure becomes a result with status ``error`` and its message."""
    t0 = time.perf_counter()
    try:
        return METHODS[name].run(scenario, time_limit, start_plan)
    except DipsdError as exc:
        log.warning("%s/%s failed: %s", scenario.name, name, exc)
        return SolveResult(scenario.name, name, Status.ERROR, None, None, None, time.perf_counter() - t0, message=str(exc))
