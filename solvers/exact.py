"""Ground truth: Dinkelbach's parametric method over the MILP of :mod:`dipsd.formulation.milp`.

``R* = max U/S``.  For a ratio ``q`` of a feasible plan, ``F(q) = max U - q S >= 0`` with
equality iff ``q = R*``.  Each iteration solves ``F(q)`` exactly (HiGHS, MIP gap 0) on the
*same* persistent model, only the mutable Param ``q`` changes, and sets ``q`` to the
closed-form ratio of the maximizer.  The ratios increase strictly and the plan set is
finite, so the loop ends.

Stopping rule and certificate.  For every plan ``U - q S <= F(q)``, so with ``S >= S_min``
(:meth:`~dipsd.formulation.tables.Tables.span_lower_bound`)
``R* <= q + max(F(q), 0) / S_min``.  HiGHS's dual bound of ``F(q)`` is exact only up to its
tolerances; :class:`~dipsd.solvers.milp.session.MilpSession` returns it with the margin of
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
from .milp.outcomes import MilpOutcome
from .milp.session import Answer, MilpSession
from .polish import polish
from .results import Iteration, SolveResult, Status
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
    known = _known_bound(scenario, known_bound_tps, best_eval)
    estimate = model_size(scenario, tables) / BUILD_RATE
    if estimate > clock.remaining():  # would not even be built in time: say so now
        return _not_built(scenario, tables, clock, best_plan, best_eval, known, estimate)
    model, decoder = build_model(scenario, q=q, tables=tables)
    session = MilpSession(scenario, model, decoder, threads=threads, tee=tee, options=solver_options)
    run = _Dinkelbach(scenario, session, clock, best_plan, best_eval, known)
    build_s = clock.elapsed()
    status, message = Status.FEASIBLE, f"iteration cap ({max_iterations}) reached"
    for _ in range(max_iterations):
        ended = run.step()
        if ended is not None:
            status, message = ended
            break
    return run.result(status, message, build_s)


class _Dinkelbach:
    """One run of the loop (module docstring): the incumbent and its ratio ``q``, this run's own
    certificate ``bound`` (tokens/ms; the bound given, ``known``, kept apart) and the trace."""

    def __init__(self, scenario: Scenario, session: MilpSession, clock: Deadline, best_plan: Plan | None,
                 best_eval: Evaluation | None, known: float):
        self.scenario, self.session, self.clock, self.known = scenario, session, clock, known
        self.best_plan, self.best_eval = best_plan, best_eval
        self.q = best_eval.ratio if best_eval is not None else 0.0
        self.bound = math.inf
        self.trace: list[Iteration] = []

    def take(self, ev: Evaluation) -> None:
        self.best_plan, self.best_eval, self.q = ev.plan, ev, ev.ratio

    def step(self) -> tuple[Status, str] | None:
        """One iteration; the final status and message when the loop ends here, else None."""
        name, q, best_eval = self.scenario.name, self.q, self.best_eval
        if best_eval is not None and best_eval.ratio >= self.known / (1 + MEETS_RTOL):
            log.info("%s: exact: the incumbent %.9g tok/s meets the bound given; no MILP needed", name, best_eval.throughput_tps)
            return Status.OPTIMAL, "the incumbent meets the certified bound given (certify's)"
        if self.clock.remaining() <= 0:
            return _timed_out(self.best_plan)
        ans = _iteration(self.session, self.scenario, q, self.clock, self.best_plan, self.trace)
        ev = ans.evaluation
        if ans.outcome is MilpOutcome.INFEASIBLE:
            if self.best_plan is not None:
                raise SolverError(f"{name}: MILP reports infeasible although a feasible plan is known")
            return Status.INFEASIBLE, "no plan meets the memory cap within the batch range"
        if ans.outcome is MilpOutcome.ERROR:
            return Status.ERROR, f"HiGHS ended with {ans.termination}"
        if math.isfinite(ans.bound):
            self.bound = min(self.bound, q + max(ans.bound, 0.0) / self.session.min_span)
        if ev is not None and ev.ratio > q * (1.0 + IMPROVE_RTOL) and (best_eval is None or ev.ratio > best_eval.ratio):
            self.take(ev)
            return _timed_out(self.best_plan) if ans.outcome is MilpOutcome.TIME_LIMIT else None
        if ans.outcome is MilpOutcome.TIME_LIMIT:
            return _timed_out(self.best_plan)
        # solved to optimality and nothing better than q came back
        if best_eval is not None and min(self.bound, self.known) <= q * (1.0 + OPTIMAL_RTOL):
            return Status.OPTIMAL, f"F(q) <= {max(ans.bound, 0.0):.3g} (tolerance margin included)"
        polished = polish(self.scenario, best_eval, clock=self.clock) if best_eval is not None else None
        if polished is not None and polished.ratio > q * (1.0 + IMPROVE_RTOL):
            log.info("%s: closed-form search found %.9g above HiGHS's maximizer %.9g", name, polished.ratio, q)
            self.take(polished)
            return None
        return _tie(best_eval, min(self.bound, self.known), q)

    def result(self, status: Status, message: str, build_s: float) -> SolveResult:
        """The result: the bound is the given one as given (its source rounded it) or this run's own
        rounded outward, never below the plan."""
        upper = None
        if status is not Status.INFEASIBLE and (math.isfinite(self.bound) or math.isfinite(self.known)):
            upper = min(1000.0 * self.known, outward(1000.0 * self.bound))
            if self.best_eval is not None:
                upper = max(upper, outward(self.best_eval.throughput_tps))
        return SolveResult(
            scenario=self.scenario.name, method="exact", status=status,
            plan=self.best_plan if status.has_plan else None, evaluation=self.best_eval if status.has_plan else None,
            upper_bound_tps=upper, runtime_s=self.clock.elapsed(), iterations=len(self.trace), message=message,
            trace=tuple(self.trace), build_s=build_s,
        )


def _known_bound(scenario: Scenario, known_bound_tps: float | None, best_eval: Evaluation | None) -> float:
    """The certified bound given (tokens/ms; inf without one, or when the start plan refutes it)."""
    known = math.inf if known_bound_tps is None or not math.isfinite(known_bound_tps) else known_bound_tps / 1000.0
    if best_eval is not None and known < best_eval.ratio * (1 - 1e-14):  # refuted by the start plan itself
        log.warning("%s: the bound given (%.9g tok/s) is below the start plan's %.9g tok/s; ignored", scenario.name,
                    known_bound_tps, best_eval.throughput_tps)
        return math.inf
    return known


def _not_built(scenario: Scenario, tables: Tables, clock: Deadline, best_plan: Plan | None,
               best_eval: Evaluation | None, known: float, estimate: float) -> SolveResult:
    """The result when the MILP would not even be built within the time limit: the start plan and the
    bound given, if any."""
    status, _ = _timed_out(best_plan)
    return SolveResult(
        scenario=scenario.name, method="exact", status=status, plan=best_plan, evaluation=best_eval,
        upper_bound_tps=None if not math.isfinite(known) else max(1000.0 * known, best_eval.throughput_tps if best_eval else 0.0),
        runtime_s=clock.elapsed(),
        message=f"the MILP ({model_size(scenario, tables):,} index cells) would take about {estimate:.0f} s to build, "
                f"more than the time limit; the plan is the start plan" + ("" if math.isfinite(known) else ", no bound"),
    )


def _iteration(session: MilpSession, scenario: Scenario, q: float, clock: Deadline, best_plan: Plan | None,
               trace: list[Iteration]) -> Answer:
    """One Dinkelbach iteration: ``F(q)`` solved from the best plan (a MIP start; its ``F(q)`` is 0 at
    ``q`` = its ratio), recorded in ``trace`` and logged."""
    started = time.perf_counter()
    ans = session.solve(q, clock, start=best_plan)
    milp_s = time.perf_counter() - started
    ev = ans.evaluation
    trace.append(Iteration(
        q=q, value=ans.value, bound=ans.bound,
        tokens=None if ev is None else ev.expected_tokens, span_ms=None if ev is None else ev.span_ms,
        milp_s=milp_s, milp_status=ans.outcome.value,
    ))
    log.info("%s: Dinkelbach q=%.9g F=%s bound=%s (%s, %.2fs)", scenario.name, q, ans.value, ans.bound,
             ans.outcome.value, milp_s)
    return ans


def _tie(best_eval: Evaluation | None, bound: float, q: float) -> tuple[Status, str]:
    """HiGHS solved F(q) to optimality, its maximizer is no better than q, yet its bound leaves room."""
    if best_eval is None:
        return Status.NO_PLAN, "HiGHS found no plan although one may exist (solver tolerance)"
    return Status.FEASIBLE, (f"HiGHS's bound leaves {100 * (bound - q) / bound:.2g} % open and its maximizer is no better "
                             f"than the incumbent (a solver-tolerance tie); the bound is certified")


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
