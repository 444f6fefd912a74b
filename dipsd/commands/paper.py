"""``dipsd paper``: the paper's sweep (paper defaults, M = 2..max, several alphas): report, figure, ratio table."""

from __future__ import annotations

import argparse
import os

from ..argtypes import positive_float, positive_int
from ..data.workbook import load_workbook
from ..data.writer import save_scenarios
from ..errors import EXIT_INTERRUPTED, EXIT_OK, InputError
from ..outputs import check_output, claim, set_aside, shown, writing
from ..progress import Progress
from .common import add_checkpoint_options, add_solver_option, interrupted, run_info, study_outputs


def add(sub) -> None:
    """Register ``dipsd paper``."""

    p = sub.add_parser(
        "paper", help="reproduce the paper's headline comparison (paper defaults, every method)",
        description="Run every method on the paper defaults for M = 2..max users and each alpha, write the study "
                    "report and a PNG figure, and print a markdown table of DiP-SD's ratios at the largest M next "
                    "to the paper's 17.89x / 1.93x / 1.38x.")
    p.add_argument("--out", default="paper-report.xlsx", help="report path (default paper-report.xlsx); the figure is REPORT.png")
    p.add_argument("--max-users", type=positive_int, default=14, help="largest number of users (default 14; at least 2)")
    p.add_argument("--alphas", default="0.6,0.7,0.78,0.85,0.9",
                   help="comma-separated acceptance rates in [0, 1] (default 0.6,0.7,0.78,0.85,0.9)")
    p.add_argument("--time-limit", type=positive_float, default=60.0, metavar="SECONDS",
                   help="time limit per task in seconds (default 60); exact reports its bound when it stops")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, help="local worker processes (default: cores)")
    add_solver_option(p)
    add_checkpoint_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..reports.excel import write_report
    from ..reports.paper import figure, paper_scenarios, ratio_table
    from ..solvers.milp.solvers import check
    from ..study import run_study as run

    check(args.solver)
    try:
        alphas = [float(a) for a in args.alphas.split(",") if a.strip()]
    except ValueError:
        raise InputError(f"--alphas: expected comma-separated numbers, got {args.alphas!r}") from None
    if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
        raise InputError(f"--alphas: every alpha must be in [0, 1], got {args.alphas!r}")
    if len(set(alphas)) != len(alphas):
        raise InputError(f"--alphas: each alpha once, got {args.alphas!r}")
    if args.max_users < 2:
        raise InputError(f"--max-users must be at least 2, got {args.max_users}")
    methods = ["dipsd", "dipsd-fixed", "sd-nobatch", "ad", "ad-batch", "exact"]
    report, checkpoint = study_outputs(args.out, [])
    scenarios_path = check_output(report + ".scenarios.xlsx", what="scenarios workbook")
    png = check_output(os.path.splitext(report)[0] + ".png", suffix=".png", what="figure")
    claim([report, png, scenarios_path], checkpoint, resume=args.resume, fresh=args.fresh)
    wanted = paper_scenarios(args.max_users, alphas)
    if os.path.exists(scenarios_path) and not args.fresh:  # resuming: the study's own input, kept as it is
        book = load_workbook(scenarios_path)
        if book.scenarios != tuple(wanted):
            raise InputError(f"{scenarios_path} holds other scenarios than --max-users {args.max_users} --alphas "
                             f"{args.alphas} give; run with the study's settings, or --fresh to start again")
    else:
        if args.fresh:
            set_aside(scenarios_path)
        save_scenarios(scenarios_path, wanted)
        book = load_workbook(scenarios_path)

    def finish(outcome) -> None:
        if args.fresh:
            set_aside(report)
            set_aside(png)
        with writing(report, checkpoint):
            write_report(report, book, outcome.records, methods, run_info(args, book, methods, outcome))
        with writing(png, checkpoint):
            figure(png, outcome.records, alphas, args.max_users, methods)

    outcome = run(book, methods, time_limit=args.time_limit, checkpoint_path=checkpoint, workers=args.workers,
                  resume=args.resume, fresh=args.fresh, on_done=(progress := Progress(args.quiet or args.verbose > 0)),
                  on_tick=progress.tick, finish=finish, solver=args.solver)
    table, _ = ratio_table(outcome.records, alphas, args.max_users)
    print(table)
    print(f"\nwrote {shown(args.out)}, {shown(png)} and the scenarios {shown(scenarios_path)}")
    if outcome.interrupted:
        interrupted(checkpoint)
        return EXIT_INTERRUPTED
    return EXIT_OK
