"""The methods ``dipsd solve`` and studies can run, by name, with one calling convention.

A method may declare what it starts from (:attr:`Method.starts_from`): the names of
methods whose result (plan and certified bound) it takes as its start, in order of
preference.  ``solve`` and studies read that declaration, run such a method after the
first of them that is in the run, and hand it a :class:`Start`; nothing else in dipsd
knows which method starts from which.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ..data.scenario import Scenario
from ..errors import DipsdError
from ..formulation.plan import Plan
from .baselines import solve_ad, solve_ad_batch, solve_sd_nobatch
from .brute import solve_enumerate
from .certify import solve_certify
from .deadline import Deadline
from .dipsd import solve_dipsd
from .exact import solve_exact
from .results import SolveResult, Status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Start:
    """What a method may start from: another method's plan and its certified bound (tokens/s)."""

    plan: Plan | None = None
    bound_tps: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Method:
    """A named method: ``run(scenario, time_limit, start)`` returns a :class:`SolveResult`."""

    name: str
    help: str
    run: Callable[[Scenario, float, Start | None], SolveResult]
    starts_from: tuple[str, ...] = ()
    ref: str | None = None
    """``"module:function"`` of a user's method (:mod:`dipsd.solvers.catalog`): how a spawned
    worker finds it; None for the built-ins."""
    gives_bound: bool = True
    """Whether an ``upper_bound_tps`` of its results is a proven bound (a user declares it)."""
    honours_time_limit: bool = True
    """Whether it stops at its time limit (the target-only baselines and enumerate run to the end:
    they are instant, or refuse what is too large)."""
    identity: str = ""
    """What a user's method is, for a checkpoint to notice a change: its package and version (an
    installed plugin) and the SHA-256 of its module's source (:func:`~dipsd.solvers.catalog.code_identity`);
    empty for the built-ins, which the dipsd version identifies."""
    honours_work_limit: bool = False
    """Whether it takes a work limit (``run(..., work_limit=N)``, :mod:`dipsd.solvers.deadline`): under
    one, its result is the same on any machine unless the time limit stops it first (status
    ``time_limit``).  The others ignore a work limit: they are deterministic when they end within
    their time limit (DiP-SD, exact with one HiGHS thread) or instant."""

    @property
    def takes_start(self) -> bool:
        """Whether it starts from another method's result (``starts_from`` names which)."""
        return bool(self.starts_from)

    def start_source(self, methods: Sequence[str]) -> str | None:
        """The method of ``methods`` this one starts from (the first it declares that is there)."""
        return next((m for m in self.starts_from if m in methods and m != self.name), None)


def _exact(scenario: Scenario, time_limit: float, start: Start | None) -> SolveResult:
    """Dinkelbach from the start's plan and bound.  Without a start (``exact`` run alone) it first
    does what a study does: DiP-SD (at most a quarter of the limit), then certify from DiP-SD's
    plan (up to half the limit in all), and starts from certify's plan and bound; their time
    counts in exact's runtime (:func:`run_method` measures it) and the message says so."""
    clock = Deadline(time_limit)
    note = ""
    if start is None or start.plan is None:
        heuristic = solve_dipsd(scenario, time_limit=clock.remaining() / 4)
        cert = solve_certify(scenario, time_limit=max(time_limit / 2 - clock.elapsed(), 0.01), start_plan=heuristic.plan)
        usable = cert.status is not Status.ERROR
        plan = cert.plan if usable and cert.plan is not None else heuristic.plan
        bound = cert.upper_bound_tps if usable else None
        if start is not None and start.bound_tps is not None:
            bound = start.bound_tps if bound is None else min(bound, start.bound_tps)
        note = (f"; started from DiP-SD ({heuristic.runtime_s:.2f}s) and certify ({cert.runtime_s:.2f}s, "
                f"{cert.status.value}), both included")
        start = Start(plan, bound, "certify")
    result = solve_exact(scenario, time_limit=max(clock.remaining(), 0.01), start_plan=start.plan,
                         known_bound_tps=start.bound_tps)
    return replace(result, message=result.message + note)


def _certify(scenario: Scenario, time_limit: float, start: Start | None, work_limit: int | None = None) -> SolveResult:
    """certify from the start's plan; without one (certify run alone) it first does what a study
    does: DiP-SD, with at most a quarter of the limit (its time counts, the message says so), so
    that certify alone is never below DiP-SD."""
    if start is not None and start.plan is not None:
        return solve_certify(scenario, time_limit=time_limit, start_plan=start.plan, work_limit=work_limit)
    clock = Deadline(time_limit)
    heuristic = solve_dipsd(scenario, time_limit=time_limit / 4)
    result = solve_certify(scenario, time_limit=max(clock.remaining(), 0.01), start_plan=heuristic.plan,
                           work_limit=work_limit)
    return replace(result, message=result.message + f"; started from DiP-SD ({heuristic.runtime_s:.2f}s, included)")


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("dipsd", "the paper's DiP-SD: alternate exact x- and l-steps for every N",
           lambda s, tl, start: solve_dipsd(s, time_limit=tl), gives_bound=False),
    Method("dipsd-fixed", "DiP-SD with every user at initial_draft_length",
           lambda s, tl, start: solve_dipsd(s, time_limit=tl, fixed_lengths=True), gives_bound=False),
    Method("sd-nobatch", "every user in its own batch, lengths optimized",
           lambda s, tl, start: solve_sd_nobatch(s, time_limit=tl), gives_bound=False),
    Method("ad", "target-only autoregressive decoding, one user per pass", lambda s, tl, start: solve_ad(s),
           gives_bound=False, honours_time_limit=False),
    Method("ad-batch", "target-only decoding with greedy memory-feasible batching", lambda s, tl, start: solve_ad_batch(s),
           gives_bound=False, honours_time_limit=False),
    Method("certify", "best plan plus a certified upper bound at any size (column generation over span budgets)",
           _certify, starts_from=("dipsd",), honours_work_limit=True),
    Method("exact", "Dinkelbach over the full MILP with HiGHS (proven optimum or certified bound)", _exact,
           starts_from=("certify", "dipsd")),
    Method("enumerate", "brute force over all partitions and lengths (tiny instances only)",
           lambda s, tl, start: solve_enumerate(s), honours_time_limit=False),
)}
"""Every method by name, in the order reports list them (a method after those it starts from)."""


def start_from(result: SolveResult | None) -> Start | None:
    """The start a finished result offers to the methods that start from it."""
    if result is None or (result.plan is None and result.upper_bound_tps is None):
        return None
    return Start(result.plan, result.upper_bound_tps, result.method)


def run_method(name: str, scenario: Scenario, *, time_limit: float = 60.0, start: Start | None = None,
               start_plan: Plan | None = None, work_limit: int | None = None) -> SolveResult:
    """Run one method; a failure becomes a result with status ``error`` and its message.

    ``start_plan`` is shorthand for ``start=Start(start_plan)``.  ``work_limit`` goes to the
    methods that honour one (:attr:`Method.honours_work_limit`).  The registry measures every
    method's runtime the same way: ``runtime_s`` is the wall time of the whole call (whatever
    the method counted itself), so built-in and user methods compare fairly.
    """
    t0 = time.perf_counter()
    if start is None and start_plan is not None:
        start = Start(start_plan)
    spec = METHODS[name]
    try:
        if work_limit is not None and spec.honours_work_limit:
            result = spec.run(scenario, time_limit, start, work_limit=work_limit)  # type: ignore[call-arg]
        else:
            result = spec.run(scenario, time_limit, start)
        return replace(result, runtime_s=time.perf_counter() - t0)
    except DipsdError as exc:
        log.warning("%s/%s failed: %s", scenario.name, name, exc)
        return SolveResult(scenario.name, name, Status.ERROR, None, None, None, time.perf_counter() - t0, message=str(exc))
    except (ArithmeticError, ValueError, IndexError, RuntimeError, MemoryError) as exc:
        # numbers that pass validation but break a computation (overflow, a solver wrapper's
        # failure): a result with status error, never a crash of the command or the study
        log.warning("%s/%s failed: %s: %s", scenario.name, name, type(exc).__name__, exc)
        return SolveResult(scenario.name, name, Status.ERROR, None, None, None, time.perf_counter() - t0,
                           message=f"{type(exc).__name__}: {str(exc)[:300]}")
