"""Ground truth: Dinkelbach's parametric method over the MILP of :mod:`dipsd.formulation.milp`.

``R* = max U/S``.  For a ratio ``q`` of a feasible plan, ``F(q) = max U - q S >= 0`` with
equality iff ``q = R*``.  Each iteration solves ``F(q)`` exactly (HiGHS, MIP gap 0) on the
*same* persistent model, only the mutable Param ``q`` changes, and sets ``q`` to the
closed-form ratio of the maximizer.  The ratios increase strictly and the plan set is
finite, so the loop ends.

Stopping rule and certificate.  For every plan ``U - q S <= F(q)``, so with ``S >= S_min``
(:meth:`~dipsd.formulation.tables.Tables.span_lower_bound`)
``R* <= q + max(F(q), 0) / S_min``.  HiGHS's dual bound of ``F(q)`` is exact only up to its
tolerances; :class:`~dipsd.solvers.session.MilpSession` returns it with the margin of
:mod:`dipsd.solvers.tolerances` added (``F_ub``), so ``R* <= q + max(F_ub, 0) / S_min`` is the
certificate of every iteration, and the smallest is reported (rounded outward).  The loop
stops with ``optimal`` only when that certificate is within a relative
:data:`~dipsd.solvers.tolerances.OPTIMAL_RTOL` of the incumbent's closed-form ratio ``q``:
then ``R* <= q (1 + OPTIMAL_RTOL)``, which is the contract, proven from the bound rather than
inferred from the maximizer.  When HiGHS's maximizer decodes to no plan better than ``q``
although its bound leaves more room (a tolerance-level miss: an indicator integral only to
HiGHS's tolerance times a large ready time), a closed-form local search
(:func:`~dipsd.solvers.polish.polish`) looks for the better plan; if it finds one, Dinkelbach
continues from it, else the result is ``feasible`` with the certified bound: never a claim
the bound does not prove.  At a time limit the incumbent and the bound are returned.

Each solve starts from the best plan known (a MIP start, so HiGHS begins with an incumbent
of value 0 and prunes every node that cannot beat it).  Every plan the MILP returns is
re-evaluated by the closed-form evaluator (the session's agreement rule).
"""

from __future__ import annotations

import logging
import math
import time

from ..data.scenario import Scenario
from ..errors import SolverError
from ..formulation.evaluate import Evaluation, evaluate
from ..formulation.milp import build_model, model_size
from ..formulation.plan import Plan
from ..formulation.tables import Tables
from .deadline import Deadline
from .outcomes import MilpOutcome
from .polish import polish
from .results import Iteration, SolveResult, Status
from .session import MilpSession
from .start import simple_plan
from .tolerances import IMPROVE_RTOL, MEETS_RTOL, OPTIMAL_RTOL, outward

log = logging.getLogger(__name__)

MAX_ITERATIONS = 50
BUILD_RATE = 5000.0
"""Index cells (:func:`model_size`) built per second, conservatively (Pyomo model plus HiGHS instance;
measured 13,000-16,000 per second for the Pyomo model alone on this project's machine)."""


def solve_exact(
    scenario: Scenario,
    *,
    time_limit: float = 60.0,
    start_plan: Plan | None = None,
    threads: int | None = None,
    max_iterations: int = MAX_ITERATIONS,
    tee: bool | None = None,
    solver_options: dict | None = None,
    known_bound_tps: float | None = None,
) -> SolveResult:
    """Solve P exactly by Dinkelbach's method; see the module docstring.

    ``time_limit`` (s) covers the whole solve including model building; ``start_plan``
    (for example DiP-SD's) sets the first q; without one, :func:`simple_plan` is used.
    ``threads`` is passed to the solver (default: the process's, see milp_solvers.use); keep it fixed within a process.  ``solver_options``
    are further HiGHS options (the MIP gaps, time limit and threads are set here).
    ``known_bound_tps`` is a certified upper bound proven elsewhere (``certify``'s): the
    loop stops as soon as the incumbent meets it (relative :data:`MEETS_RTOL`), and the
    reported bound is never above it.
    """
    clock = Deadline(time_limit)
    tables = Tables.of(scenario)
    best_plan, best_eval = _start(scenario, start_plan)
    q = best_eval.ratio if best_eval is not None else 0.0
    known = math.inf if known_bound_tps is None or not math.isfinite(known_bound_tps) else known_bound_tps / 1000.0
    if best_eval is not None and known < best_eval.ratio * (1 - 1e-14):  # refuted by the start plan itself
        log.warning("%s: the bound given (%.9g tok/s) is below the start plan's %.9g tok/s; ignored", scenario.name,
                    known_bound_tps, best_eval.throughput_tps)
        known = math.inf
    estimate = model_size(scenario, tables) / BUILD_RATE
    if estimate > clock.remaining():  # would not even be built in time: say so now
        status, message = _timed_out(best_plan)
        return SolveResult(
            scenario=scenario.name, method="exact", status=status, plan=best_plan, evaluation=best_eval,
            upper_bound_tps=None if not math.isfinite(known) else max(1000.0 * known, best_eval.throughput_tps if best_eval else 0.0),
            runtime_s=clock.elapsed(),
            message=f"the MILP ({model_size(scenario, tables):,} index cells) would take about {estimate:.0f} s to build, "
                    f"more than the time limit; the plan is the start plan" + ("" if math.isfinite(known) else ", no bound"),
        )
    model, decoder = build_model(scenario, q=q, tables=tables)
    session = MilpSession(scenario, model, decoder, threads=threads, tee=tee, options=solver_options)
    s_min = session.min_span
    build_s = clock.elapsed()
    trace: list[Iteration] = []
    bound = math.inf  # this run's own certificate (ratio, tokens/ms); the known bound is kept apart
    status, message = Status.FEASIBLE, f"iteration cap ({max_iterations}) reached"
    for _ in range(max_iterations):
        if best_eval is not None and best_eval.ratio >= known / (1 + MEETS_RTOL):
            status, message = Status.OPTIMAL, "the incumbent meets the certified bound given (certify's)"
            log.info("%s: exact: the incumbent %.9g tok/s meets the bound given; no MILP needed", scenario.name,
                     best_eval.throughput_tps)
            break
        if clock.remaining() <= 0:
            status, message = _timed_out(best_plan)
            break
        started = time.perf_counter()
        ans = session.solve(q, clock, start=best_plan)  # the start's F(q) is 0 at q = its ratio
        milp_s = time.perf_counter() - started
        ev = ans.evaluation
        trace.append(Iteration(
            q=q, value=ans.value, bound=ans.bound,
            tokens=None if ev is None else ev.expected_tokens, span_ms=None if ev is None else ev.span_ms,
            milp_s=milp_s, milp_status=ans.outcome.value,
        ))
        log.info("%s: Dinkelbach q=%.9g F=%s bound=%s (%s, %.2fs)", scenario.name, q, ans.value, ans.bound,
                 ans.outcome.value, milp_s)
        if ans.outcome is MilpOutcome.INFEASIBLE:
            if best_plan is not None:
                raise SolverError(f"{scenario.name}: MILP reports infeasible although a feasible plan is known")
            status, message = Status.INFEASIBLE, "no plan meets the memory cap within the batch range"
            break
        if ans.outcome is MilpOutcome.ERROR:
            status, message = Status.ERROR, f"HiGHS ended with {ans.termination}"
            break
        if math.isfinite(ans.bound):
            bound = min(bound, q + max(ans.bound, 0.0) / s_min)
        if ev is not None and ev.ratio > q * (1.0 + IMPROVE_RTOL) and (best_eval is None or ev.ratio > best_eval.ratio):
            best_plan, best_eval, q = ev.plan, ev, ev.ratio
            if ans.outcome is MilpOutcome.TIME_LIMIT:
                status, message = _timed_out(best_plan)
                break
            continue
        if ans.outcome is MilpOutcome.TIME_LIMIT:
            status, message = _timed_out(best_plan)
            break
        # solved to optimality and nothing better than q came back
        if best_eval is not None and min(bound, known) <= q * (1.0 + OPTIMAL_RTOL):
            status, message = Status.OPTIMAL, f"F(q) <= {max(ans.bound, 0.0):.3g} (tolerance margin included)"
            break
        polished = polish(scenario, best_eval, clock=clock) if best_eval is not None else None
        if polished is not None and polished.ratio > q * (1.0 + IMPROVE_RTOL):
            log.info("%s: closed-form search found %.9g above HiGHS's maximizer %.9g", scenario.name, polished.ratio, q)
            best_plan, best_eval, q = polished.plan, polished, polished.ratio
            continue
        status = Status.FEASIBLE if best_eval is not None else Status.NO_PLAN
        message = (f"HiGHS's bound leaves {100 * (min(bound, known) - q) / min(bound, known):.2g} % open and its maximizer "
                   f"is no better than "
                   f"the incumbent (a solver-tolerance tie); the bound is certified") if best_eval is not None \
            else "HiGHS found no plan although one may exist (solver tolerance)"
        break
    runtime = clock.elapsed()
    upper = None
    if status is not Status.INFEASIBLE and (math.isfinite(bound) or math.isfinite(known)):
        # the known bound as given (its source rounded it); this run's own rounded outward
        upper = min(1000.0 * known, outward(1000.0 * bound))
        if best_eval is not None:
            upper = max(upper, outward(best_eval.throughput_tps))
    return SolveResult(
        scenario=scenario.name, method="exact", status=status,
        plan=best_plan if status.has_plan else None, evaluation=best_eval if status.has_plan else None,
        upper_bound_tps=upper, runtime_s=runtime, iterations=len(trace), message=message, trace=tuple(trace),
        build_s=build_s,
    )


def _timed_out(best_plan: Plan | None) -> tuple[Status, str]:
    if best_plan is None:
        return Status.NO_PLAN, "time limit reached before any feasible plan was found"
    return Status.TIME_LIMIT, "time limit reached; the plan is the best found, the bound is certified"


def _start(scenario: Scenario, start_plan: Plan | None) -> tuple[Plan | None, Evaluation | None]:
    """The plan that sets the first q: the given one if feasible, else :func:`simple_plan`."""
    for plan in (start_plan, simple_plan(scenario)):
        if plan is None:
            continue
        ev = evaluate(scenario, plan)
        if ev.feasible:
            return plan, ev
        log.warning("%s: start plan ignored (%s)", scenario.name, ev.reason)
    return None, None
