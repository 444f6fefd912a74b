"""Ground truth: Dinkelbach's parametric method over the MILP of :mod:`dipsd.formulation.milp`.

``R* = max U/S``.  For a ratio ``q`` of a feasible plan, ``F(q) = max U - q S >= 0`` with
equality iff ``q = R*``.  Each iteration solves ``F(q)`` exactly (HiGHS, MIP gap 0) on the
*same* persistent model, only the mutable Param ``q`` changes, and sets ``q`` to the
closed-form ratio of the maximizer.  The ratios increase strictly and the plan set is
finite, so the loop ends.

Stopping rule.  The loop stops when the MILP is solved to optimality and its maximizer
does not improve on ``q`` by more than a relative ``IMPROVE_RTOL = 1e-12``: then
``F(q) <= eps`` where ``eps = max(F_ub(q), 0)`` is the MILP's own dual bound, which HiGHS
closes to its feasibility tolerances (about 1e-9 here) since both MIP gaps are 0.  This is
safe because the certificate below turns any such ``eps`` into a bound:

Certificate.  For every plan ``U - q S <= F_ub(q)``, so with ``S >= S_min``
(:meth:`~dipsd.formulation.tables.Tables.span_lower_bound`)
``R* <= q + max(F_ub(q), 0) / S_min``.  Every iteration gives such a bound; the smallest is
reported.  At a time limit the incumbent and this bound are both returned.

Each solve starts from the best plan known (a MIP start, so HiGHS begins with an incumbent
of value 0 and prunes every node that cannot beat it).

Every plan the MILP returns is re-evaluated by the closed-form evaluator; a maximizer
whose closed-form ``U - q S`` disagrees with the MILP's objective (beyond 1e-6 relative) is
a modelling bug and raises :class:`~dipsd.errors.SolverError`.
"""

from __future__ import annotations

import logging
import math
import sys
import time


from pyomo.contrib.solver.common.factory import SolverFactory

from ..data.scenario import Scenario
from ..errors import SolverError
from ..formulation.evaluate import evaluate
from ..formulation.milp import build_model, model_size
from ..formulation.plan import Plan
from ..formulation.tables import Tables
from .deadline import Deadline
from .highs_adapter import manual_parameter_updates, set_mip_start
from .outcomes import MilpOutcome, agrees, outcome as milp_outcome
from .results import Iteration, SolveResult, Status
from .start import simple_plan

log = logging.getLogger(__name__)

IMPROVE_RTOL = 1e-12
"""A maximizer must beat ``q`` by this relative margin to count as an improvement."""
MAX_ITERATIONS = 50
BUILD_RATE = 5000.0
"""Index cells (:func:`model_size`) built per second, conservatively (Pyomo model plus HiGHS instance;
measured 13,000-16,000 per second for the Pyomo model alone on this project's machine)."""
MEETS_RTOL = 1e-9
"""An incumbent within this relative distance of a given certified bound is optimal."""




def solve_exact(
    scenario: Scenario,
    *,
    time_limit: float = 60.0,
    start_plan: Plan | None = None,
    threads: int = 1,
    max_iterations: int = MAX_ITERATIONS,
    tee: bool = False,
    solver_options: dict | None = None,
    known_bound_tps: float | None = None,
) -> SolveResult:
    """Solve P exactly by Dinkelbach's method; see the module docstring.

    ``time_limit`` (s) covers the whole solve including model building; ``start_plan``
    (for example DiP-SD's) sets the first q; without one, :func:`simple_plan` is used.
    ``threads`` is passed to HiGHS; keep it fixed within a process.  ``solver_options``
    are further HiGHS options (the MIP gaps, time limit and threads are set here).
    ``known_bound_tps`` is a certified upper bound proven elsewhere (``certify``'s): the
    loop stops as soon as the incumbent meets it (relative :data:`MEETS_RTOL`), and the
    reported bound is never above it.
    """
    clock = Deadline(time_limit)
    tables = Tables.of(scenario)
    s_min = tables.span_lower_bound(scenario.min_batches)
    best_plan, best_eval = _start(scenario, start_plan)
    q = best_eval.ratio if best_eval is not None else 0.0
    known = math.inf if known_bound_tps is None or not math.isfinite(known_bound_tps) else known_bound_tps / 1000.0
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
    build_s = clock.elapsed()
    solver = SolverFactory("highs")
    solver.set_instance(model)
    manual_parameter_updates(solver)  # only q changes; the MIP start must survive into solve()
    trace: list[Iteration] = []
    bound = known
    status, message = Status.FEASIBLE, f"iteration cap ({max_iterations}) reached"
    for _ in range(max_iterations):
        if best_eval is not None and best_eval.ratio >= known / (1 + MEETS_RTOL):
            status, message = Status.OPTIMAL, "the incumbent meets the certified bound given (certify's)"
            break
        remaining = clock.remaining()
        if remaining <= 0:
            status, message = _timed_out(best_plan)
            break
        model.q.set_value(q)
        solver.update_parameters()
        started = time.perf_counter()
        if best_plan is not None:
            set_mip_start(solver, decoder.start(best_plan))  # its F(q) is 0 at q = its ratio
        res = solver.solve(
            model, time_limit=remaining, rel_gap=0.0, abs_gap=0.0, threads=threads,
            load_solutions=False, raise_exception_on_nonoptimal_result=False,
            tee=[sys.stderr] if tee else [], solver_options=dict(solver_options or {}),
        )
        milp_s = time.perf_counter() - started
        outcome = milp_outcome(res)
        f_ub = math.inf if res.objective_bound is None else float(res.objective_bound)
        ev = _maximizer(scenario, decoder, res, q, outcome)
        trace.append(Iteration(
            q=q, value=res.incumbent_objective, bound=f_ub,
            tokens=None if ev is None else ev.expected_tokens, span_ms=None if ev is None else ev.span_ms,
            milp_s=milp_s, milp_status=outcome.value,
        ))
        log.info("%s: q=%.9g F=%s bound=%s (%s, %.2fs)", scenario.name, q, res.incumbent_objective, f_ub, outcome.value, milp_s)
        if outcome is MilpOutcome.INFEASIBLE:
            if best_plan is not None:
                raise SolverError(f"{scenario.name}: MILP reports infeasible although a feasible plan is known")
            status, message = Status.INFEASIBLE, "no plan meets the memory cap within the batch range"
            break
        if outcome is MilpOutcome.ERROR:
            status, message = Status.ERROR, f"HiGHS ended with {res.termination_condition.name}"
            break
        if math.isfinite(f_ub):
            bound = min(bound, q + max(f_ub, 0.0) / s_min)
        improved = ev is not None and ev.ratio > q * (1.0 + IMPROVE_RTOL) and (best_eval is None or ev.ratio > best_eval.ratio)
        if improved:
            best_plan, best_eval, q = ev.plan, ev, ev.ratio
        if outcome is MilpOutcome.OPTIMAL and not improved:
            status, message = Status.OPTIMAL, f"F(q) <= {max(f_ub, 0.0) + 0.0:.3g}"
            break
        if outcome is MilpOutcome.TIME_LIMIT:
            status, message = _timed_out(best_plan)
            break
    runtime = clock.elapsed()
    if best_eval is not None and math.isfinite(bound):
        bound = max(bound, best_eval.ratio)
    return SolveResult(
        scenario=scenario.name, method="exact", status=status,
        plan=best_plan if status.has_plan else None, evaluation=best_eval if status.has_plan else None,
        upper_bound_tps=None if not math.isfinite(bound) or status is Status.INFEASIBLE else 1000.0 * bound,
        runtime_s=runtime, iterations=len(trace), message=message, trace=tuple(trace), build_s=build_s,
    )


def _timed_out(best_plan):
    if best_plan is None:
        return Status.NO_PLAN, "time limit reached before any feasible plan was found"
    return Status.TIME_LIMIT, "time limit reached; the plan is the best found, the bound is certified"


def _start(scenario: Scenario, start_plan: Plan | None):
    """The plan that sets the first q: the given one if feasible, else :func:`simple_plan`."""
    for plan in (start_plan, simple_plan(scenario)):
        if plan is None:
            continue
        ev = evaluate(scenario, plan)
        if ev.feasible:
            return plan, ev
        log.warning("%s: start plan ignored (%s)", scenario.name, ev.reason)
    return None, None


def _maximizer(scenario: Scenario, decoder, res, q: float, outcome: MilpOutcome):
    """The MILP's incumbent as a closed-form :class:`Evaluation`, checked against the MILP's value."""
    if res.incumbent_objective is None or outcome in (MilpOutcome.INFEASIBLE, MilpOutcome.ERROR):
        return None
    res.solution_loader.load_vars()
    plan = decoder.plan()
    ev = evaluate(scenario, plan)
    if not ev.feasible:
        raise SolverError(f"{scenario.name}: MILP returned an infeasible plan ({ev.reason})")
    closed = ev.expected_tokens - q * ev.span_ms
    milp = float(res.incumbent_objective)
    if not agrees(outcome, milp, closed, max(1.0, abs(ev.expected_tokens))):
        raise SolverError(f"{scenario.name}: MILP value {milp:.12g} disagrees with closed form {closed:.12g} at q={q:.12g}")
    return ev
