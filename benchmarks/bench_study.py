"""Benchmark of ``dipsd study`` on the bundled heterogeneous example with 1 and 2 workers.

Prints tasks per minute and the speed-up of two workers over one (target: >= 1.6x on a
2-core machine).  Run it on an otherwise idle machine.

    python benchmarks/bench_study.py [--time-limit 60]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from dipsd.cli import example_path
from dipsd.data.workbook import load_workbook
from dipsd.solvers.registry import METHODS
from dipsd.study import run_study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    book = load_workbook(example_path())
    methods = [m for m in METHODS if m != "enumerate"]
    print(f"cores: {os.cpu_count()}; {len(book.scenarios)} scenarios x {len(methods)} methods")
    print("| workers | tasks | wall s | tasks/min | speed-up |")
    print("|---|---|---|---|---|")
    base = None
    for k in (int(x) for x in args.workers.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            outcome = run_study(book, methods, time_limit=args.time_limit, checkpoint_path=os.path.join(tmp, "r.jsonl"), workers=k)
            wall = time.perf_counter() - t0
        rate = 60 * len(outcome.records) / wall
        base = base or rate
        print(f"| {k} | {len(outcome.records)} | {wall:.1f} | {rate:.1f} | {rate / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
