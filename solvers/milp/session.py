"""One persistent HiGHS session on a built model: the single place where a MILP of
:mod:`dipsd.formulation.milp` is solved, for exact's Dinkelbach loop and DiP-SD's two steps.

A :class:`MilpSession` holds the model, its decoder and one ``pyomo.contrib.solver`` HiGHS
instance; :meth:`MilpSession.solve` sets ``q`` and the objective scale (mutable Params, see
:mod:`dipsd.solvers.tolerances`), hands HiGHS a MIP start, solves with MIP gap 0 and the
tightened tolerances, and returns an :class:`Answer` in the model's own units (tokens): how
the solve ended, the incumbent's value, the dual bound, and the incumbent's plan evaluated
in closed form.

One rule for mishandled MIP starts.  HiGHS 1.16 can report, after presolve maps a MIP start
into its reduced space, the optimal value with the start's columns as its solution.  The
closed form of the decoded plan then disagrees with HiGHS's value; the session detects that
(:func:`~dipsd.solvers.milp.outcomes.agrees`), builds a fresh HiGHS instance and solves again
without the start (logged as a warning).  A disagreement without a start is a modelling bug
and raises :class:`~dipsd.errors.SolverError`.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from typing import Any

from pyomo.contrib.solver.common.factory import SolverFactory

from ...data.scenario import Scenario
from ...errors import SolverError
from ...formulation.evaluate import Evaluation, evaluate
from ...formulation.milp import Decoder
from ...formulation.plan import Plan
from ..deadline import Deadline
from ..tolerances import HIGHS_SLACK, OBJECTIVE_SCALE
from .highs_adapter import manual_parameter_updates, set_mip_start, spend_banner
from .outcomes import MilpOutcome, agrees, outcome
from .solvers import current, current_threads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """One MILP solve, in the model's units (``U - q S`` in tokens).

    ``value`` is HiGHS's incumbent objective (None without one); ``bound`` is HiGHS's dual bound
    plus the tolerance slack (:data:`~dipsd.solvers.tolerances.HIGHS_SLACK`), so that
    ``F(q) <= bound`` holds under the tolerance model (+inf when HiGHS gave none);
    ``evaluation`` is the decoded incumbent in closed form.
    """

    outcome: MilpOutcome
    value: float | None
    bound: float
    evaluation: Evaluation | None
    termination: str


class MilpSession:
    """A persistent HiGHS instance of ``model`` (from a builder of :mod:`dipsd.formulation.milp`).

    ``threads`` is fixed for the session (HiGHS keeps one thread pool per process); ``options``
    are further HiGHS options; ``tee`` streams HiGHS's log to stderr (never stdout); by default it
    does so when this module's logger shows DEBUG lines (``dipsd -vv``).
    """

    def __init__(self, scenario: Scenario, model: Any, decoder: Decoder, *, threads: int | None = None, tee: bool | None = None,
                 options: dict | None = None):
        self.scenario, self.model, self.decoder = scenario, model, decoder
        self.threads = current_threads() if threads is None else threads
        self.tee = log.isEnabledFor(logging.DEBUG) if tee is None else tee
        self.backend = current()  # HiGHS unless the command or the study chose another (milp_solvers.use)
        self.options = {**self.backend.options, **(options or {})}
        self.min_span = max(decoder.layout.min_span, 1e-300)
        # u_m is non-decreasing in l: U_max is every user at L_ub
        self.max_tokens = sum(u.expected_tokens(limit) for u, limit in zip(scenario.users, scenario.limits))
        self.solver = self._instance()

    def _instance(self) -> Any:
        if not self.backend.persistent:  # a direct interface: the model is handed over at each solve
            return SolverFactory(self.backend.pyomo_name)
        spend_banner()
        solver = SolverFactory("highs")
        solver.set_instance(self.model)
        manual_parameter_updates(solver)  # only Params change; a MIP start must survive into solve()
        return solver

    def scale_for(self, q: float) -> float:
        """``W = OBJECTIVE_SCALE / (q S_min)``; for q = 0 (F(0) = max U), ``OBJECTIVE_SCALE / U_max``."""
        if q > 0:
            return OBJECTIVE_SCALE / (q * self.min_span)
        return OBJECTIVE_SCALE / max(1.0, self.max_tokens)

    def solve(self, q: float, clock: Deadline, *, start: Plan | None = None) -> Answer:
        """Solve ``max U - q S`` within the time left on ``clock`` (from ``start``, a MIP start, if given)."""
        scale = self.scale_for(q)
        self.model.q.set_value(q * self.decoder.unit_ms)
        self.model.scale.set_value(scale)
        extra = {}
        if self.backend.persistent:
            self.solver.update_parameters()
            if start is not None:
                set_mip_start(self.solver, self.decoder.start(start))
        elif start is not None and self.backend.warmstart:  # Gurobi: the integer variables' values are the start
            for var, value in self.decoder.start(start).items():
                var.set_value(value, skip_validation=True)
            extra["warmstart_discrete_vars"] = True
        try:
            res = self.solver.solve(
                self.model, time_limit=max(clock.remaining(), 0.01), rel_gap=0.0, abs_gap=0.0, threads=self.threads,
                load_solutions=False, raise_exception_on_nonoptimal_result=False,
                tee=[sys.stderr] if self.tee else [], solver_options=dict(self.options), **extra,
            )
        except Exception as exc:  # a solver's own failure (a size-limited licence, ...): an error of this solve
            if self.backend.persistent:
                raise
            limited = "size-limited" in str(exc) or "too large" in str(exc).lower()
            raise SolverError(f"{self.scenario.name}: {self.backend.name} failed: "
                              + ("the model is beyond its size-limited licence" if limited else
                                 f"{type(exc).__name__}: {str(exc)[:200]}")) from None
        ended = outcome(res)
        if ended is MilpOutcome.TIME_LIMIT:
            clock.hit = True
        bound = math.inf if res.objective_bound is None or not math.isfinite(res.objective_bound) \
            else (float(res.objective_bound) + HIGHS_SLACK) / scale
        if res.incumbent_objective is None or ended in (MilpOutcome.INFEASIBLE, MilpOutcome.ERROR):
            return Answer(ended, None, bound, None, res.termination_condition.name)
        res.solution_loader.load_vars()
        ev = evaluate(self.scenario, self.decoder.plan())
        if not ev.feasible:
            raise SolverError(f"{self.scenario.name}: the MILP returned an infeasible plan ({ev.reason})")
        value = float(res.incumbent_objective) / scale
        closed = ev.expected_tokens - q * ev.span_ms
        if not agrees(ended, value, closed, max(1.0, abs(ev.expected_tokens), q * ev.span_ms)):
            if start is not None:
                # a known solver quirk, handled here (the result is unaffected): a note for -v, not a warning
                log.info("%s: %s's value from a MIP start disagrees with its solution; solving again without "
                         "the start", self.scenario.name, self.backend.name)
                self.solver = self._instance()
                return self.solve(q, clock)
            raise SolverError(f"{self.scenario.name}: MILP value {value:.12g} disagrees with the closed form "
                              f"{closed:.12g} of its plan at q={q:.12g}")
        return Answer(ended, value, bound, ev, res.termination_condition.name)
