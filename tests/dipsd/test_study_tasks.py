"""The study's task records (dipsd/study/tasks.py): what a task carries reaches the worker."""

from __future__ import annotations

from dipsd import paper_scenario
from dipsd.data.workbook import LoadedWorkbook
from dipsd.solvers.results import Record, Status
from dipsd.study.tasks import plan_tasks, with_start


def test_a_task_that_starts_from_another_keeps_its_solver_and_limits():
    """with_start once rebuilt the task from three fields: exact started from certify ran with HiGHS
    under --solver scip, and lost the work limit and a user method's reference."""
    s = paper_scenario(3)
    book = LoadedWorkbook(path="(test)", sha256="0", scenarios=(s,))
    (task,) = plan_tasks(book, ["exact"], 12.5, "scip", work_limit=77)
    assert (task.solver, task.work_limit, task.time_limit) == ("scip", 77, 12.5)
    record = Record(s.name, "certify", Status.FEASIBLE, upper_bound_tps=100.0)
    started = with_start(task, record)
    assert started.start is record
    assert (started.solver, started.work_limit, started.time_limit, started.method) == ("scip", 77, 12.5, "exact")
    assert (started.ref, started.gives_bound, started.starts_from) == (task.ref, task.gives_bound, task.starts_from)
    assert with_start(task, None) is task
