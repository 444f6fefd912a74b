"""DiP-SD's two exact steps (docs/model.md 5.2), used by DiP-SD, certify (the l-step polishes its
plans) and the sd-nobatch baseline (the l-step on singleton batches).

* the x-step: the memory-feasible assignment into exactly N non-empty batches that minimizes S
  for given lengths (:func:`x_step`: :mod:`~dipsd.solvers.partition_search`, finished by the step
  MILP :func:`x_step_milp` where the search stops at its node budget);
* the l-step: the integer lengths maximizing U/S for given batches (:func:`l_step`:
  :mod:`~dipsd.solvers.length_search`).

The step MILPs (:func:`~dipsd.formulation.steps.build_assignment_model`, MIP gap 0;
Dinkelbach over :func:`~dipsd.formulation.steps.build_length_model`, ended by a closed-form search
over one-step length changes) stay as the cross-check the tests hold the searches to; each MILP
solve goes through :class:`~dipsd.solvers.milp.session.MilpSession` (the process's MILP solver).
"""

from __future__ import annotations

from ..data.scenario import Scenario
from ..errors import SolverError
from ..formulation.evaluate import Evaluation, evaluate
from ..formulation.plan import Plan
from ..formulation.steps import build_assignment_model, build_length_model
from ..formulation.tables import Tables
from .deadline import Deadline
from .length_search import best_lengths
from .milp.outcomes import MilpOutcome
from .milp.session import MilpSession
from .partition_search import best_partition, span_of
from .polish import polish
from .tolerances import IMPROVE_RTOL


def _step(session: MilpSession, q: float, clock: Deadline, start: Plan | None) -> Evaluation | None:
    """Solve a step model at ``q`` from ``start`` (a MIP start); its plan in closed form, or None
    without a solution.  A solver error is an error of the step (:class:`SolverError`)."""
    ans = session.solve(q, clock, start=start)
    if ans.outcome is MilpOutcome.ERROR:
        raise SolverError(f"{session.backend.title} ended a DiP-SD step with {ans.termination}")
    return ans.evaluation


SEARCH_BUDGET = (30_000, 10_000)
"""Nodes the x-step's search may visit costliest users first, then slowest first, before the next
method takes over (at about 50 us a node)."""


def x_step(scenario: Scenario, tables: Tables, lengths: tuple[int, ...], num_batches: int, clock: Deadline,
           start: tuple[tuple[int, ...], ...] | None = None) -> Evaluation | None:
    """The S-minimizing memory-feasible partition into ``num_batches`` batches (None if none).

    ``start``, a memory-feasible partition into ``num_batches`` batches, is the incumbent: the
    step never returns worse than it, and returns it on a tie.  The branch and bound of
    :mod:`~dipsd.solvers.partition_search` runs first, costliest users first and then slowest
    first, each within its :data:`SEARCH_BUDGET` of nodes; where neither proves its answer, the MILP
    (:func:`x_step_milp`) finishes from the best partition found (measured in docs/benchmarks.md)."""
    best = start
    span = float("inf") if start is None else span_of(tables, lengths, start)
    for by_ready, budget in zip((False, True), SEARCH_BUDGET):
        found = best_partition(tables, lengths, num_batches, span, budget, by_ready, clock.expired)
        if found.batches is not None:
            best, span = found.batches, found.span_ms
        if found.timed_out:
            clock.hit = True  # the time limit stopped the step: its best partition so far, not a proof
        if found.proven or found.timed_out:
            return None if best is None else evaluate(scenario, Plan(best, tuple(lengths)))
    return x_step_milp(scenario, tables, lengths, num_batches, clock, best)


def x_step_milp(scenario: Scenario, tables: Tables, lengths: tuple[int, ...], num_batches: int, clock: Deadline,
                start: tuple[tuple[int, ...], ...] | None = None) -> Evaluation | None:
    """The x-step by the step MILP (gap 0); the cross-check of :func:`x_step` and its fallback.

    ``start``, a memory-feasible partition into ``num_batches`` batches, is given to HiGHS as
    a MIP start (with ``lengths``): the step then never returns worse than it."""
    model, decoder = build_assignment_model(tables, lengths, num_batches)
    session = MilpSession(scenario, model, decoder)
    return _step(session, 1.0, clock, None if start is None else Plan(start, tuple(lengths)))


def _common_lengths(scenario: Scenario, current: Evaluation) -> Evaluation:
    """The best of ``current`` and its batches with every user at one common length (closed form)."""
    best: Evaluation = current
    for length in range(1, scenario.max_draft_length + 1):
        fixed = evaluate(scenario, Plan(current.plan.batches, scenario.clipped(length)))
        if fixed.ratio > best.ratio * (1 + IMPROVE_RTOL):
            best = fixed
    return best


def l_step(scenario: Scenario, tables: Tables, current: Evaluation, clock: Deadline) -> Evaluation:
    """The lengths maximizing U/S for the batches of ``current``, by the exact search of
    :mod:`~dipsd.solvers.length_search` (milliseconds where the MILP took seconds; the same optimum).

    The incumbent is the best of ``current`` and its batches at one common length; the search's plan
    replaces it only when better by a relative :data:`IMPROVE_RTOL` (a tie keeps the incumbent).
    A search stopped by ``clock`` returns its best plan so far and sets ``clock.hit``."""
    best = _common_lengths(scenario, current)
    found, proven = best_lengths(tables, current.plan.batches, best.ratio, clock.expired)
    if not proven:
        clock.hit = True
    if found is not None:
        ev = evaluate(scenario, Plan(current.plan.batches, found))
        if ev.ratio > best.ratio * (1 + IMPROVE_RTOL):
            best = ev
    return best


def l_step_milp(scenario: Scenario, tables: Tables, current: Evaluation, clock: Deadline) -> Evaluation:
    """The lengths maximizing U/S for the batches of ``current`` by Dinkelbach over the step MILP
    (the cross-check of :func:`l_step`).

    Dinkelbach's q starts at the best ratio among ``current`` and the same batches with every
    user at one common length (closed form, L_ub plans): any feasible plan's ratio is a valid
    start, the step's optimum does not depend on it, and a closer start saves MILP solves.
    One persistent model: each iteration only sets q (a mutable Param) to the best ratio so far
    and hands the solver the best plan so far as a MIP start (its ``U - q S`` is 0, so the last
    solve, which proves that nothing beats it, prunes from the start; measured in
    docs/benchmarks.md)."""
    best = _common_lengths(scenario, current)
    model, decoder = build_length_model(tables, current.plan.batches, q=best.ratio)
    session = MilpSession(scenario, model, decoder)
    while clock.remaining() > 0:
        ev = _step(session, best.ratio, clock, best.plan)
        if ev is None or not ev.ratio > best.ratio * (1 + IMPROVE_RTOL):
            break
        best = ev
    # a tolerance-level miss of HiGHS's is a length one step off: look for it in closed form
    return polish(scenario, best, lengths_only=True, steps=(-1, 1), clock=clock)
