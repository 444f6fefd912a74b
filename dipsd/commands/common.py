"""What several commands share: loading a workbook, describing a scenario, output paths,
the solver and checkpoint options, the Run sheet of a study run from the command line."""

from __future__ import annotations

import argparse
import os
import sys

from ..argtypes import positive_int, thread_count
from ..data.bundled import example_path
from ..data.scenario import Scenario
from ..data.text import plural
from ..data.workbook import load_workbook
from ..errors import InputError
from ..outputs import check_output


def load(path: str | None):
    return load_workbook(path or example_path())


def describe(scenario: Scenario, notes: tuple[str, ...] = ()) -> str:
    """One line about a scenario: size, ranges, defaults applied, anything suspicious."""
    s = scenario
    parts = [plural(s.num_users, "user"), f"batches {s.min_batches}..{s.max_batches}", f"L_ub {s.max_draft_length}"]
    tables = sum(u.acceptance is not None for u in s.users)
    if tables:
        parts.append(plural(tables, "acceptance table"))
    own = [(u.name, lim) for u, lim in zip(s.users, s.limits) if u.max_draft_length is not None]
    if own:
        shown = ", ".join(f"{n} {lim}" for n, lim in own[:6]) + (" ..." if len(own) > 6 else "")
        parts.append(f"per-user draft limits: {shown}")
    parts.extend(n for n in notes if not n.startswith("WARNING "))
    warn = [n[len("WARNING "):] for n in notes if n.startswith("WARNING ")]
    shortest = min(u.prefix_len for u in s.users)
    longest = max(u.prefix_len for u in s.users)
    room, tight = s.max_batch_size(shortest), s.max_batch_size(longest)
    if room == 1 and s.num_users > 1:
        warn.append("memory cap forces singleton batches")
    elif room < s.num_users and -(-s.num_users // room) > s.max_batches:
        need = -(-s.num_users // room)
        warn.append(f"memory cap needs at least {plural(need, 'batch', 'batches')} but max_batches is {s.max_batches}: infeasible")
    elif tight < s.num_users:
        warn.append(f"memory cap binds (at most {plural(tight, 'user')} per batch at prefix {longest})")
    if s.initial_draft_length > s.max_draft_length:
        warn.append(f"initial_draft_length {s.initial_draft_length} clipped to {s.max_draft_length}")
    if any(u.alpha == 1.0 for u in s.users if u.acceptance is None):
        warn.append("alpha = 1 (every draft token accepted)")
    text = f"{s.name}: " + ", ".join(parts)
    if warn:
        text += "; NOTE: " + "; ".join(warn)
    return text


def new_workbook_path(args: argparse.Namespace) -> str:
    """The output of ``template``/``generate``: valid, and not an existing file unless --force."""
    path = check_output(args.path, what="workbook")
    if os.path.exists(path) and not args.force:
        raise InputError(f"{args.path} exists; dipsd does not overwrite it (choose another name, or --force)")
    return path


def add_solver_option(p, *, threads: bool = False) -> None:
    from ..solvers.milp.solvers import SOLVERS

    p.add_argument("--solver", default="highs", choices=list(SOLVERS),
                   help="MILP solver of exact and DiP-SD's steps: " + "; ".join(f"{n} ({s.used_for})" for n, s in SOLVERS.items())
                        + "; scip and gurobi need pip install -e '.[scip]' or '.[gurobi]'")
    if threads:
        p.add_argument("--threads", type=thread_count, default=1, metavar="K",
                       help="threads of each MILP solve, at most the cores available (default 1; studies run one thread per "
                            "worker process)")


def add_work_limit_option(p) -> None:
    p.add_argument("--work-limit", type=positive_int, default=None, metavar="UNITS",
                   help="a deterministic limit for certify, in work units (one master LP solve with its pricing round, or "
                        "one branch-and-bound node of an IP, rebatching's included): the same inputs and limits give the same "
                        "results on any machine and under any load (status work_limit where it stops certify); the time limit stays the "
                        "wall-clock cap. DiP-SD and exact are deterministic when they end within the time limit")


def add_checkpoint_options(p) -> None:
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the study in the checkpoint REPORT.xlsx.jsonl: skip its finished tasks, re-run its errors; "
                            "methods may be added and the time or work limit raised (tasks stopped by the old limit run again); "
                            "refused if the workbook, versions or anything else changed")
    again.add_argument("--fresh", action="store_true",
                       help="start again although a checkpoint exists: it is moved aside (REPORT.xlsx.jsonl.old-TIME), never deleted")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run_info(args, book, methods, outcome) -> dict:
    """What the Run sheet records about a study run from the command line."""
    from ..reports.metadata import run_metadata

    return run_metadata(book, methods, outcome, time_limit=args.time_limit, workers=args.workers,
                        scheduler=getattr(args, "scheduler", None), solver=args.solver,
                        work_limit=getattr(args, "work_limit", None))


def study_outputs(out: str, inputs: list[str | None]) -> tuple[str, str]:
    """The report and checkpoint paths, checked before any work."""
    report = check_output(out, inputs=inputs, what="--out")
    check_output(out + ".jsonl", inputs=inputs, suffix=".jsonl", what="checkpoint")
    return report, report + ".jsonl"


def interrupted(checkpoint: str) -> None:
    print(f"dipsd: interrupted; the finished tasks are in {checkpoint} and in the report. "
          f"Run the same command with --resume to continue.", file=sys.stderr)


def add_plugin_option(p) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="a Python file of your own methods (repeatable): it is imported first, so its "
                        "dipsd.register_method(...) calls register them, and its functions are also STEM:function "
                        "(any importable module:function can be named in --methods too)")


def load_plugin_files(paths) -> None:
    """Import every ``--plugin`` file (:func:`~dipsd.solvers.catalog.load_plugin_file`)."""
    from ..solvers.catalog import load_plugin_file

    for path in paths or ():
        load_plugin_file(path)
