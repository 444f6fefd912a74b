"""``dipsd sweep``: a grid over one scenario of a workbook, written as a workbook and run as a study."""

from __future__ import annotations

import argparse
import os
import sys

from ..argtypes import positive_float, positive_int
from ..data.bundled import example_path
from ..data.workbook import load_workbook
from ..outputs import check_new, shown


def add(sub) -> None:
    """Register ``dipsd sweep``."""
    p = sub.add_parser("sweep", help="a grid over one scenario: write it as a workbook (and run it as a study)",
                       description="Vary columns of one scenario over a grid (every combination): a scenario column on the "
                                   "scenario, a user column on every user, 'users' the number of users (users cloned in "
                                   "turn). The grid is written as a workbook, validated like any; --study then runs it as "
                                   "a study (report GRID-report.xlsx). The workbook's plans are not carried over.")
    p.add_argument("workbook", nargs="?", default=None, help="scenario workbook (.xlsx); default: the bundled example")
    p.add_argument("--scenario", required=True, metavar="NAME", help="the scenario to vary (its exact name)")
    p.add_argument("--vary", action="append", required=True, metavar="COLUMN=V1,V2",
                   help="a column and its values (repeatable), e.g. --vary alpha=0.6,0.8 --vary users=4,8,16")
    p.add_argument("--out", required=True, metavar="GRID.xlsx", help="the grid workbook to write (never over an existing file)")
    p.add_argument("--study", action="store_true", help="then run the grid as a study, report GRID-report.xlsx")
    p.add_argument("--methods", default=None, help="with --study: comma-separated methods (default as dipsd study)")
    p.add_argument("--time-limit", type=positive_float, default=60.0, metavar="SECONDS", help="with --study: per task")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, help="with --study: worker processes")
    p.add_argument("--quiet", action="store_true", help="with --study: no progress line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.sweep import parse_vary, write_grid
    from . import study

    vary = parse_vary(args.vary)
    out = check_new(args.out, suffix=".xlsx", what="--out")
    book = load_workbook(args.workbook or example_path())
    grid = write_grid(book, args.scenario, vary, out)
    note = " (its plans are not carried over: they name the original users)" if book.plans_of(args.scenario) else ""
    print(f"wrote {shown(args.out)}: {len(grid.scenarios)} scenarios from {args.scenario!r}{note}", file=sys.stderr)
    if not args.study:
        print(f"run it: dipsd study {shown(args.out)} --out {shown(os.path.splitext(args.out)[0] + '-report.xlsx')}",
              file=sys.stderr)
        return 0
    return study.run(argparse.Namespace(
        workbook=args.out, out=os.path.splitext(args.out)[0] + "-report.xlsx", methods=args.methods, scenario=None,
        time_limit=args.time_limit, work_limit=None, workers=args.workers, scheduler=None, resume=False, fresh=False,
        quiet=args.quiet, verbose=getattr(args, "verbose", 0), solver="highs", plugin=[], plans_out=None, csv=False,
        parquet=False))
