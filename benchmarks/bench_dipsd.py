"""Benchmark of DiP-SD and the baselines.  Prints markdown tables.

1. Paper defaults (M = 14, 50, 100): seconds of dipsd, dipsd-fixed, sd-nobatch, ad-batch.
2. Heterogeneous instances (``generate([M], 1, seed)``, as ``dipsd generate --profile
   heterogeneous --users M --per-size 1 --seed S``), seeds 0..9, M = 20, 30, 50, 100: DiP-SD's
   seconds and status, the time in its x-steps and l-steps (seconds / calls; x-steps the branch and
   bound handed to the MILP in brackets), with the median and the max per size (issue 36's
   targets: median <= 0.3 s, max <= 1.5 s at M = 20-50, max <= 5 s at M = 100; paper M = 50 <= 0.1 s).

    python benchmarks/bench_dipsd.py [--sizes 20,30,50,100] [--seeds 0,...,9] [--time-limit 300]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from dipsd import paper_scenario
from dipsd.data.generate import generate
from dipsd.solvers import dipsd as dipsd_module
from dipsd.solvers import steps as steps_module
from dipsd.solvers.registry import run_method

METHODS = ("dipsd", "dipsd-fixed", "sd-nobatch", "ad-batch")
STEPS = {"x": [0.0, 0], "l": [0.0, 0], "milp": [0.0, 0]}


def _timed(kind, step):
    """``step`` with its calls and seconds added to STEPS[kind]."""
    def run(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return step(*args, **kwargs)
        finally:
            STEPS[kind][0] += time.perf_counter() - t0
            STEPS[kind][1] += 1
    return run


dipsd_module.x_step = _timed("x", dipsd_module.x_step)
dipsd_module.l_step = _timed("l", dipsd_module.l_step)
steps_module.x_step_milp = _timed("milp", steps_module.x_step_milp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper-sizes", default="14,50,100")
    ap.add_argument("--sizes", default="20,30,50,100")
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--time-limit", type=float, default=300.0)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"time limit {args.time_limit:g} s")
    print("\n| instance | M | " + " | ".join(f"{m} s" for m in METHODS) + " | DiP-SD tok/s | N | rounds |")
    print("|---|---|" + "---|" * (len(METHODS) + 3))
    for m in [int(x) for x in args.paper_sizes.split(",") if x]:
        s = paper_scenario(m)
        results = {name: run_method(name, s, time_limit=args.time_limit) for name in METHODS}
        d = results["dipsd"]
        times = " | ".join(f"{results[name].runtime_s:.2f}" for name in METHODS)
        print(f"| paper | {m} | {times} | {d.throughput_tps:.3f} | {d.plan.num_batches} | {d.iterations} |", flush=True)
    print("\n| M | seed | DiP-SD s | status | tok/s | N | x-steps (s / calls (MILP)) | l-steps (s / calls) |")
    print("|---|---|---|---|---|---|---|---|")
    per_size: dict[int, list[float]] = {}
    for m in [int(x) for x in args.sizes.split(",") if x]:
        for seed in [int(x) for x in args.seeds.split(",") if x]:
            (s,) = generate([m], 1, seed=seed)
            for spent in STEPS.values():
                spent[:] = [0.0, 0]
            d = run_method("dipsd", s, time_limit=args.time_limit)
            tps = "-" if d.throughput_tps is None else f"{d.throughput_tps:.3f}"
            n = "-" if d.plan is None else d.plan.num_batches
            (xs, xn), (ls, ln), (_, mn) = STEPS["x"], STEPS["l"], STEPS["milp"]
            print(f"| {m} | {seed} | {d.runtime_s:.2f} | {d.status.value} | {tps} | {n} | {xs:.2f} / {xn} ({mn}) "
                  f"| {ls:.2f} / {ln} |", flush=True)
            per_size.setdefault(m, []).append(d.runtime_s)
    print("\n| M | median s | max s |")
    print("|---|---|---|")
    for m, times in per_size.items():
        print(f"| {m} | {statistics.median(times):.2f} | {max(times):.2f} |")


if __name__ == "__main__":
    main()
