"""Implementations of the ``dipsd`` sub-commands (argument parsing lives in :mod:`dipsd.cli`)."""

from __future__ import annotations

import argparse

from .data.generate import generate
from .data.scenario import Scenario
from .data.workbook import load_workbook
from .data.writer import save_scenarios


def _load(path: str | None):
    from .cli import example_path

    return load_workbook(path or example_path())


def describe(scenario: Scenario, notes: tuple[str, ...] = ()) -> str:
    """One line about a scenario: size, ranges, defaults applied, anything suspicious."""
    s = scenario
    parts = [f"{s.num_users} users", f"batches {s.min_batches}..{s.max_batches}", f"L_ub {s.max_draft_length}"]
    tables = sum(u.acceptance is not None for u in s.users)
    if tables:
        parts.append(f"{tables} acceptance table{'s' if tables > 1 else ''}")
    parts.extend(notes)
    warn = []
    shortest = min(u.prefix_len for u in s.users)
    longest = max(u.prefix_len for u in s.users)
    room, tight = s.max_batch_size(shortest), s.max_batch_size(longest)
    if room == 1 and s.num_users > 1:
        warn.append("memory cap forces singleton batches")
    elif room < s.num_users and -(-s.num_users // room) > s.max_batches:
        need = -(-s.num_users // room)
        warn.append(f"memory cap needs at least {need} batches but max_batches is {s.max_batches}: infeasible")
    elif tight < s.num_users:
        warn.append(f"memory cap binds (at most {tight} users per batch at prefix {longest})")
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
    print(f"{book.path}: {len(book.scenarios)} scenarios, sha256 {book.sha256[:12]}")
    for s in book.scenarios:
        print("  " + describe(s, book.notes.get(s.name, ())))
    return 0


def template_scenario() -> Scenario:
    """The template's scenario: paper defaults, 6 users, a measured table for user u1."""
    from .data.scenario import User

    measured = User(name="u1", alpha=0.74)  # a slightly lower acceptance than the closed form's 0.78
    table = tuple(round(measured.expected_tokens(k), 6) for k in range(1, 21))
    users = (User(name="u1", acceptance=table),) + tuple(User(name=f"u{i}") for i in range(2, 7))
    return Scenario(name="paper-6-users", users=users)


def run_template(args: argparse.Namespace) -> int:
    save_scenarios(args.path, [template_scenario()])
    print(f"wrote {args.path}")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from .errors import InputError

    if args.per_size < 1:
        raise InputError(f"--per-size must be >= 1, got {args.per_size}")
    scenarios = generate(args.users, args.per_size, args.seed, args.profile)
    save_scenarios(args.path, scenarios)
    print(f"wrote {len(scenarios)} scenarios to {args.path}")
    return 0


def add_solve(sub) -> None:
    """Register ``dipsd solve``."""
    from .cli import _positive_float
    from .solvers.registry import METHODS

    names = ", ".join(f"{m.name} ({m.help})" for m in METHODS.values())
    p = sub.add_parser("solve", help="solve scenarios of a workbook with one method",
                       description=f"Solve scenarios with one method. Methods: {names}.")
    p.add_argument("workbook", help="scenario workbook (.xlsx)")
    p.add_argument("--scenario", action="append", default=None, metavar="NAME", help="only this scenario (repeatable; default: all)")
    p.add_argument("--method", required=True, choices=list(METHODS) + ["all"],
                   help="the method to run, or 'all' for every method except enumerate")
    p.add_argument("--time-limit", type=_positive_float, default=60.0, metavar="SECONDS",
                   help="time limit per scenario in seconds (default 60; exact reports a certified bound when it stops)")
    p.add_argument("--json", action="store_true", help="one JSON object per line and scenario instead of a table")


def _pick(book, names):
    from .errors import InputError

    if not names:
        return list(book.scenarios)
    known = {s.name: s for s in book.scenarios}
    missing = [n for n in names if n not in known]
    if missing:
        raise InputError(f"{book.path}: unknown scenario {missing[0]!r} (known: {', '.join(known)})")
    return [known[n] for n in names]


def format_row(result, scenario) -> str:
    """One line of the ``dipsd solve`` table."""
    def num(v, width, fmt):
        return f"{'-':>{width}}" if v is None else format(v, f"{width}{fmt}")

    gap = result.gap_bound
    lengths = "-" if result.plan is None else ",".join(map(str, result.plan.lengths))
    batches = result.batches
    return (f"{scenario.name:<16} {result.method:<11} {result.status.json_name:<11} "
            f"{num(result.throughput_tps, 10, '.3f')} {num(result.upper_bound_tps, 10, '.3f')} "
            f"{num(None if gap is None else 100 * gap, 8, '.4f')} {num(None if batches is None else len(batches), 3, 'd')} "
            f"{num(result.span_ms, 9, '.2f')} {result.runtime_s:8.2f}  {lengths}  {result.message}")


TABLE_HEADER = (f"{'scenario':<16} {'method':<11} {'status':<11} {'tokens/s':>10} {'bound':>10} {'gap%':>8} "
                f"{'N':>3} {'span_ms':>9} {'time_s':>8}  lengths  message")


def run_solve(args: argparse.Namespace) -> int:
    import json

    from .solvers.registry import run_method

    book = load_workbook(args.workbook)
    scenarios = _pick(book, args.scenario)
    if not args.json:
        print(TABLE_HEADER)
    from .solvers.registry import METHODS

    methods = [m for m in METHODS if m != "enumerate"] if args.method == "all" else [args.method]
    failures = total = 0
    for s in scenarios:
        start = None
        for method in methods:
            result = run_method(method, s, time_limit=args.time_limit, start_plan=start if method == "exact" else None)
            if method == "dipsd" and result.plan is not None:
                start = result.plan
            total += 1
            failures += result.status.json_name == "error"
            if args.json:
                print(json.dumps(result.to_json(s)), flush=True)
            else:
                print(format_row(result, s), flush=True)
    return 1 if failures == total else 0
