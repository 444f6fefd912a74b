"""``dipsd model``: the MILP of Dinkelbach's subproblem written out (MPS or LP) for any solver."""

from __future__ import annotations

import argparse
import os
import sys

from ..argtypes import positive_float
from ..data.bundled import example_path
from ..data.workbook import load_workbook
from ..errors import InputError


def add(sub) -> None:
    """Register ``dipsd model``."""
    p = sub.add_parser("model", help="write the MILP of one scenario (MPS or LP) for your own solver",
                       description="Write F(q) = max W (U - q S) over problem P for one scenario, the MILP exact solves "
                                   "at each Dinkelbach iteration, as MPS or LP (by --out's ending). With --q the ratio q "
                                   "in tokens/s; with --optimal, exact proves the optimum first and the model is written "
                                   "at q = R*: its optimum 0 certifies R* (a positive one would refute it).")
    p.add_argument("workbook", nargs="?", default=None, help="scenario workbook (.xlsx); default: the bundled example")
    p.add_argument("--scenario", required=True, metavar="NAME", help="the scenario (its exact name)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--q", type=positive_float, metavar="TOK_PER_S", help="the ratio q in tokens/s")
    which.add_argument("--optimal", action="store_true", help="prove the optimum R* first (exact) and write the model at q = R*")
    p.add_argument("--out", required=True, metavar="PATH.mps|PATH.lp", help="the file to write (never over an existing one)")
    p.add_argument("--time-limit", type=positive_float, default=60.0, metavar="SECONDS", help="exact's limit with --optimal")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..formulation.milp import build_model
    from ..outputs import check_new, shown, writing
    from ..solvers.exact import solve_exact
    from ..solvers.results import Status

    kind = os.path.splitext(args.out)[1].lower()
    if kind not in (".mps", ".lp"):
        raise InputError(f"--out {args.out!r}: a file ending in .mps or .lp")
    check_new(args.out, suffix=kind, what="--out")
    scenario = load_workbook(args.workbook or example_path()).scenario(args.scenario)
    q_tps = args.q
    if args.optimal:
        proof = solve_exact(scenario, time_limit=args.time_limit)
        if proof.status is not Status.OPTIMAL:
            raise InputError(f"exact did not prove the optimum of {scenario.name!r} within {args.time_limit:g} s "
                             f"({proof.status.value}); raise --time-limit or give --q")
        q_tps = proof.throughput_tps
    model, _ = build_model(scenario, q=q_tps / 1000.0)
    with writing(args.out):
        model.write(args.out, io_options={"symbolic_solver_labels": True})  # the format from the ending
    print(f"wrote {shown(args.out)}: F(q) = max W (U - q S) for {scenario.name!r} at q = {q_tps:.12g} tok/s "
          f"({q_tps / 1000.0:.12g} tok/ms; W scales the objective, tokens and ms as in docs/model.md)", file=sys.stderr)
    return 0
