"""``dipsd check``: validate a workbook and print one line per scenario (and per plan)."""

from __future__ import annotations

import argparse

from ..data.scenario import Scenario
from ..data.text import plural
from .common import describe, load


def add(sub) -> None:
    """Register the command."""
    c = sub.add_parser("check", help="validate a scenario workbook and summarize each scenario",
                       description="Validate a scenario workbook; print one line per scenario.")
    c.add_argument("workbook", nargs="?", default=None, help="scenario workbook (.xlsx); default: the bundled heterogeneous example")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The scenarios' lines on stdout; a plan that cannot be used is a located error (exit 2) after them:
    the workbook's methods still run, but check validates everything it holds."""
    import sys

    book = load(args.workbook)
    print(f"{book.path}: {plural(len(book.scenarios), 'scenario')}, sha256 {book.sha256[:12]}")
    if book.unread:
        print(f"  sheets not read: {', '.join(repr(n) for n in book.unread)} (dipsd reads scenarios, users, acceptance, "
              f"plans)")
    for s in book.scenarios:
        print("  " + describe(s, book.notes.get(s.name, ())))
        for named in book.plans_of(s.name).values():
            print("    " + _plan_line(s, named))
    for scenario, plan, why in book.unusable:
        print(f"dipsd: error: plan {plan!r} of scenario {scenario!r} cannot be used (the other methods run): {why}",
              file=sys.stderr)
    return 2 if book.unusable else 0


def _plan_line(scenario: Scenario, named) -> str:
    """One line of ``check`` per plan of sheet 'plans': feasible with its throughput, or why not."""
    from ..solvers.catalog import run_named_plan
    from ..solvers.results import Status

    result = run_named_plan(scenario, named)
    if result.status is Status.FEASIBLE:
        return (f"plan {named.name!r}: feasible, {plural(len(named.batches), 'batch', 'batches')}, "
                f"{result.throughput_tps:.3f} tok/s")
    return f"WARNING {result.message}"
