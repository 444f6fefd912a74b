"""The methods ``dipsd solve`` and studies can run, by name, with one calling convention."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Callable

from ..data.scenario import Scenario
from ..errors import DipsdError
from ..formulation.plan import Plan
from .baselines import solve_ad, solve_ad_batch, solve_sd_nobatch
from .brute import solve_enumerate
from .dipsd import solve_dipsd
from .exact import solve_exact
from .results import SolveResult, Status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Method:
    """A named method: ``run(scenario, time_limit, start_plan)`` returns a :class:`SolveResult`."""

    name: str
    help: str
    run: Callable[[Scenario, float, Plan | None], SolveResult]


def _exact(scenario: Scenario, time_limit: float, start: Plan | None) -> SolveResult:
    """Dinkelbach from ``start``; without one, from DiP-SD's plan (its time counts, at most half the limit)."""
    t0 = time.perf_counter()
    note = ""
    if start is None:
        heuristic = solve_dipsd(scenario, time_limit=time_limit / 2)
        start = heuristic.plan
        stopped = ", stopped by its time share" if heuristic.status is Status.TIME_LIMIT else ""
        note = f"; started from DiP-SD ({heuristic.runtime_s:.2f}s{stopped}, included)"
    result = solve_exact(scenario, time_limit=max(time_limit - (time.perf_counter() - t0), 0.01), start_plan=start)
    return replace(result, runtime_s=time.perf_counter() - t0, message=result.message + note)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("dipsd", "the paper's DiP-SD: alternate exact x- and l-steps for every N",
           lambda s, tl, start: solve_dipsd(s, time_limit=tl)),
    Method("dipsd-fixed", "DiP-SD with every user at initial_draft_length",
           lambda s, tl, start: solve_dipsd(s, time_limit=tl, fixed_lengths=True)),
    Method("sd-nobatch", "every user in its own batch, lengths optimized",
           lambda s, tl, start: solve_sd_nobatch(s, time_limit=tl)),
    Method("ad", "target-only autoregressive decoding, one user per pass", lambda s, tl, start: solve_ad(s)),
    Method("ad-batch", "target-only decoding with greedy memory-feasible batching", lambda s, tl, start: solve_ad_batch(s)),
    Method("exact", "Dinkelbach over the full MILP with HiGHS (proven optimum or certified bound)", _exact),
    Method("enumerate", "brute force over all partitions and lengths (tiny instances only)",
           lambda s, tl, start: solve_enumerate(s)),
)}
"""Every method by name, in the order reports list them."""


def run_method(name: str, scenario: Scenario, *, time_limit: float = 60.0, start_plan: Plan | None = None) -> SolveResult:
    """Run one method; a failure becomes a result with status ``error`` and its message."""
    t0 = time.perf_counter()
    try:
        return METHODS[name].run(scenario, time_limit, start_plan)
    except DipsdError as exc:
        log.warning("%s/%s failed: %s", scenario.name, name, exc)
        return SolveResult(scenario.name, name, Status.ERROR, None, None, None, time.perf_counter() - t0, message=str(exc))
