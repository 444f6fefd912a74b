"""Benchmark of the exact solver (issue: ground truth).  Prints a markdown table.

For the paper defaults (L_ub = 20) and seeded heterogeneous instances with M = 4..14
users: Dinkelbach iterations, model build time, total MILP time, status and runtime.
Two columns of starts: from the simple feasible plan (``solve_exact`` alone) and from
DiP-SD's plan (as studies do; DiP-SD's own time is shown separately).  ``--solver`` runs
the same rows with each MILP solver given (side by side, one row per instance and solver;
DiP-SD's steps use the same solver).

    python benchmarks/bench_exact.py [--sizes 4,6,8,10,12,14] [--time-limit 120] [--solver highs,scip,gurobi]
"""

from __future__ import annotations

import argparse
import platform

from dipsd import paper_scenario
from dipsd.data.generate import generate
from dipsd.errors import DipsdError
from dipsd.solvers.dipsd import solve_dipsd
from dipsd.solvers.exact import solve_exact
from dipsd.solvers.milp import solvers as milp_solvers


def row(kind, s, time_limit, solver):
    try:
        return _row(kind, s, time_limit, solver)
    except DipsdError as exc:  # e.g. a model beyond Gurobi's size-limited pip licence
        return f"| {kind} | {solver} | {s.num_users} | error: {str(exc)[:80]} |" + " |" * 9


def _row(kind, s, time_limit, solver):
    plain = solve_exact(s, time_limit=time_limit)
    heur = solve_dipsd(s, time_limit=time_limit)
    warm = solve_exact(s, time_limit=time_limit, start_plan=heur.plan)
    milp = sum(i.milp_s for i in plain.trace)
    wmilp = sum(i.milp_s for i in warm.trace)
    return (f"| {kind} | {solver} | {s.num_users} | {plain.status.value} | {plain.iterations} | {plain.build_s:.2f} | {milp:.2f} | "
            f"{plain.runtime_s:.2f} | {heur.runtime_s:.2f} | {warm.iterations} | {wmilp:.2f} | {warm.runtime_s:.2f} | "
            f"{plain.throughput_tps:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4,6,8,10,12,14")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--solver", default="highs", help="comma-separated MILP solvers (highs, scip, gurobi)")
    args = ap.parse_args()
    solvers = [x.strip() for x in args.solver.split(",") if x.strip()]
    for name in solvers:
        milp_solvers.check(name)
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print("| instance | solver | M | status | iters | build s | MILP s | total s | DiP-SD s | iters from DiP-SD | MILP s "
          "| total s | optimum tok/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    cases = [("paper", paper_scenario(m)) for m in sizes]
    cases += [(f"heterogeneous ({s.name})", s) for m in sizes for s in generate([m], 1, seed=11, max_draft_length=20)]
    for kind, s in cases:
        for name in solvers:
            with milp_solvers.use(name):
                print(row(kind, s, args.time_limit, name), flush=True)


if __name__ == "__main__":
    main()
