"""Implementations of the ``dipsd`` sub-commands (argument parsing lives in :mod:`dipsd.cli`)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .argtypes import positive_float, positive_int, scheduler_address
from .data.bundled import example_path
from .data.generate import generate
from .data.scenario import Scenario
from .data.text import plural
from .data.workbook import load_workbook
from .data.writer import save_scenarios
from .errors import InputError, did_you_mean
from .outputs import check_output, claim, set_aside, shown, writing
from .progress import Progress


def _load(path: str | None):
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


def run_check(args: argparse.Namespace) -> int:
    book = _load(args.workbook)
    print(f"{book.path}: {plural(len(book.scenarios), 'scenario')}, sha256 {book.sha256[:12]}")
    for s in book.scenarios:
        print("  " + describe(s, book.notes.get(s.name, ())))
        for named in book.plans_of(s.name).values():
            print("    " + _plan_line(s, named))
    return 0


def _plan_line(scenario: Scenario, named) -> str:
    """One line of ``check`` per plan of sheet 'plans': feasible with its throughput, or why not."""
    from .solvers.catalog import run_named_plan
    from .solvers.results import Status

    result = run_named_plan(scenario, named)
    if result.status is Status.FEASIBLE:
        return (f"plan {named.name!r}: feasible, {plural(len(named.batches), 'batch', 'batches')}, "
                f"{result.throughput_tps:.3f} tok/s")
    return f"WARNING {result.message}"


def template_scenario() -> Scenario:
    """The template's scenario: paper defaults, 6 users, a measured table for user u1."""
    from .data.scenario import User

    measured = User(name="u1", alpha=0.74)  # a slightly lower acceptance than the closed form's 0.78
    table = tuple(round(measured.expected_tokens(k), 6) for k in range(1, 21))
    users = (User(name="u1", acceptance=table),) + tuple(User(name=f"u{i}") for i in range(2, 7))
    return Scenario(name="paper-6-users", users=users)


def _new_workbook_path(args: argparse.Namespace) -> str:
    """The output of ``template``/``generate``: valid, and not an existing file unless --force."""
    path = check_output(args.path, what="workbook")
    if os.path.exists(path) and not args.force:
        raise InputError(f"{args.path} exists; dipsd does not overwrite it (choose another name, or --force)")
    return path


def template_plans(scenario: Scenario):
    """Two example plans of the template's scenario (sheet ``plans``): three users per batch at
    length 3, and every user alone at length 4."""
    from .data.plans import NamedPlan

    names = [u.name for u in scenario.users]
    half = len(names) // 2
    return [
        NamedPlan(scenario.name, "two-batches", (tuple(names[:half]), tuple(names[half:])), tuple((n, 3) for n in names)),
        NamedPlan(scenario.name, "one-per-user", tuple((n,) for n in names), tuple((n, 4) for n in names)),
    ]


def run_template(args: argparse.Namespace) -> int:
    path = _new_workbook_path(args)
    scenario = template_scenario()
    # max_batches blank: the number of users, so that users added later keep every plan allowed
    save_scenarios(path, [scenario], plans=template_plans(scenario), blank={"max_batches", "min_batches"})
    print(f"wrote {args.path}")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    if args.per_size < 1:
        raise InputError(f"--per-size must be >= 1, got {args.per_size}")
    path = _new_workbook_path(args)
    scenarios = generate(args.users, args.per_size, args.seed, args.profile)
    save_scenarios(path, scenarios)
    print(f"wrote {plural(len(scenarios), 'scenario')} to {args.path}")
    return 0


def add_solve(sub) -> None:
    """Register ``dipsd solve``."""
    from .solvers.catalog import METHODS, load_plugins

    load_plugins()
    names = ", ".join(f"{m.name} ({m.help})" for m in METHODS.values())
    p = sub.add_parser("solve", help="solve scenarios of a workbook with one method",
                       description=f"Solve scenarios with one method. Methods: {names}.")
    p.add_argument("workbook", nargs="?", default=None, help="scenario workbook (.xlsx); default: the bundled heterogeneous example")
    p.add_argument("--scenario", action="append", default=None, metavar="NAME", help="only this scenario (repeatable; default: all)")
    p.add_argument("--method", required=True, type=_method_name, metavar="METHOD",
                   help=f"the method to run ({', '.join(METHODS)}), or 'all' for every method except enumerate")
    p.add_argument("--time-limit", type=positive_float, default=60.0, metavar="SECONDS",
                   help="time limit per scenario in seconds (default 60; exact reports a certified bound when it stops)")
    p.add_argument("--json", action="store_true", help="one JSON object per line and scenario instead of a table")
    _add_solver_option(p, threads=True)


def _method_name(text: str) -> str:
    """An argparse type: a registered method or 'all', with a suggestion for a typo."""
    from .solvers.catalog import check_methods

    if text == "all":
        return text
    try:
        return check_methods([text], what="--method")[0]
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--method: ") + ", all") from None


def select_scenarios(book, patterns):
    """The workbook with only the scenarios matching one of ``patterns`` (names or shell-style
    patterns such as ``het-M2*``), in workbook order; every pattern must match something."""
    if not patterns:
        return book
    import dataclasses
    import fnmatch

    names = [s.name for s in book.scenarios]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            raise InputError(f"--scenario: no scenario matches {pattern[:60]!r}{did_you_mean(pattern, names)} (known: {shown})")
    keep = tuple(s for s in book.scenarios if any(fnmatch.fnmatchcase(s.name, p) for p in patterns))
    kept = {s.name for s in keep}
    return dataclasses.replace(book, scenarios=keep, plans=tuple(p for p in book.plans if p.scenario in kept))


def _pick(book, names):
    if not names:
        return list(book.scenarios)
    known = {s.name: s for s in book.scenarios}
    missing = [n for n in names if n not in known]
    if missing:
        shown = ", ".join(list(known)[:20]) + (" ..." if len(known) > 20 else "")
        raise InputError(f"{book.path}: unknown scenario {missing[0][:60]!r}{did_you_mean(missing[0], known)} (known: {shown})")
    return [known[n] for n in names]


def format_row(result, scenario, gap_pct: float | None = None) -> str:
    """One line of the ``dipsd solve`` table; ``gap_pct`` is the gap to the best known optimum or bound."""
    def num(v, width, fmt):
        return f"{'-':>{width}}" if v is None else format(v, f"{width}{fmt}")

    if gap_pct is None and result.gap_bound is not None:
        gap_pct = 100 * result.gap_bound
    lengths = "-" if result.plan is None else ",".join(map(str, result.plan.lengths))
    batches = result.batches
    return (f"{scenario.name:<16} {result.method:<11} {result.status.value:<11} "
            f"{num(result.throughput_tps, 10, '.3f')} {num(result.upper_bound_tps, 10, '.3f')} "
            f"{num(gap_pct, 8, '.4f')} {num(None if batches is None else len(batches), 3, 'd')} "
            f"{num(result.span_ms, 9, '.2f')} {result.runtime_s:8.2f}  {lengths}  {result.message}")


TABLE_HEADER = (f"{'scenario':<16} {'method':<11} {'status':<11} {'tokens/s':>10} {'bound':>10} {'gap%':>8} "
                f"{'N':>3} {'span_ms':>9} {'time_s':>8}  lengths  message")


def run_solve(args: argparse.Namespace) -> int:
    from .solvers.milp_solvers import check, use

    check(args.solver)  # a missing solver is one line, before any work
    book = load_workbook(args.workbook or example_path())
    scenarios = _pick(book, args.scenario)
    with use(args.solver, threads=args.threads):
        return _solve_all(args, scenarios)


def _solve_all(args, scenarios) -> int:
    from .reports.stats import gap, gap_statements, headline, headline_text, reference, statement_text
    from .solvers.catalog import METHODS, default_methods
    from .solvers.registry import run_method, start_from
    from .solvers.results import Status

    if not args.json:
        print(TABLE_HEADER)
    methods = default_methods() if args.method == "all" else [args.method]
    failures = total = 0
    everything = []
    for s in scenarios:
        done, records = {}, []
        for method in methods:
            source = METHODS[method].start_source(methods)
            result = run_method(method, s, time_limit=args.time_limit, start=start_from(done.get(source)))
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
        print(format_row(result, scenario, gap_pct), flush=True)


def add_evaluate(sub) -> None:
    """Register ``dipsd evaluate``."""
    p = sub.add_parser("evaluate", help="evaluate the plans of a workbook's sheet 'plans' (and their gaps)",
                       description="Evaluate every plan of the workbook's sheet 'plans' in closed form: throughput, span, "
                                   "expected tokens, feasibility (the reason when infeasible); with --against, the gap "
                                   "to what that method proves (proven when it proves the optimum, else at most, certified).")
    p.add_argument("workbook", help="scenario workbook (.xlsx) with a sheet 'plans'")
    p.add_argument("--scenario", action="append", default=None, metavar="NAME",
                   help="only scenarios of this name or shell-style pattern (repeatable; default: all)")
    p.add_argument("--against", choices=["certify", "exact"], default=None,
                   help="also run this method on each scenario and give each plan's gap to it")
    p.add_argument("--time-limit", type=positive_float, default=60.0, metavar="SECONDS",
                   help="time limit of the --against method per scenario in seconds (default 60)")
    p.add_argument("--json", action="store_true", help="one JSON object per line and plan instead of a table")


EVALUATE_HEADER = (f"{'scenario':<16} {'plan':<14} {'status':<10} {'tokens/s':>10} {'span_ms':>10} {'tokens':>8} "
                   f"{'N':>3} {'gap%':>9} {'kind':<10} reason")


def run_evaluate(args: argparse.Namespace) -> int:
    from .reports.stats import gap, reference
    from .solvers.catalog import run_named_plan
    from .solvers.registry import run_method
    from .solvers.results import Status

    book = select_scenarios(load_workbook(args.workbook), args.scenario)
    if not book.plans:
        raise InputError(f"{args.workbook}: no plans to evaluate (sheet 'plans': scenario, plan, user, batch, "
                         f"draft_length; see dipsd template)")
    if not args.json:
        print(EVALUATE_HEADER)
    for s in book.scenarios:
        plans = list(book.plans_of(s.name).values())
        if not plans:
            continue
        results = [run_named_plan(s, p) for p in plans]
        against = run_method(args.against, s, time_limit=args.time_limit) if args.against else None
        records = [r.record(s) for r in results] + ([against.record(s)] if against is not None else [])
        ref = reference(records) if against is not None else None
        for named, result, record in zip(plans, results, records):
            g = gap(record, ref) if ref is not None else None
            kind, value = (None, None)
            if g is not None and g.proven is not None:
                kind, value = "proven", g.proven
            elif g is not None and g.certified is not None:
                kind, value = "certified", g.certified
            row = {"scenario": s.name, "plan": named.name, "status": result.status.value,
                   "feasible": result.status is Status.FEASIBLE, "throughput_tps": result.throughput_tps,
                   "span_ms": result.span_ms, "expected_tokens": result.expected_tokens,
                   "num_batches": len(named.batches), "gap_pct": value, "gap_kind": kind,
                   "against": None if against is None else {"method": against.method, "status": against.status.value,
                                                            "throughput_tps": against.throughput_tps,
                                                            "upper_bound_tps": against.upper_bound_tps},
                   "reason": "feasible" if result.status is Status.FEASIBLE else result.message}
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                def num(v, width, fmt):
                    return f"{'-':>{width}}" if v is None else format(v, f"{width}{fmt}")
                shown = "" if kind is None else ("<= " if kind == "certified" else "")
                print(f"{s.name:<16} {named.name:<14} {result.status.value:<10} {num(result.throughput_tps, 10, '.3f')} "
                      f"{num(result.span_ms, 10, '.2f')} {num(result.expected_tokens, 8, '.3f')} {len(named.batches):>3} "
                      f"{(shown + format(value, '.4f')) if value is not None else '-':>9} {kind or '-':<10} {row['reason']}",
                      flush=True)
    if args.against and not args.json:
        print(f"\ngap% = 100 (R* - R) / R*: proven where {args.against} proved the optimum; '<=' certified: at most "
              f"that, to {args.against}'s bound")
    return 0


def add_study(sub) -> None:
    """Register ``dipsd study``."""
    from .solvers.catalog import default_methods as defaults

    default_methods = defaults()
    p = sub.add_parser(
        "study", help="run scenarios x methods in parallel and write an Excel gap report",
        description="Run every method on every scenario of a workbook (default: the bundled heterogeneous example), "
                    "in parallel and resumably, and write an Excel report of throughputs, optimality gaps, plans, "
                    "charts and run metadata. Finished tasks are checkpointed to REPORT.xlsx.jsonl.")
    p.add_argument("workbook", nargs="?", default=None, help="scenario workbook (.xlsx); default: the bundled heterogeneous example")
    p.add_argument("--out", default="dipsd-report.xlsx", help="report path (default dipsd-report.xlsx in the current directory)")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated methods (default {','.join(default_methods)} and plan:NAME for every plan "
                        f"of the workbook's sheet 'plans'; also: enumerate)")
    p.add_argument("--scenario", action="append", default=None, metavar="NAME",
                   help="only scenarios of this name or shell-style pattern, e.g. 'het-M2*' (repeatable; default: all)")
    p.add_argument("--time-limit", type=positive_float, default=60.0, metavar="SECONDS",
                   help="time limit per task in seconds (default 60)")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                   help=f"local worker processes, one HiGHS thread each (default: the machine's cores, here {os.cpu_count()})")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", type=scheduler_address,
                   help="send tasks to a Dask cluster at tcp://HOST:PORT, or 'local' to start a Dask LocalCluster (needs dipsd[cluster])")
    _add_solver_option(p)
    _add_checkpoint_options(p)


def _add_checkpoint_options(p) -> None:
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the study in the checkpoint REPORT.xlsx.jsonl: skip its finished tasks, re-run its errors; "
                            "methods may be added and the time limit raised (tasks stopped by the old limit run again); "
                            "refused if the workbook, versions or anything else changed")
    again.add_argument("--fresh", action="store_true",
                       help="start again although a checkpoint exists: it is moved aside (REPORT.xlsx.jsonl.old-TIME), never deleted")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run_info(args, book, methods, outcome) -> dict:
    """What the Run sheet records about a study run from the command line."""
    from .reports.metadata import run_metadata

    return run_metadata(book, methods, outcome, time_limit=args.time_limit, workers=args.workers,
                        scheduler=getattr(args, "scheduler", None), solver=args.solver)


def _add_solver_option(p, *, threads: bool = False) -> None:
    from .solvers.milp_solvers import SOLVERS

    p.add_argument("--solver", default="highs", choices=list(SOLVERS),
                   help="MILP solver of exact and DiP-SD's steps: " + "; ".join(f"{n} ({s.used_for})" for n, s in SOLVERS.items())
                        + "; scip and gurobi need pip install -e '.[scip]' or '.[gurobi]'")
    if threads:
        p.add_argument("--threads", type=positive_int, default=1, metavar="K",
                       help="threads of each MILP solve (default 1; studies run one thread per worker process)")


def _study_outputs(out: str, inputs: list[str | None]) -> tuple[str, str]:
    """The report and checkpoint paths, checked before any work."""
    report = check_output(out, inputs=inputs, what="--out")
    check_output(out + ".jsonl", inputs=inputs, suffix=".jsonl", what="checkpoint")
    return report, report + ".jsonl"


def _interrupted(checkpoint: str) -> None:
    print(f"dipsd: interrupted; the finished tasks are in {checkpoint} and in the report. "
          f"Run the same command with --resume to continue.", file=sys.stderr)


def run_study(args: argparse.Namespace) -> int:
    from .reports.excel import write_report
    from .reports.figures import gap_figure, gaps_png
    from .solvers.catalog import check_methods, default_methods
    from .solvers.study import run_study as run
    from .solvers.results import Status

    from .solvers.milp_solvers import check

    check(args.solver)
    source = args.workbook or example_path()
    report, checkpoint = _study_outputs(args.out, [source])
    png = check_output(gaps_png(report), inputs=[source], suffix=".png", what="figure")
    claim([report, png], checkpoint, resume=args.resume, fresh=args.fresh)
    book = select_scenarios(load_workbook(source), args.scenario)
    if args.methods is None:
        methods = default_methods() + book.plan_methods
    else:
        methods = check_methods([m for m in args.methods.split(",") if m.strip()], plans=book.plan_methods, what="--methods")

    def finish(outcome) -> None:
        if args.fresh:
            set_aside(report)  # the earlier study's report goes with its checkpoint, never overwritten
            set_aside(png)
        with writing(report, checkpoint):
            write_report(report, book, outcome.records, methods, run_info(args, book, methods, outcome))
        with writing(png, checkpoint):
            gap_figure(png, outcome.records, {s.name: s.num_users for s in book.scenarios}, methods)

    outcome = run(book, methods, time_limit=args.time_limit, checkpoint_path=checkpoint, workers=args.workers,
                  scheduler=args.scheduler, resume=args.resume, fresh=args.fresh, on_done=(progress := Progress(args.quiet or args.verbose > 0)), on_tick=progress.tick,
                  finish=finish, solver=args.solver)
    from .reports.stats import gap_statements, headline, headline_text, statement_text

    num_users = {s.name: s.num_users for s in book.scenarios}
    done = sum(1 for s in book.scenarios if all(any(r.scenario == s.name and r.method == m for r in outcome.records)
                                                for m in methods))
    print(statement_text(gap_statements(outcome.records, num_users, methods), done=done, total=len(book.scenarios),
                         interrupted=outcome.interrupted))
    print()
    print(headline_text(headline(outcome.records, methods)))
    n = len(outcome.records)
    print(f"wrote {shown(args.out)} ({plural(n, 'task')}; gaps per scenario in its Summary and Instances sheets) and {shown(png)}")
    if outcome.interrupted:
        _interrupted(checkpoint)
        return 130
    if outcome.problems:
        print(f"dipsd: the consistency check failed ({plural(len(outcome.problems), 'problem')}, listed in the Run "
              f"sheet): a bound or an optimum is contradicted by a plan", file=sys.stderr)
        return 1
    failed = sum(r.status is Status.ERROR for r in outcome.records)
    return 1 if outcome.records and failed == len(outcome.records) else 0


def add_paper(sub) -> None:
    """Register ``dipsd paper``."""

    p = sub.add_parser(
        "paper", help="reproduce the paper's headline comparison (paper defaults, every method)",
        description="Run every method on the paper defaults for M = 2..max users and each alpha, write the study "
                    "report and a PNG figure, and print a markdown table of DiP-SD's ratios at the largest M next "
                    "to the paper's 17.89x / 1.93x / 1.38x.")
    p.add_argument("--out", default="paper-report.xlsx", help="report path (default paper-report.xlsx); the figure is REPORT.png")
    p.add_argument("--max-users", type=positive_int, default=14, help="largest number of users (default 14; at least 2)")
    p.add_argument("--alphas", default="0.6,0.7,0.78,0.85,0.9", help="comma-separated acceptance rates in [0, 1] (default 0.6,0.7,0.78,0.85,0.9)")
    p.add_argument("--time-limit", type=positive_float, default=60.0, metavar="SECONDS",
                   help="time limit per task in seconds (default 60); exact reports its bound when it stops")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, help="local worker processes (default: cores)")
    _add_solver_option(p)
    _add_checkpoint_options(p)


def run_paper(args: argparse.Namespace) -> int:
    from .reports.excel import write_report
    from .reports.paper import figure, paper_scenarios, ratio_table
    from .solvers.milp_solvers import check
    from .solvers.study import run_study as run

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
    report, checkpoint = _study_outputs(args.out, [])
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
                  resume=args.resume, fresh=args.fresh, on_done=(progress := Progress(args.quiet or args.verbose > 0)), on_tick=progress.tick, finish=finish,
                  solver=args.solver)
    table, _ = ratio_table(outcome.records, alphas, args.max_users)
    print(table)
    print(f"\nwrote {shown(args.out)}, {shown(png)} and the scenarios {shown(scenarios_path)}")
    if outcome.interrupted:
        _interrupted(checkpoint)
        return 130
    return 0
