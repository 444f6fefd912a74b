"""The paper's baselines (docs/model.md 5.4).

* ``ad``: target-only autoregressive decoding, one user per forward pass, round-robin.
* ``ad-batch``: target-only decoding with users packed greedily into as few
  memory-feasible batches as possible, one token per user per pass.
* ``sd-nobatch``: speculative decoding with every user in its own batch (N = M),
  pipelined, lengths optimized exactly (the DiP-SD l-step on singleton batches).
* ``dipsd-fixed``: DiP-SD with every user at ``initial_draft_length``; N and the
  assignment optimized (:func:`~dipsd.solvers.dipsd.solve_dipsd` with ``fixed_lengths``).
"""

from __future__ import annotations

import time

from ..data.scenario import Scenario
from ..data.text import plural
from ..formulation.evaluate import evaluate, greedy_batches, target_only_round_ms
from ..formulation.plan import Plan
from ..formulation.tables import Tables
from .deadline import Deadline
from .results import ReferenceValue, SolveResult, Status
from .steps import l_step


def solve_ad(scenario: Scenario) -> SolveResult:
    """``R_AD = M / sum_m G_v(1, F_v(1, i_m))``."""
    t0 = time.perf_counter()
    batches = tuple((m,) for m in range(scenario.num_users))
    ref = ReferenceValue(batches, float(scenario.num_users), target_only_round_ms(scenario, batches))
    return SolveResult(scenario.name, "ad", Status.FEASIBLE, None, None, None, time.perf_counter() - t0,
                       message="target-only decoding, one user per pass", reference=ref)


def solve_ad_batch(scenario: Scenario) -> SolveResult:
    """``R = M / sum_n G_v(b_n, F_v(1, I_n))`` over greedy memory-feasible batches."""
    t0 = time.perf_counter()
    batches = greedy_batches(scenario)
    if batches is None:
        return SolveResult(scenario.name, "ad-batch", Status.INFEASIBLE, None, None, None, time.perf_counter() - t0,
                           message="a user does not fit the memory cap")
    ref = ReferenceValue(batches, float(scenario.num_users), target_only_round_ms(scenario, batches))
    return SolveResult(scenario.name, "ad-batch", Status.FEASIBLE, None, None, None, time.perf_counter() - t0,
                       message=f"target-only decoding in {plural(len(batches), 'greedy batch', 'greedy batches')}", reference=ref)


def solve_sd_nobatch(scenario: Scenario, *, time_limit: float = 60.0) -> SolveResult:
    """Every user alone (N = M), lengths by the exact l-step."""
    clock = Deadline(time_limit)
    m = scenario.num_users
    if m > scenario.max_batches:
        return SolveResult(scenario.name, "sd-nobatch", Status.INFEASIBLE, None, None, None, 0.0,
                           message=f"needs {plural(m, 'batch', 'batches')} but max_batches is {scenario.max_batches}")
    start = evaluate(scenario, Plan(tuple((i,) for i in range(m)), scenario.clipped(scenario.start_length)))
    if not start.feasible:  # a user alone breaks the memory cap, or N = M is outside the batch range
        return SolveResult(scenario.name, "sd-nobatch", Status.INFEASIBLE, None, None, None, time.perf_counter() - clock.start,
                           message=f"every user alone is infeasible: {start.reason}")
    best = l_step(scenario, Tables.of(scenario), start, clock)
    if clock.hit:  # the l-step's search was stopped by the time limit
        status, note = Status.TIME_LIMIT, "every user in its own batch; time limit: lengths not (fully) optimized"
    else:
        status, note = Status.FEASIBLE, "every user in its own batch, lengths optimized"
    return SolveResult(scenario.name, "sd-nobatch", status, best.plan, best, None, time.perf_counter() - clock.start,
                       message=note)
