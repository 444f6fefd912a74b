"""DiP-SD, the paper's Algorithm 1 (docs/model.md 5.2), and the baselines that share its steps.

For each N in ``N_min..N_max``: start with every user at ``initial_draft_length`` (clipped
to ``[1, L_ub]``) and alternate

* the x-step: the memory-feasible assignment into exactly N non-empty batches that
  minimizes S for the current lengths (:func:`~dipsd.formulation.steps.build_assignment_model`,
  solved by HiGHS with MIP gap 0);
* the l-step: the integer lengths maximizing U/S for the current batches, by Dinkelbach
  over :func:`~dipsd.formulation.steps.build_length_model` (gap 0, until no improvement);

until the lengths repeat and R improved by less than :data:`REL_TOL` (relative), or after
:data:`MAX_ROUNDS` rounds.  Both steps are exact, so R never decreases along the
alternation; the alternation itself is the heuristic part.  The best N is kept.  An N
whose upper bound (:func:`bound_for_n`) is below the best R found so far is skipped: it
cannot win, so the result is the same as running it.

Determinism: HiGHS runs with one thread and fixed options, so the same input gives the
same plan.  Ties between N go to the smaller N (a later N must be better by a relative
1e-12 to replace it); within a step, ties go to HiGHS's (deterministic) choice, and a
step's result replaces the current plan only if it is strictly better, so on a tie the
alternation keeps the plan it has.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from ..data.scenario import Scenario
from ..formulation.evaluate import Evaluation, evaluate, greedy_batches
from ..formulation.steps import assignment_plan, build_assignment_model, build_length_model, length_plan
from ..formulation.tables import Tables
from .deadline import Deadline
from .results import SolveResult, Status
from .start import simple_plan

log = logging.getLogger(__name__)

REL_TOL = 1e-9
"""The alternation stops once the lengths repeat and R grew by less than this fraction."""
MAX_ROUNDS = 20
IMPROVE_RTOL = 1e-12


@dataclass(frozen=True)
class Round:
    """One x-step + l-step round for one N: throughput after each step (tokens/s)."""

    num_batches: int
    after_x_tps: float
    after_l_tps: float
    lengths: tuple[int, ...]


def _solve(model, clock: Deadline, solver=None):
    """Solve with MIP gap 0 within the remaining time; the loaded result, or None without a solution."""
    solver = solver or SolverFactory("highs")
    res = solver.solve(
        model, time_limit=max(clock.remaining(), 0.01), rel_gap=0.0, abs_gap=0.0, threads=1,
        load_solutions=False, raise_exception_on_nonoptimal_result=False,
    )
    if res.termination_condition is TerminationCondition.maxTimeLimit:
        clock.hit = True
    if res.incumbent_objective is None:
        return None
    res.solution_loader.load_vars()
    return res


def x_step(scenario: Scenario, tables: Tables, lengths: tuple[int, ...], num_batches: int, clock: Deadline) -> Evaluation | None:
    """The S-minimizing memory-feasible partition into ``num_batches`` batches (None if none)."""
    model = build_assignment_model(tables, lengths, num_batches)
    if _solve(model, clock) is None:
        return None
    ev = evaluate(scenario, assignment_plan(model, lengths))
    return ev if ev.feasible else None


def l_step(scenario: Scenario, tables: Tables, current: Evaluation, clock: Deadline) -> Evaluation:
    """The lengths maximizing U/S for the batches of ``current`` (Dinkelbach, started at its ratio)."""
    best = current
    model = build_length_model(tables, current.plan.batches, q=current.ratio)
    solver = SolverFactory("highs")
    while clock.remaining() > 0:
        model.q.set_value(best.ratio)
        if _solve(model, clock, solver) is None:
            break
        ev = evaluate(scenario, length_plan(model, current.plan.batches, scenario.num_users))
        if not (ev.feasible and ev.ratio > best.ratio * (1 + IMPROVE_RTOL)):
            break
        best = ev
    return best


def _for_n(scenario, tables, n, clock, *, fixed_lengths: bool, trace: list) -> Evaluation | None:
    lengths = (scenario.start_length,) * scenario.num_users
    current: Evaluation | None = None
    for _ in range(MAX_ROUNDS):
        x = x_step(scenario, tables, lengths, n, clock)
        if x is None:
            return current
        if current is not None and current.plan.lengths == lengths and x.ratio <= current.ratio * (1 + IMPROVE_RTOL):
            x = current  # a tie (or no gain) keeps the batches the alternation already has
        after_x = x
        new = after_x if fixed_lengths else l_step(scenario, tables, after_x, clock)
        trace.append(Round(n, after_x.throughput_tps, new.throughput_tps, new.plan.lengths))
        previous = current
        if current is None or new.ratio > current.ratio:
            current = new
        if fixed_lengths or clock.remaining() <= 0:
            break
        if new.plan.lengths == lengths and previous is not None and new.ratio - previous.ratio < REL_TOL * new.ratio:
            break
        lengths = new.plan.lengths
    return current


def bound_for_n(tables: Tables, n: int) -> float:
    """An upper bound on U/S (tokens/ms) over all plans with exactly n batches.

    Every plan with n batches has ``S >= n beta_v + sum_m f(l_m, i_m)`` (each batch pays
    beta_v, each user at least its own sequence) and ``S >= C = max_m r_m(1) + beta_v + f(1, i_m)``.
    So ``U/S <= min(max_l U(l) / (n beta_v + sum_m f(l_m, i_m)), U_max / C)``; the first
    maximum is separable and found exactly by Dinkelbach on per-user choices.
    """
    M, L = tables.num_users, tables.max_length
    own = [[tables.seq(k, tables.level_of[m]) for k in range(1, L + 1)] for m in range(M)]
    base = n * tables.beta_ms
    q = 0.0
    for _ in range(100):
        pick = [max(range(L), key=lambda k: (tables.tokens[m][k] - q * own[m][k], -k)) for m in range(M)]
        u = sum(tables.tokens[m][pick[m]] for m in range(M))
        a = base + sum(own[m][pick[m]] for m in range(M))
        if u / a <= q * (1 + 1e-12):
            break
        q = u / a
    u_max = sum(max(row) for row in tables.tokens)
    c = max(tables.ready[m][0] + tables.beta_ms + own[m][0] for m in range(M))
    return min(q, u_max / c) * (1 + 1e-9)


def solve_dipsd(scenario: Scenario, *, time_limit: float = 60.0, fixed_lengths: bool = False,
                batch_counts: range | None = None, method: str | None = None) -> SolveResult:
    """DiP-SD (or, with ``fixed_lengths``, DiP-SD with every user at the start length)."""
    clock = Deadline(time_limit)
    tables = Tables.of(scenario)
    trace: list[Round] = []
    best: Evaluation | None = None
    packed = greedy_batches(scenario)
    fewest = len(packed) if packed is not None else scenario.max_batches + 1
    for n in batch_counts or scenario.batch_range:
        if n < fewest:
            continue  # fewer batches than the memory packing needs: no assignment exists (no MILP needed)
        if clock.remaining() <= 0:
            break
        if best is not None and bound_for_n(tables, n) < best.ratio:
            continue  # no plan with n batches beats the best: the outcome is unchanged
        got = _for_n(scenario, tables, n, clock, fixed_lengths=fixed_lengths, trace=trace)
        if got is not None and (best is None or got.ratio > best.ratio * (1 + IMPROVE_RTOL)):
            best = got
    name = method or ("dipsd-fixed" if fixed_lengths else "dipsd")
    runtime = time.perf_counter() - clock.start
    if best is None:
        if clock.hit or clock.remaining() <= 0:
            fallback = simple_plan(scenario)
            if fallback is not None:  # the greedy packing is feasible: report it rather than nothing
                ev = evaluate(scenario, fallback)
                return SolveResult(scenario.name, name, Status.TIME_LIMIT, fallback, ev, None, runtime,
                                   message="time limit before the alternation produced a plan; the plan is the greedy "
                                           "memory packing at the best common draft length")
            return SolveResult(scenario.name, name, Status.NO_PLAN, None, None, None, runtime, message="time limit before any plan")
        return SolveResult(scenario.name, name, Status.INFEASIBLE, None, None, None, runtime,
                           message="no number of batches admits a memory-feasible assignment")
    note = "time limit: a step stopped early" if clock.hit else f"{len(trace)} rounds over N = {scenario.min_batches}..{scenario.max_batches}"
    return SolveResult(scenario.name, name, Status.TIME_LIMIT if clock.hit else Status.FEASIBLE, best.plan, best, None,
                       runtime, iterations=len(trace), message=note, trace=tuple(trace))
