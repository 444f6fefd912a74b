"""``dipsd verify``: every optimum and bound a study report claims, proven again independently."""

from __future__ import annotations

import argparse
import json
import sys

from ..argtypes import positive_float
from .common import add_solver_option


def add(sub) -> None:
    """Register ``dipsd verify``."""
    p = sub.add_parser("verify", help="prove every optimum and bound of a study report again, independently",
                       description="Prove each scenario's optimum again with exact from scratch (no start plan, cutoff or "
                                   "bound from any method of the study; --solver scip for a second solver) and judge every "
                                   "claim of the report: an optimum within 1e-9 of the re-proven one, a bound at or above "
                                   "it. Prints one line per claim (verified, refuted, or not re-proven when the re-proof "
                                   "stops at its time limit) and a summary; exit 1 when any claim is refuted.")
    p.add_argument("report", help="a study report (.xlsx) written by dipsd study")
    p.add_argument("--workbook", default=None, metavar="PATH",
                   help="the scenario workbook its study ran (default: the input file the report names, beside the "
                        "report, here, or bundled); its SHA-256 must match the report's")
    p.add_argument("--time-limit", type=positive_float, default=60.0, metavar="SECONDS",
                   help="time limit of each scenario's re-proof in seconds (default 60)")
    p.add_argument("--mps", default=None, metavar="FOLDER",
                   help="write each re-proven optimum's final Dinkelbach MILP (at q = R*, optimum 0) as FOLDER/SCENARIO.mps, "
                        "for any MILP solver to check")
    p.add_argument("--json", action="store_true", help="one JSON object per line and claim instead of a table")
    add_solver_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..verify import REFUTED, VERIFIED, verify_report

    verdicts = verify_report(args.report, args.workbook, time_limit=args.time_limit, solver=args.solver, mps_dir=args.mps)
    if args.json:
        for v in verdicts:
            print(json.dumps(v.to_json()))
    else:
        width = max([16] + [len(v.scenario) for v in verdicts])
        print(f"{'scenario':<{width}} {'method':<12} {'claim':<8} {'tok/s':>14}  {'verdict':<14} detail")
        for v in verdicts:
            print(f"{v.scenario:<{width}} {v.method:<12} {v.claim:<8} {v.value_tps:>14.9g}  {v.verdict:<14} {v.detail}")
    counts = {kind: sum(v.verdict == kind for v in verdicts) for kind in (VERIFIED, REFUTED)}
    left = len(verdicts) - counts[VERIFIED] - counts[REFUTED]
    print(f"dipsd verify: {counts[VERIFIED]} of {len(verdicts)} claims verified by exact from scratch ({args.solver}), "
          f"{counts[REFUTED]} refuted, {left} not re-proven within {args.time_limit:g} s", file=sys.stderr)
    return 1 if counts[REFUTED] else 0
