"""Benchmark of DiP-SD and the baselines (issue: heuristic).  Prints a markdown table.

    python benchmarks/bench_dipsd.py
"""

from __future__ import annotations

import platform

from dipsd import paper_scenario
from dipsd.data.generate import generate
from dipsd.solvers.registry import run_method

METHODS = ("dipsd", "dipsd-fixed", "sd-nobatch", "ad-batch")


def main() -> None:
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print("| instance | M | " + " | ".join(f"{m} s" for m in METHODS) + " | DiP-SD tok/s | N | rounds |")
    print("|---|---|" + "---|" * (len(METHODS) + 3))
    cases = [("paper", paper_scenario(m)) for m in (6, 10, 14, 30, 50)]
    cases += [(f"heterogeneous ({s.name})", s) for m in (10, 20) for s in generate([m], 1, seed=11, max_draft_length=20)]
    for kind, s in cases:
        results = {m: run_method(m, s, time_limit=300) for m in METHODS}
        d = results["dipsd"]
        times = " | ".join(f"{results[m].runtime_s:.2f}" for m in METHODS)
        print(f"| {kind} | {s.num_users} | {times} | {d.throughput_tps:.3f} | {d.plan.num_batches} | {d.iterations} |", flush=True)


if __name__ == "__main__":
    main()
