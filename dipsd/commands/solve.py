"""``dipsd solve``: one method (or all) on some scenarios; a table or JSON lines."""

from __future__ import annotations

import argparse
import json

from ..argtypes import positive_float
from ..data.bundled import example_path
from ..data.workbook import load_workbook
from ..errors import InputError
from .common import add_plugin_option, add_solver_option, add_work_limit_option, load_plugin_files


def add(sub) -> None:
    """Register ``dipsd solve``."""
    from ..solvers.catalog import METHODS, load_plugins

    load_plugins()
    names = ", ".join(f"{m.name} ({m.help})" for m in METHODS.values())
    p = sub.add_parser("solve", help="solve scenarios of a workbook with one method",
                       description=f"Solve scenarios with one method. Methods: {names}.")
    p.add_argument("workbook", nargs="?", default=None, help="scenario workbook (.xlsx); default: the bundled heterogeneous example")
    p.add_argument("--scenario", action="append", default=None, metavar="NAME",
                   help="only scenarios of this name or shell-style pattern, e.g. 'het-M3*' (repeatable; default: all)")
    p.add_argument("--method", required=True, metavar="METHOD",
                   help=f"the method to run ({', '.join(METHODS)}), or 'all' for every default method (not enumerate, "
                        f"nor installed plugins)")
    p.add_argument("--time-limit", type=positive_float, default=60.0, metavar="SECONDS",
                   help="time limit per scenario in seconds (default 60; exact reports a certified bound when it stops)")
    p.add_argument("--json", action="store_true", help="one JSON object per line and scenario instead of a table")
    add_solver_option(p, threads=True)
    add_work_limit_option(p)
    add_plugin_option(p)
    p.set_defaults(func=run)


def _method_name(text: str) -> str:
    """A registered method (``module:function`` is imported), or 'all'; a suggestion for a typo."""
    from ..solvers.catalog import check_methods

    if text == "all":
        return text
    try:
        return check_methods([text], what="--method")[0]
    except InputError as exc:
        raise InputError(str(exc) + (", all" if "choose from" in str(exc) else "")) from None


def format_row(result, scenario, gap_pct: float | None = None, width: int = 11) -> str:
    """One line of the ``dipsd solve`` table; ``gap_pct`` is the gap to the best known optimum or bound;
    ``width`` that of the method column (the longest method name run)."""
    def num(v, width, fmt):
        return f"{'-':>{width}}" if v is None else format(v, f"{width}{fmt}")

    if gap_pct is None and result.gap_bound is not None:
        gap_pct = 100 * result.gap_bound
    batches = result.batches
    shown = "-" if result.plan is None else " | ".join(
        " ".join(f"{scenario.users[m].name}:{result.plan.lengths[m]}" for m in batch) for batch in result.plan.batches)
    return (f"{scenario.name:<16} {result.method:<{width}} {result.status.value:<11} "
            f"{num(result.throughput_tps, 10, '.3f')} {num(result.upper_bound_tps, 10, '.3f')} "
            f"{num(gap_pct, 8, '.4f')} {num(None if batches is None else len(batches), 3, 'd')} "
            f"{num(result.span_ms, 9, '.2f')} {result.runtime_s:8.2f}  {shown}  {result.message}")


def table_header(width: int = 11) -> str:
    return (f"{'scenario':<16} {'method':<{width}} {'status':<11} {'tokens/s':>10} {'bound':>10} {'gap%':>8} "
            f"{'N':>3} {'span_ms':>9} {'time_s':>8}  batches in verification order (user:length)  message")


def run(args: argparse.Namespace) -> int:
    from ..solvers.milp.solvers import check, use

    check(args.solver)  # a missing solver is one line, before any work
    load_plugin_files(args.plugin)
    args.method = _method_name(args.method)
    from ..service import select_scenarios

    book = select_scenarios(load_workbook(args.workbook or example_path()), args.scenario)
    scenarios = list(book.scenarios)
    with use(args.solver, threads=args.threads):
        return _solve_all(args, scenarios)


def _solve_all(args, scenarios) -> int:
    from ..reports.stats import gap, gap_statements, headline, headline_text, reference, statement_text
    from ..solvers.catalog import METHODS, default_methods
    from ..solvers.registry import run_method, start_from
    from ..solvers.results import Record, SolveResult, Status

    methods = default_methods() if args.method == "all" else [args.method]
    args.width = max([11] + [len(m) for m in methods])
    if not args.json:
        print(table_header(args.width))
    failures = total = 0
    everything = []
    for s in scenarios:
        done: dict[str, SolveResult] = {}
        records: list[Record] = []
        for method in methods:
            source = METHODS[method].start_source(methods)
            result = run_method(method, s, time_limit=args.time_limit, start=start_from(done.get(source) if source else None),
                                work_limit=args.work_limit)
            done[method] = result
            records.append(result.record(s))
            total += 1
            failures += result.status is Status.ERROR
            if len(methods) == 1:  # nothing to compare with: print at once
                _print_result(args, result, s, records[-1].to_json(), None)
        if len(methods) > 1:  # every method's gap to what the others proved about this scenario
            ref = reference(records)
            for result, record in zip(done.values(), records):
                g = gap(record, ref)
                shown = {**record.to_json(), "gap_pct": g.proven, "certified_gap_pct": g.certified}
                _print_result(args, result, s, shown, g.proven if g.proven is not None else g.certified)
        everything += records
    if len(methods) > 1 and not args.json:
        print()
        print(statement_text(gap_statements(everything, {s.name: s.num_users for s in scenarios}, methods)))
        print()
        print(headline_text(headline(everything, methods)))
    return 1 if failures == total else 0


def _print_result(args, result, scenario, record: dict, gap_pct: float | None) -> None:
    if args.json:
        print(json.dumps(record), flush=True)
    else:
        print(format_row(result, scenario, gap_pct, args.width), flush=True)
