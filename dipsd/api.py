"""The Python face of dipsd for pandas users: studies in, tidy DataFrames out.

    import dipsd
    df = dipsd.run_study(dipsd.example_path(), time_limit=30)
    df.groupby("method")[["gap_pct", "certified_gap_pct"]].agg(["mean", "max"])
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import pandas as pd

from .data.bundled import example_path
from .data.scenario import Scenario
from .data.workbook import LoadedWorkbook
from .errors import InputError
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
    """A list of Scenarios as a workbook held in memory."""
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
              progress: bool = True, solver: str = "highs", work_limit: int | None = None) -> pd.DataFrame:
    """Run every method on every scenario; one tidy row per (scenario, method).

    ``source`` is a workbook path or a list of :class:`~dipsd.Scenario`.  With ``out`` the same
    Excel report as ``dipsd study`` is written (and its checkpoint ``out + '.jsonl'``, with
    ``resume``/``fresh`` as on the command line); without it the study runs in a temporary
    folder.  ``work_limit``: certify's deterministic limit in work units (``--work-limit``).  The
    columns are those of :func:`dipsd.reports.frames.records_frame`.
    """
    from .service import StudyRequest, run

    if isinstance(methods, str):
        methods = [methods]
    progress_fn = Progress(quiet=not progress)
    # a path is read by the service after it checked the arguments and outputs; scenarios are wrapped here
    book = source if isinstance(source, (str, os.PathLike)) else _book(source)
    request = StudyRequest(source=book, methods=None if methods is None else list(methods), time_limit=time_limit,
                           workers=workers, scheduler=scheduler, out=out, resume=resume, fresh=fresh, solver=solver,
                           work_limit=work_limit,
                           command_line=f"dipsd.run_study(..., methods={methods!r}, time_limit={time_limit!r})")
    done = run(request, on_done=progress_fn, on_tick=progress_fn.tick)
    return records_frame(done.outcome.records, {s.name: s.num_users for s in done.book.scenarios})
