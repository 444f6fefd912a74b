"""DiP-SD, the paper's Algorithm 1 (docs/model.md 5.2); its two steps are in :mod:`dipsd.solvers.steps`.

For each N in ``N_min..N_max``: start with every user at ``initial_draft_length`` (clipped
to ``[1, L_ub]``) and alternate

* the x-step: the memory-feasible assignment into exactly N non-empty batches that
  minimizes S for the current lengths (:func:`~dipsd.solvers.steps.x_step`: an exact search,
  the step MILP where the search stops at its budget);
* the l-step: the integer lengths maximizing U/S for the current batches
  (:func:`~dipsd.solvers.steps.l_step`: an exact search over span caps);

until the lengths repeat and R improved by less than :data:`REL_TOL` (relative), or after
:data:`MAX_ROUNDS` rounds.  Both steps are exact, so R never decreases along the
alternation; the alternation itself is the heuristic part.  The best N is kept.  An N
whose upper bound (:func:`bound_for_n`) is below the best R found so far is skipped: it
cannot win, so the result is the same as running it.

Determinism: the searches are deterministic and HiGHS runs with one thread and fixed options,
so the same input gives the same plan.  Ties between N go to the smaller N (a later N must be
better by a relative 1e-12 to replace it); within a step, ties go to the search's first optimum
(or HiGHS's choice), and a step's result replaces the current plan only if it is strictly
better, so on a tie the alternation keeps the plan it has.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..data.scenario import Scenario
from ..data.text import plural
from ..formulation.evaluate import Evaluation, evaluate, greedy_batches
from ..formulation.plan import Plan
from ..formulation.tables import Tables
from .deadline import Deadline
from .results import SolveResult, Status
from .start import simple_plan
from .steps import l_step, x_step
from .tolerances import IMPROVE_RTOL

log = logging.getLogger(__name__)

REL_TOL = 1e-9
"""The alternation stops once the lengths repeat and R grew by less than this fraction."""
MAX_ROUNDS = 20


@dataclass(frozen=True)
class Round:
    """One x-step + l-step round for one N: throughput after each step (tokens/s)."""

    num_batches: int
    after_x_tps: float
    after_l_tps: float
    lengths: tuple[int, ...]


def split_to(batches: tuple[tuple[int, ...], ...], n: int) -> tuple[tuple[int, ...], ...] | None:
    """``batches`` split into ``n`` batches (the largest gives up the later half of its users,
    until there are n): a memory-feasible partition stays memory-feasible, as a subset of a
    batch needs no more memory.  None when there are more than n batches or fewer than n users."""
    parts = [sorted(b) for b in batches]
    if len(parts) > n or sum(len(b) for b in parts) < n:
        return None
    while len(parts) < n:
        largest = max(range(len(parts)), key=lambda i: (len(parts[i]), -i))
        half = len(parts[largest]) // 2
        parts.append(parts[largest][half:])
        parts[largest] = parts[largest][:half]
    return tuple(tuple(b) for b in parts)


def _for_n(scenario: Scenario, tables: Tables, n: int, clock: Deadline, *, fixed_lengths: bool, trace: list,
           start: tuple[tuple[int, ...], ...] | None) -> Evaluation | None:
    lengths = scenario.clipped(scenario.start_length)
    current: Evaluation | None = None
    settled: set = set()  # (partition, lengths) an l-step returned: those lengths are optimal for it
    for _ in range(MAX_ROUNDS):
        x = x_step(scenario, tables, lengths, n, clock, start)
        if x is None:
            return current
        if current is not None and current.plan.lengths == lengths and x.ratio <= current.ratio * (1 + IMPROVE_RTOL):
            x = current  # a tie (or no gain) keeps the batches the alternation already has
        after_x = x
        if fixed_lengths or _key(after_x.plan) in settled:
            new = after_x  # an l-step on these batches returned these lengths: it would again
        else:
            new = l_step(scenario, tables, after_x, clock)
            settled.add(_key(new.plan))
        trace.append(Round(n, after_x.throughput_tps, new.throughput_tps, new.plan.lengths))
        log.info("%s: DiP-SD N=%d round %d: x-step %.6g tok/s, l-step %.6g tok/s (%.1fs left)", scenario.name, n,
                 sum(1 for r in trace if r.num_batches == n), after_x.throughput_tps, new.throughput_tps, clock.remaining())
        previous = current
        if current is None or new.ratio > current.ratio:
            current = new
        if fixed_lengths:
            break
        if new.plan.lengths == lengths and previous is not None and new.ratio - previous.ratio < REL_TOL * new.ratio:
            break
        if clock.expired():
            clock.hit = True  # the alternation had not settled: a stopped run, said as such
            break
        lengths, start = new.plan.lengths, new.plan.batches  # the next x-step starts from this round's batches
    return current


def _key(plan: Plan) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]:
    """A plan up to the order of its batches and of users within them (S does not depend on it)."""
    return tuple(sorted(tuple(sorted(b)) for b in plan.batches)), plan.lengths


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
        pick = [max(range(tables.limit(m)), key=lambda k: (tables.tokens[m][k] - q * own[m][k], -k)) for m in range(M)]
        u = sum(tables.tokens[m][pick[m]] for m in range(M))
        a = base + sum(own[m][pick[m]] for m in range(M))
        if u / a <= q * (1 + 1e-12):
            break
        q = u / a
    u_max = sum(tables.top_tokens)
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
    # fewer batches than the memory packing needs admit no assignment: skipped without a MILP
    counts = [n for n in (batch_counts or scenario.batch_range) if n >= fewest]
    bounds = {n: bound_for_n(tables, n) for n in counts}
    neighbour = packed  # the best plan of the last N visited (the greedy packing before the first)
    for n in sorted(counts, key=lambda n: (-bounds[n], n)):
        if best is not None and bounds[n] < best.ratio:
            continue  # no plan with n batches beats the best: the outcome is unchanged
        if clock.expired():
            clock.hit = True  # an N that could still win is left unvisited
            break
        start = split_to(neighbour, n) if neighbour is not None else None
        got = _for_n(scenario, tables, n, clock, fixed_lengths=fixed_lengths, trace=trace, start=start)
        if got is not None and (best is None or got.ratio > best.ratio * (1 + IMPROVE_RTOL)
                                or (got.ratio >= best.ratio / (1 + IMPROVE_RTOL) and n < best.plan.num_batches)):
            best = got
        if got is not None:
            neighbour = got.plan.batches
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
    note = ("time limit: stopped before the alternation finished" if clock.hit
            else f"{plural(len(trace), 'round')} over N = {scenario.min_batches}..{scenario.max_batches}")
    return SolveResult(scenario.name, name, Status.TIME_LIMIT if clock.hit else Status.FEASIBLE, best.plan, best, None,
                       runtime, iterations=len(trace), message=note, trace=tuple(trace))
