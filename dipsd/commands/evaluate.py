"""``dipsd evaluate``: the plans of a workbook's sheet 'plans' in closed form, and their gaps."""

from __future__ import annotations

import argparse
import json

from ..argtypes import positive_float
from ..data.workbook import load_workbook
from ..errors import InputError


def add(sub) -> None:
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
    p.set_defaults(func=run)


EVALUATE_HEADER = (f"{'scenario':<16} {'plan':<14} {'status':<10} {'tokens/s':>10} {'span_ms':>10} {'tokens':>8} "
                   f"{'N':>3} {'gap%':>9} {'kind':<10} reason")


def run(args: argparse.Namespace) -> int:
    from ..reports.stats import gap, reference
    from ..service import select_scenarios
    from ..solvers.catalog import run_named_plan
    from ..solvers.registry import run_method
    from ..solvers.results import Status

    book = select_scenarios(load_workbook(args.workbook), args.scenario)
    if not book.plans and not book.unusable:
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
        if against is not None and not args.json:  # what the gaps are measured to: R* where proven, else the bound
            best = "-" if against.throughput_tps is None else f"{against.throughput_tps:.3f}"
            bound = "-" if against.upper_bound_tps is None else f"{against.upper_bound_tps:.3f}"
            what = f"R* = {best} tok/s (proven)" if against.status is Status.OPTIMAL else \
                f"best plan {best} tok/s, R* <= {bound} tok/s (certified)"
            print(f"{s.name:<16} {'(' + against.method + ')':<14} {against.status.value:<10} {what}")
    for scenario, plan, why in book.unusable:  # located: the plan's first problem, by sheet, row and column
        if args.json:
            print(json.dumps({"scenario": scenario, "plan": plan, "status": "error", "feasible": False, "reason": why}))
        else:
            print(f"{scenario:<16} {plan:<14} {'error':<10} {'-':>10} {'-':>10} {'-':>8} {'-':>3} {'-':>9} {'-':<10} {why}")
    if args.against and not args.json:
        print(f"\ngap% = 100 (R* - R) / R*: proven where {args.against} proved the optimum; '<=' certified: at most "
              f"that, to {args.against}'s bound")
    return 2 if book.unusable else 0
