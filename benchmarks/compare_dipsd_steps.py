"""DiP-SD with its step MILPs against DiP-SD with its exact searches, step by step.  Prints a table.

DiP-SD is run twice per scenario: with the step MILPs (``x_step_milp``, ``l_step_milp``, how
DiP-SD solved its steps before 0.15) and with the searches (``x_step``, ``l_step``).  Every step of
the MILP run is solved again by the search on the same input: the same value (span, ratio; 1e-9)
is required, and a different plan at that value is a *tie* (a step with several optima).  Where
the final throughputs differ, the runs parted at such a tie.

    python benchmarks/compare_dipsd_steps.py [--sizes 20,30,50] [--seeds 0,...,9]
"""

from __future__ import annotations

import argparse
import logging

from dipsd.data.generate import generate
from dipsd.solvers import dipsd as D
from dipsd.solvers import steps as S
from dipsd.solvers.deadline import Deadline


def _run(scenario, x_step, l_step):
    """DiP-SD with the given steps; its result and every step's (kind, input, output)."""
    trail = []

    def x(s, t, lengths, n, clock, start=None):
        out = x_step(s, t, lengths, n, clock, start)
        trail.append(("x", (t, lengths, n, start), out))
        return out

    def ell(s, t, current, clock):
        out = l_step(s, t, current, clock)
        trail.append(("l", (t, current), out))
        return out

    saved = D.x_step, D.l_step
    D.x_step, D.l_step = x, ell
    try:
        return D.solve_dipsd(scenario, time_limit=600), trail
    finally:
        D.x_step, D.l_step = saved


def _again(scenario, kind, args, was) -> str:
    """'same', 'tie' or 'DIFFERS': the search's step on the MILP run's input."""
    if kind == "x":
        t, lengths, n, start = args
        got = S.x_step(scenario, t, lengths, n, Deadline(600), start)
        if got is None or was is None:
            return "same" if got is was else "DIFFERS"
        if abs(got.span_ms - was.span_ms) > 1e-9 * was.span_ms:
            return "DIFFERS"
        part = lambda ev: sorted(sorted(b) for b in ev.plan.batches)  # noqa: E731
        return "same" if part(got) == part(was) else "tie"
    t, current = args
    got = S.l_step(scenario, t, current, Deadline(600))
    if abs(got.ratio - was.ratio) > 1e-9 * was.ratio:
        return "DIFFERS"
    return "same" if got.plan.lengths == was.plan.lengths else "tie"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20,30,50")
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    print("| M | seed | MILP steps tok/s (s) | searches tok/s (s) | steps | ties | value differs |")
    print("|---|---|---|---|---|---|---|")
    totals = {"steps": 0, "tie": 0, "DIFFERS": 0, "scenarios": 0, "final differs": 0}
    for m in [int(v) for v in args.sizes.split(",") if v]:
        for seed in [int(v) for v in args.seeds.split(",") if v]:
            (s,) = generate([m], 1, seed=seed)
            old, trail = _run(s, S.x_step_milp, S.l_step_milp)
            new, _ = _run(s, S.x_step, S.l_step)
            verdicts = [_again(s, kind, step_args, was) for kind, step_args, was in trail]
            differs = abs(old.throughput_tps - new.throughput_tps) > 1e-9 * old.throughput_tps
            totals["steps"] += len(verdicts)
            totals["tie"] += verdicts.count("tie")
            totals["DIFFERS"] += verdicts.count("DIFFERS")
            totals["scenarios"] += 1
            totals["final differs"] += differs
            print(f"| {m} | {seed} | {old.throughput_tps:.3f} ({old.runtime_s:.2f}) | {new.throughput_tps:.3f} "
                  f"({new.runtime_s:.2f}){' *' if differs else ''} | {len(verdicts)} | {verdicts.count('tie')} "
                  f"| {verdicts.count('DIFFERS')} |", flush=True)
    print(f"\n{totals['steps']} steps: {totals['tie']} ties, {totals['DIFFERS']} with another value; final throughput "
          f"differs (*) on {totals['final differs']} of {totals['scenarios']} scenarios")


if __name__ == "__main__":
    main()
