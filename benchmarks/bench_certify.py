"""Benchmark of ``certify`` (certified gaps where exact stops).  Prints markdown tables.

1. Heterogeneous instances (``generate([M], 1, seed)``, seeds 0..4, as
   ``dipsd generate --profile heterogeneous --users M --per-size 1 --seed S``) at
   M = 12, 16, 20, 30, 50: certify's status, plan, certified bound, certified gap and time;
   per size how many were proven optimal.
2. Paper defaults at M = 14, 50 and 100.
3. Exact with certify's plan and bound at M = 16 and 20 (heterogeneous, five seeds).

    python benchmarks/bench_certify.py [--sizes 12,16,20,30,50] [--seeds 0,1,2,3,4] [--time-limit 120] [--exact-sizes 16,20]
                                       [--work-limit UNITS]

With ``--work-limit`` certify stops after that many work units instead of at a time that depends
on the machine's load (status ``work_limit``): the plans and bounds printed are the same on any
machine; the seconds are not.
"""

from __future__ import annotations

import argparse
import platform
import statistics

from dipsd import paper_scenario
from dipsd.data.generate import generate
from dipsd.solvers.registry import Start, run_method
from dipsd.solvers.results import Status


def gap_pct(r) -> float:
    return 100.0 * (r.upper_bound_tps - r.throughput_tps) / r.upper_bound_tps


def certify_row(kind, s, time_limit, work_limit=None):
    r = run_method("certify", s, time_limit=time_limit, work_limit=work_limit)
    if r.throughput_tps is None:
        return f"| {kind} | {s.num_users} | {r.status.value} | - | - | - | {r.runtime_s:.1f} | {r.message} |", r
    return (f"| {kind} | {s.num_users} | {r.status.value} | {r.throughput_tps:.3f} | {r.upper_bound_tps:.3f} | "
            f"{gap_pct(r):.4f} | {r.runtime_s:.1f} | {r.message} |"), r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="12,16,20,30,50")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--paper-sizes", default="14,50,100")
    ap.add_argument("--exact-sizes", default="16,20")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--work-limit", type=int, default=None)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    seeds = [int(x) for x in args.seeds.split(",") if x]
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"time limit {args.time_limit:g} s, work limit {args.work_limit or 'none'}, one HiGHS thread")
    print("\n| instance | M | status | plan tok/s | bound tok/s | certified gap % | time s | detail |")
    print("|---|---|---|---|---|---|---|---|")
    for m in [int(x) for x in args.paper_sizes.split(",") if x]:
        line, _ = certify_row("paper", paper_scenario(m), args.time_limit, args.work_limit)
        print(line, flush=True)
    summary = {}
    for m in sizes:
        for seed in seeds:
            (s,) = generate([m], 1, seed=seed)
            line, r = certify_row(f"heterogeneous seed {seed}", s, args.time_limit, args.work_limit)
            print(line, flush=True)
            summary.setdefault(m, []).append(r)
    print("\n| M | seeds | proven optimal | median gap % | max gap % | median s | max s |")
    print("|---|---|---|---|---|---|---|")
    for m, rs in summary.items():
        gaps = [gap_pct(r) if r.throughput_tps is not None else float("inf") for r in rs]
        times = [r.runtime_s for r in rs]
        proven = sum(r.status is Status.OPTIMAL for r in rs)
        print(f"| {m} | {len(rs)} | {proven} | {statistics.median(gaps):.4f} | {max(gaps):.4f} | "
              f"{statistics.median(times):.1f} | {max(times):.1f} |")
    exact_sizes = [int(x) for x in args.exact_sizes.split(",") if x]
    if exact_sizes:
        print("\n| M | seed | certify s | exact status | exact s (after certify) | exact tok/s |")
        print("|---|---|---|---|---|---|")
        for m in exact_sizes:
            for seed in seeds:
                (s,) = generate([m], 1, seed=seed)
                c = run_method("certify", s, time_limit=args.time_limit, work_limit=args.work_limit)
                e = run_method("exact", s, time_limit=args.time_limit, start=Start(c.plan, c.upper_bound_tps, "certify"))
                tps = "-" if e.throughput_tps is None else f"{e.throughput_tps:.3f}"
                print(f"| {m} | {seed} | {c.runtime_s:.1f} | {e.status.value} | {e.runtime_s:.1f} | {tps} |", flush=True)


if __name__ == "__main__":
    main()
