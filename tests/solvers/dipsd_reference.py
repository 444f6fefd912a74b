"""Reference results of DiP-SD and the methods that share its steps, recorded before the
step models were rebuilt on the shared rows of :mod:`dipsd.formulation.milp` (issue 12).

``python -m tests.solvers.dipsd_reference`` rewrites ``data/dipsd_reference.json`` from the
code as it is; it was run once at commit b8a872a (DiP-SD on its own step models) and must
not be re-run to make a failing comparison pass: a changed throughput is either a bug or a
tie between equally good step solutions, and the test says which.
"""

from __future__ import annotations

import json
from pathlib import Path

from dipsd.data.bundled import example_path
from dipsd.data.generate import generate
from dipsd.data.workbook import load_workbook
from dipsd.formulation.plan import Plan

PATH = Path(__file__).parent / "data" / "dipsd_reference.json"
METHODS = ("dipsd", "dipsd-fixed", "sd-nobatch")
TIME_LIMIT = 120.0


def instances():
    """``(key, scenario)``: the bundled examples' scenarios and seeded heterogeneous ones (M = 7..10)."""
    for name in ("paper.xlsx", "heterogeneous.xlsx"):
        for s in load_workbook(example_path(name)).scenarios:
            yield f"{name}/{s.name}", s
    for seed in range(100, 103):
        for s in generate([7, 8, 9, 10], 1, seed=seed):
            yield f"seed{seed}/{s.name}", s


def record(result, x_steps) -> dict:
    plan: Plan | None = result.plan
    return {
        "status": result.status.value,
        "throughput_tps": result.throughput_tps,
        "batches": None if plan is None else [list(b) for b in plan.batches],
        "lengths": None if plan is None else list(plan.lengths),
        "x_steps": x_steps,
    }


def run(method: str, scenario):
    """``run_method`` that also returns every x-step's outcome: ``[N, lengths, batches, span_ms]``
    (batches and span None when the step found no assignment)."""
    import dipsd.solvers.dipsd as D
    from dipsd.solvers.registry import run_method

    steps, inner = [], D.x_step

    def spy(scenario, tables, lengths, num_batches, clock, *args, **kwargs):
        ev = inner(scenario, tables, lengths, num_batches, clock, *args, **kwargs)
        steps.append([num_batches, list(lengths), None if ev is None else [list(b) for b in ev.plan.batches],
                      None if ev is None else ev.span_ms])
        return ev

    D.x_step = spy
    try:
        return run_method(method, scenario, time_limit=TIME_LIMIT), steps
    finally:
        D.x_step = inner


def main() -> None:
    out = {}
    for key, s in instances():
        out[key] = {m: record(*run(m, s)) for m in METHODS}
        print(key, {m: round(v["throughput_tps"] or 0, 6) for m, v in out[key].items()}, flush=True)
    PATH.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
