"""One study service for both front doors: ``dipsd study`` (:mod:`dipsd.commands`) and
``dipsd.run_study`` (:mod:`dipsd.api`) describe a study as a :class:`StudyRequest` and call
:func:`run`; everything a study does besides its loop happens here, once: the solver and the
arguments checked, the outputs checked and claimed before the first byte, the workbook loaded
and filtered, the methods chosen (default: every method except enumerate, plus the
workbook's plans), the loop run (:func:`dipsd.study.run_study`), and the report and
its figure written under the checkpoint's lock.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .data.workbook import LoadedWorkbook, load_workbook
from .errors import InputError
from .outputs import check_output, claim, set_aside, writing

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .study import StudyOutcome


@dataclass(frozen=True)
class StudyRequest:
    """What a study is asked to do (validated by :func:`run`).

    ``source`` is a workbook path (read after the arguments and outputs are checked) or a loaded
    workbook.  ``out`` None runs the study in a temporary folder and writes no report (the API's
    default).  ``patterns`` keep only the scenarios whose names match (shell-style)."""

    source: str | os.PathLike | LoadedWorkbook
    methods: Sequence[str] | None = None
    time_limit: float = 60.0
    workers: int | None = None
    scheduler: str | None = None
    out: str | None = None
    resume: bool = False
    fresh: bool = False
    solver: str = "highs"
    work_limit: int | None = None
    """certify's deterministic limit in work units (:mod:`dipsd.solvers.deadline`); None: time only."""
    patterns: Sequence[str] = ()
    command_line: str | None = None
    methods_option: str = "methods"
    """How messages name the methods argument (``--methods`` on the command line)."""


@dataclass
class StudyResult:
    """A finished (or interrupted) study: its outcome, the scenarios and methods it ran, where it wrote."""

    outcome: StudyOutcome
    book: LoadedWorkbook
    methods: list[str]
    report: str | None
    checkpoint: str | None
    figure: str | None


def check_arguments(time_limit, workers, work_limit=None) -> None:
    """The arguments the command line's parser checks, checked the same way for Python callers."""
    from .solvers.deadline import check_work_limit

    check_work_limit(work_limit)
    if isinstance(time_limit, bool) or not (isinstance(time_limit, (int, float)) and 0 < time_limit < float("inf")):
        raise InputError(f"time_limit: a finite number of seconds > 0, as on the command line; got {time_limit!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers: a whole number >= 1, got {workers!r}")


def run(request: StudyRequest, *, on_done: Callable | None = None, on_tick: Callable | None = None) -> StudyResult:
    """Run the study ``request`` describes; see the module docstring."""
    from .reports.excel import write_report
    from .reports.figures import gap_figure, gaps_png
    from .reports.metadata import run_metadata
    from .solvers.catalog import check_methods, default_methods
    from .solvers.milp.solvers import check
    from .study import run_study

    check_arguments(request.time_limit, request.workers, request.work_limit)
    check(request.solver)
    workers = request.workers or os.cpu_count() or 1
    report = checkpoint = png = None
    if isinstance(request.source, LoadedWorkbook):
        loaded, source = request.source, request.source.path
    else:
        loaded, source = None, os.fspath(request.source)
    if request.out is not None:
        inputs = [source] if os.path.exists(source) else []  # an output must never be the input
        report = check_output(request.out, inputs=inputs, what="--out")
        checkpoint = check_output(report + ".jsonl", inputs=inputs, suffix=".jsonl", what="checkpoint")
        png = check_output(gaps_png(report), inputs=inputs, suffix=".png", what="figure")
        claim([report, png], checkpoint, resume=request.resume, fresh=request.fresh)
    book = select_scenarios(loaded or load_workbook(source), request.patterns)
    if request.methods is None:
        methods = default_methods() + book.plan_methods
        for scenario, plan, why in book.unusable:
            log.warning("plan %r of scenario %r is not run, it cannot be used: %s", plan, scenario, why)
    else:
        methods = check_methods(list(request.methods), plans=book.plan_methods, what=request.methods_option,
                                refused=book.unusable_plan)
    num_users = {s.name: s.num_users for s in book.scenarios}

    def finish(outcome: StudyOutcome) -> None:
        assert report is not None and checkpoint is not None and png is not None  # finish runs only with an --out
        info = run_metadata(book, methods, outcome, time_limit=request.time_limit, workers=workers,
                            scheduler=request.scheduler, solver=request.solver, command_line=request.command_line,
                            work_limit=request.work_limit)
        if request.fresh:  # the earlier study's report goes with its checkpoint, never overwritten
            set_aside(report)
            set_aside(png)
        with writing(report, checkpoint):
            write_report(report, book, outcome.records, methods, info)
        with writing(png, checkpoint):
            gap_figure(png, outcome.records, num_users, methods)

    def loop(path: str, **more) -> StudyOutcome:
        return run_study(book, methods, checkpoint_path=path, time_limit=request.time_limit, workers=workers,
                         scheduler=request.scheduler, on_done=on_done, on_tick=on_tick, solver=request.solver,
                         work_limit=request.work_limit, **more)

    if checkpoint is None:
        with tempfile.TemporaryDirectory(prefix="dipsd-") as tmp:
            outcome = loop(os.path.join(tmp, "study.jsonl"))
    else:
        outcome = loop(checkpoint, resume=request.resume, fresh=request.fresh, finish=finish)
    return StudyResult(outcome, book, methods, report, checkpoint, png)


def select_scenarios(book: LoadedWorkbook, patterns: Sequence[str] | None) -> LoadedWorkbook:
    """The workbook with only the scenarios matching one of ``patterns`` (names or shell-style
    patterns such as ``het-M2*``), in workbook order; every pattern must match something.  A pattern
    that is a scenario's exact name selects that scenario only (``M[1]`` is the scenario named so,
    not ``M1``); ``[*]``, ``[?]``, ``[[]`` match the characters themselves."""
    if not patterns:
        return book
    import dataclasses
    import fnmatch

    from .errors import did_you_mean

    names = [s.name for s in book.scenarios]

    def matches(name: str, pattern: str) -> bool:
        return name == pattern if pattern in names else fnmatch.fnmatchcase(name, pattern)

    for pattern in patterns:
        if not any(matches(n, pattern) for n in names):
            shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            raise InputError(f"--scenario: no scenario matches {pattern[:60]!r}{did_you_mean(pattern, names)} (known: {shown})")
    keep = tuple(s for s in book.scenarios if any(matches(s.name, p) for p in patterns))
    kept = {s.name for s in keep}
    return dataclasses.replace(book, scenarios=keep, plans=tuple(p for p in book.plans if p.scenario in kept),
                               unusable=tuple(u for u in book.unusable if u[0] in kept))
