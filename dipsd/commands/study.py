"""``dipsd study``: every method on every scenario, in parallel and resumably; the answer and the report."""

from __future__ import annotations

import argparse
import os
import sys

from ..argtypes import positive_float, positive_int, scheduler_address
from ..data.bundled import example_path
from ..data.text import plural
from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from ..outputs import check_new, shown
from ..progress import Progress
from .common import add_checkpoint_options, add_plugin_option, add_solver_option, add_work_limit_option, interrupted, load_plugin_files


def add(sub) -> None:
    """Register ``dipsd study``."""
    from ..solvers.catalog import default_methods as defaults
    from ..solvers.catalog import installed_methods

    default_methods, installed = defaults(), installed_methods()
    p = sub.add_parser(
        "study", help="run scenarios x methods in parallel and write an Excel gap report",
        description="Run every method on every scenario of a workbook (default: the bundled heterogeneous example), "
                    "in parallel and resumably, and write an Excel report of throughputs, optimality gaps, plans, "
                    "charts and run metadata. Finished tasks are checkpointed to REPORT.xlsx.jsonl.")
    p.add_argument("workbook", nargs="?", default=None, help="scenario workbook (.xlsx); default: the bundled heterogeneous example")
    p.add_argument("--out", default="dipsd-report.xlsx", help="report path (default dipsd-report.xlsx in the current directory)")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated methods (default {','.join(default_methods)} and plan:NAME for every plan "
                        f"of the workbook's sheet 'plans'; also: enumerate"
                        + (f"; installed plugins, run when named: {','.join(installed)}" if installed else "") + ")")
    p.add_argument("--scenario", action="append", default=None, metavar="NAME",
                   help="only scenarios of this name or shell-style pattern, e.g. 'het-M2*' (repeatable; default: all)")
    p.add_argument("--time-limit", type=positive_float, default=60.0, metavar="SECONDS",
                   help="time limit per task in seconds (default 60)")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                   help=f"local worker processes, one HiGHS thread each (default: the machine's cores, here {os.cpu_count()})")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", type=scheduler_address,
                   help="send tasks to a Dask cluster at tcp://HOST:PORT, or 'local' to start a Dask LocalCluster (needs dipsd[cluster])")
    add_solver_option(p)
    add_work_limit_option(p)
    add_checkpoint_options(p)
    add_plugin_option(p)
    p.add_argument("--plans-out", default=None, metavar="PLANS.xlsx",
                   help="also write the study's scenarios with every plan a method found in sheet 'plans' (plan name = "
                        "method name): dipsd evaluate and study read it back (never over an existing file)")
    p.add_argument("--csv", action="store_true",
                   help="also write the Results frame as REPORT-results.csv beside the report")
    p.add_argument("--parquet", action="store_true",
                   help="also write the Results frame as REPORT-results.parquet (needs pyarrow: pip install pyarrow)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.plans import plan_name
    from ..reports.stats import gap_statements, headline, headline_text, statement_text
    from ..service import StudyRequest, run
    from ..solvers.results import Status

    load_plugin_files(args.plugin)
    if args.plans_out is not None:
        check_new(args.plans_out, suffix=".xlsx", what="--plans-out")
    for flag, suffix in (("csv", ".csv"), ("parquet", ".parquet")):
        if getattr(args, flag, False) and not args.resume:  # on --resume it is this study's own, written again
            check_new(os.path.splitext(args.out)[0] + "-results" + suffix, suffix=suffix, what="--" + flag)
    if getattr(args, "parquet", False):
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            from ..errors import InputError

            raise InputError("--parquet needs pyarrow, which is not installed: pip install pyarrow (or use --csv)")
    methods = None if args.methods is None else [m for m in args.methods.split(",") if m.strip()]
    progress = Progress(args.quiet or args.verbose > 0)
    # the service checks the solver, the arguments and every output before it reads the workbook
    request = StudyRequest(source=args.workbook or example_path(), methods=methods, time_limit=args.time_limit,
                           workers=args.workers, scheduler=args.scheduler, out=args.out, resume=args.resume,
                           fresh=args.fresh, solver=args.solver, work_limit=args.work_limit, patterns=args.scenario or (),
                           command_line=" ".join(["dipsd"] + sys.argv[1:]), methods_option="--methods")
    done_study = run(request, on_done=progress, on_tick=progress.tick)
    outcome, book, methods = done_study.outcome, done_study.book, done_study.methods
    num_users = {s.name: s.num_users for s in book.scenarios}
    recorded = {(r.scenario, r.method) for r in outcome.records}
    # a workbook's plan:NAME is a task only where the scenario has that plan
    done = sum(1 for s in book.scenarios if all((s.name, m) in recorded for m in methods
                                                if plan_name(m) is None or m in book.plans_of(s.name)))
    print(statement_text(gap_statements(outcome.records, num_users, methods), done=done, total=len(book.scenarios),
                         interrupted=outcome.interrupted))
    print()
    print(headline_text(headline(outcome.records, methods)))
    n = len(outcome.records)
    for extra in _extras(args, outcome.records, book):
        print(f"wrote {shown(extra)}", file=sys.stderr)
    figure = done_study.figure or ""
    if figure and not os.path.isabs(args.out):  # both paths as the user gave the report's: relative to here
        figure = os.path.relpath(figure)
    print(f"wrote {shown(args.out)} ({plural(n, 'task')}; gaps per scenario in its Summary and Instances sheets) and "
          f"{shown(figure)}")
    if outcome.interrupted:
        interrupted(done_study.checkpoint or args.out + ".jsonl")
        return EXIT_INTERRUPTED
    if outcome.problems:
        print(f"dipsd: the consistency check failed ({plural(len(outcome.problems), 'problem')}, listed in the Run "
              f"sheet): a bound or an optimum is contradicted by a plan", file=sys.stderr)
        return EXIT_FAILED
    failed = sum(r.status is Status.ERROR for r in outcome.records)
    return EXIT_FAILED if outcome.records and failed == len(outcome.records) else EXIT_OK


def _extras(args, records, book) -> list[str]:
    """``--plans-out``, ``--csv`` and ``--parquet``: the paths written."""
    from ..data.plans import NamedPlan, plan_name
    from ..data.writer import save_scenarios
    from ..outputs import atomic_write, writing
    from ..reports.frames import records_frame

    written = []
    if args.plans_out is not None:
        plans = [NamedPlan(r.scenario, plan_name(r.method) or r.method, tuple(tuple(b) for b in r.batches or ()),
                           tuple(r.draft_lengths or ())) for r in records if r.has_plan and r.draft_lengths]
        with writing(args.plans_out):
            save_scenarios(args.plans_out, book.scenarios, plans=plans)
        written.append(args.plans_out)
    tables = [(suffix, mode) for flag, suffix, mode in (("csv", ".csv", "w"), ("parquet", ".parquet", "wb"))
              if getattr(args, flag, False)]
    if tables:  # the Results frame, built once for every format asked for
        frame = records_frame(records, {s.name: s.num_users for s in book.scenarios})
        for suffix, mode in tables:
            path = os.path.splitext(args.out)[0] + "-results" + suffix
            with writing(path), atomic_write(path, mode) as fh:
                if suffix == ".csv":
                    frame.to_csv(fh, index=False)
                else:
                    frame.to_parquet(fh, index=False)
            written.append(path)
    return written
