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
from .outputs import check_output, set_aside
from .progress import Progress
from .reports.frames import read_report, records_frame, results_frame

__all__ = ["run_study", "read_report", "results_frame", "example_path", "DEFAULT_METHODS"]


def _default_methods() -> list[str]:
    from .solvers.registry import METHODS

    return [m for m in METHODS if m != "enumerate"]


DEFAULT_METHODS = tuple(_default_methods())
"""Every method except ``enumerate`` (brute force, tiny instances only)."""


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
              progress: bool = True) -> pd.DataFrame:
    """Run every method on every scenario; one tidy row per (scenario, method).

    ``source`` is a workbook path or a list of :class:`~dipsd.Scenario`.  With ``out`` the same
    Excel report as ``dipsd study`` is written (and its checkpoint ``out + '.jsonl'``, with
    ``resume``/``fresh`` as on the command line); without it the study runs in a temporary
    folder.  The columns are those of :func:`dipsd.reports.frames.records_frame`.
    """
    from .reports.excel import write_report
    from .reports.figures import gap_figure, gaps_png
    from .reports.metadata import run_metadata
    from .solvers.registry import METHODS
    from .solvers.study import run_study as run

    methods = list(methods) if methods is not None else list(DEFAULT_METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InputError(f"methods: unknown method {unknown[0] if unknown else '(none)'!r}; choose from {', '.join(METHODS)}")
    if not time_limit > 0:
        raise InputError(f"time_limit must be > 0, got {time_limit!r}")
    book = _book(source)
    workers = workers or os.cpu_count() or 1
    progress_fn = Progress(quiet=not progress)
    num_users = {s.name: s.num_users for s in book.scenarios}
    if out is None:
        with tempfile.TemporaryDirectory(prefix="dipsd-") as tmp:
            outcome = run(book, methods, time_limit=time_limit, checkpoint_path=os.path.join(tmp, "study.jsonl"),
                          workers=workers, scheduler=scheduler, on_done=progress_fn, on_tick=progress_fn.tick)
        return records_frame(outcome.records, num_users)
    inputs = [book.path] if os.path.exists(book.path) else []
    report = check_output(out, inputs=inputs, what="out")
    check_output(report + ".jsonl", inputs=inputs, suffix=".jsonl", what="checkpoint")
    png = check_output(gaps_png(report), inputs=inputs, suffix=".png", what="figure")

    def finish(outcome) -> None:
        info = run_metadata(book, methods, outcome, time_limit=time_limit, workers=workers, scheduler=scheduler,
                            command_line=f"dipsd.run_study(..., methods={methods!r}, time_limit={time_limit!r})")
        if fresh:
            set_aside(report)  # the earlier study's report goes with its checkpoint, never overwritten
            set_aside(png)
        write_report(report, book, outcome.records, methods, info)
        gap_figure(png, outcome.records, num_users, methods)

    outcome = run(book, methods, time_limit=time_limit, checkpoint_path=report + ".jsonl", workers=workers,
                  scheduler=scheduler, resume=resume, fresh=fresh, on_done=progress_fn, on_tick=progress_fn.tick, finish=finish)
    return records_frame(outcome.records, num_users)
