"""The Python face of dipsd for pandas users: studies in, tidy DataFrames out.

    import dipsd
    df = dipsd.run_study(dipsd.example_path(), time_limit=30)
    df.groupby("method")[["gap_pct", "certified_gap_pct"]].agg(["mean", "max"])
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Sequence

import pandas as pd

from .data.bundled import example_path
from .data.scenario import Scenario
from .data.workbook import LoadedWorkbook, load_workbook
from .errors import InputError
from .outputs import check_output, claim, set_aside, writing
from .progress import Progress
from .reports.frames import read_report, records_frame, results_frame

__all__ = ["run_study", "read_report", "results_frame", "example_path", "DEFAULT_METHODS"]


def _default_methods() -> list[str]:
    from .solvers.catalog import default_methods

    return default_methods()


DEFAULT_METHODS = tuple(_default_methods())
"""Every built-in method except ``enumerate`` (brute force, tiny instances only); a study's default
also has the registered methods and the workbook's plans."""


def _book(source) -> LoadedWorkbook:
    if isinstance(source, (str, os.PathLike)):
        return load_workbook(source)
    scenarios = tuple(source)
    if not scenarios or not all(isinstance(s, Scenario) for s in scenarios):
        raise InputError("source: a workbook path or a non-empty list of Scenario objects")
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise InputError("source: scenario names must be unique")
    digest = hashlib.sha256(repr(scenarios).encode()).hexdigest()
    return LoadedWorkbook(path="(scenarios from Python)", sha256=digest, scenarios=scenarios)


def run_study(source, methods: Sequence[str] | None = None, *, time_limit: float = 60.0, workers: int | None = None,
              scheduler: str | None = None, out: str | None = None, resume: bool = False, fresh: bool = False,
              progress: bool = True, solver: str = "highs") -> pd.DataFrame:
    """Run every method on every scenario; one tidy row per (scenario, method).

    ``source`` is a workbook path or a list of :class:`~dipsd.Scenario`.  With ``out`` the same
    Excel report as ``dipsd study`` is written (and its checkpoint ``out + '.jsonl'``, with
    ``resume``/``fresh`` as on the command line); without it the study runs in a temporary
    folder.  The columns are those of :func:`dipsd.reports.frames.records_frame`.
    """
    from .reports.excel import write_report
    from .reports.figures import gap_figure, gaps_png
    from .reports.metadata import run_metadata
    from .solvers.catalog import check_methods, default_methods
    from .solvers.study import run_study as run

    if isinstance(methods, str):
        methods = [methods]
    if isinstance(time_limit, bool) or not (isinstance(time_limit, (int, float)) and 0 < time_limit < float("inf")):
        raise InputError(f"time_limit: a finite number of seconds > 0, as on the command line; got {time_limit!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers: a whole number >= 1, got {workers!r}")
    from .solvers.milp_solvers import check

    check(solver)
    book = _book(source)
    if methods is None:
        methods = default_methods() + book.plan_methods
    else:
        methods = check_methods(list(methods), plans=book.plan_methods)
    workers = workers or os.cpu_count() or 1
    progress_fn = Progress(quiet=not progress)
    num_users = {s.name: s.num_users for s in book.scenarios}
    if out is None:
        with tempfile.TemporaryDirectory(prefix="dipsd-") as tmp:
            outcome = run(book, methods, time_limit=time_limit, checkpoint_path=os.path.join(tmp, "study.jsonl"),
                          workers=workers, scheduler=scheduler, on_done=progress_fn, on_tick=progress_fn.tick, solver=solver)
        return records_frame(outcome.records, num_users)
    inputs = [book.path] if os.path.exists(book.path) else []
    report = check_output(out, inputs=inputs, what="out")
    check_output(report + ".jsonl", inputs=inputs, suffix=".jsonl", what="checkpoint")
    png = check_output(gaps_png(report), inputs=inputs, suffix=".png", what="figure")
    claim([report, png], report + ".jsonl", resume=resume, fresh=fresh)

    def finish(outcome) -> None:
        info = run_metadata(book, methods, outcome, time_limit=time_limit, workers=workers, scheduler=scheduler, solver=solver,
                            command_line=f"dipsd.run_study(..., methods={methods!r}, time_limit={time_limit!r})")
        if fresh:
            set_aside(report)  # the earlier study's report goes with its checkpoint, never overwritten
            set_aside(png)
        with writing(report, report + ".jsonl"):
            write_report(report, book, outcome.records, methods, info)
        with writing(png, report + ".jsonl"):
            gap_figure(png, outcome.records, num_users, methods)

    outcome = run(book, methods, time_limit=time_limit, checkpoint_path=report + ".jsonl", workers=workers,
                  scheduler=scheduler, resume=resume, fresh=fresh, on_done=progress_fn, on_tick=progress_fn.tick, finish=finish,
                  solver=solver)
    return records_frame(outcome.records, num_users)
