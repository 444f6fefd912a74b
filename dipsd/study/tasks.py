"""A study's unit of work: one (scenario, method) task as plain data, and how a worker runs it.

A :class:`Task` carries the frozen scenario, the method's name, the time limit, the MILP solver,
optionally the finished record it starts from (re-checked before use) or the workbook's plan
(method ``plan:NAME``), and for a user's method the reference ``module:function`` a spawned
or Dask worker re-imports it by.  :func:`run_task` always returns a record, never raises.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from ..data.plans import NamedPlan, plan_name
from ..data.scenario import Scenario
from ..data.workbook import LoadedWorkbook
from ..solvers.audit import record_problem
from ..solvers.milp import solvers as milp_solvers
from ..solvers.results import Record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One unit of work; plain data only (a frozen :class:`Scenario` of Python numbers)."""

    scenario: Scenario
    method: str
    time_limit: float
    start: Record | None = None  # the finished record of the method this one starts from
    plan: NamedPlan | None = None  # method plan:NAME: the workbook's plan for this scenario
    ref: str | None = None  # a user's method: "module:function", for a worker that lacks it
    gives_bound: bool = False
    starts_from: tuple[str, ...] = ()
    solver: str = "highs"  # the MILP solver of exact and DiP-SD's steps (milp_solvers)
    work_limit: int | None = None  # for the methods that honour one (registry.Method.honours_work_limit)

    @property
    def key(self) -> tuple[str, str]:
        return (self.scenario.name, self.method)


def run_task(task: Task) -> Record:
    """Run one task in a worker; always returns a record, never raises."""
    from ..solvers.catalog import ensure_method, run_named_plan

    t0 = time.perf_counter()
    try:
        if task.plan is not None:
            return run_named_plan(task.scenario, task.plan).record(task.scenario)
        ensure_method(task.method, task.ref, task.gives_bound, task.starts_from)
        return _runwith_start(task)
    except BaseException as exc:  # a task failure must never take the study down: in a worker (which leaves
        # Ctrl-C to the parent) SystemExit and KeyboardInterrupt come from the method's code, and are its error
        log.warning("task %s/%s failed: %s: %s", task.scenario.name, task.method, type(exc).__name__, str(exc)[:300])
        log.debug("the traceback of %s/%s:", task.scenario.name, task.method, exc_info=True)
        return crash_record(task, f"{type(exc).__name__}: {str(exc)[:300]}", time.perf_counter() - t0)


def _runwith_start(task: Task) -> Record:
    """The task's method on its scenario with the task's MILP solver, from its start (re-checked)."""
    from ..solvers.registry import Start, run_method

    with milp_solvers.use(task.solver):
        start = None
        given = task.start
        why = None if given is None else record_problem(given, task.scenario)
        if given is not None and why is not None:
            log.warning("%s/%s: the %s result it starts from is ignored: %s", task.scenario.name, task.method,
                        given.method, why)
        elif given is not None:
            plan = given.plan_of(task.scenario) if given.has_plan else None
            start = Start(plan, given.upper_bound_tps, given.method)
        result = run_method(task.method, task.scenario, time_limit=task.time_limit, start=start, work_limit=task.work_limit)
        return result.record(task.scenario)


def crash_record(task: Task, message: str, runtime_s: float = 0.0) -> Record:
    """The record of a task that failed."""
    return Record.failed(task.scenario.name, task.method, message, runtime_s)


def plan_tasks(book: LoadedWorkbook, methods: list[str], time_limit: float, solver: str = "highs",
               work_limit: int | None = None) -> list[Task]:
    """One task per scenario and method; a ``plan:NAME`` method only where the scenario has that plan."""
    from ..solvers.catalog import METHODS

    tasks = []
    for s in book.scenarios:
        plans = book.plans_of(s.name)
        for m in methods:
            if plan_name(m) is not None:
                if m in plans:
                    tasks.append(Task(s, m, time_limit, plan=plans[m]))
                continue
            spec = METHODS[m]
            tasks.append(Task(s, m, time_limit, ref=spec.ref, gives_bound=spec.gives_bound, starts_from=spec.starts_from,
                              solver=solver, work_limit=work_limit))
    return tasks


def with_start(task: Task, record: Record | None) -> Task:
    """The task with the finished record it starts from (if that record has a plan or a bound);
    everything else about the task (solver, limits, a user's method reference) unchanged."""
    if record is not None and (record.has_plan or record.upper_bound_tps is not None):
        return dataclasses.replace(task, start=record)
    return task
