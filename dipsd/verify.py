"""``dipsd verify``: every claim of a study report proven again, independently.

A report claims optima (records with status ``optimal``) and upper bounds (``upper_bound_tps``).
Those came from ``exact``, ``certify`` or ``enumerate``, often one starting from another's plan and
bound (exact from certify's), or from a checkpoint that was resumed.  :func:`verify_report` proves
each scenario's optimum once more with nothing from the study: Dinkelbach over the full MILP
(:func:`~dipsd.solvers.exact.solve_exact`) from the simple plan, with no start plan, cutoff or
bound of another method, with the MILP solver asked for (``--solver scip`` for a second solver).
Then, per claim (``R`` the re-proof's plan value, ``U`` its certified bound, ``R* in [R, U]``):

* an optimum ``v``: *verified* when ``R >= v (1 - 1e-9)`` and ``U <= v (1 + 1e-9)`` (the contract's
  tolerance); *refuted* when ``R > v (1 + 1e-9)`` (a better plan exists) or ``U < v (1 - 1e-9)``;
  otherwise *not re-proven* (the re-proof stopped at its limit);
* a bound ``b``: *verified* when ``b >= U`` (so ``b >= R*``), or when ``b >= R`` and the re-proof is
  optimal (``U <= R (1 + 1e-9)``: ``b`` is at or above ``R*`` to the contract's precision); *refuted*
  when ``b < R`` (a plan is above it); otherwise *not re-proven*.

The scenarios come from the workbook the report names (its SHA-256 must match the one recorded).
With ``mps_dir`` the final Dinkelbach MILP of each proven optimum, at ``q = R*``, is written as
MPS: its optimum (objective ``W (U - q S)``, maximized) is ``F(R*) = 0`` up to the solver's
tolerances, which any MILP solver can confirm; a positive optimum would refute ``R*``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from .data.bundled import example_path
from .data.scenario import Scenario
from .data.workbook import LoadedWorkbook, load_workbook
from .errors import InputError
from .solvers.tolerances import OPTIMAL_RTOL

VERIFIED, REFUTED, OPEN = "verified", "refuted", "not re-proven"


@dataclass(frozen=True)
class Verdict:
    """One claim of the report and what the independent re-proof says of it."""

    scenario: str
    method: str
    claim: str  # "optimum" or "bound"
    value_tps: float
    verdict: str  # VERIFIED, REFUTED or OPEN
    detail: str

    def to_json(self) -> dict:
        return {"scenario": self.scenario, "method": self.method, "claim": self.claim, "value_tps": self.value_tps,
                "verdict": self.verdict, "detail": self.detail}


def judge(claim: str, value: float, plan_tps: float | None, bound_tps: float | None) -> tuple[str, str]:
    """The verdict on one claim against a re-proof with plan value ``plan_tps`` and certified bound
    ``bound_tps`` (either may be None); see the module docstring."""
    r, u = plan_tps, bound_tps
    if claim == "optimum":
        if r is not None and r > value * (1 + OPTIMAL_RTOL):
            return REFUTED, f"a plan of {r:.9g} tok/s is better"
        if u is not None and u < value * (1 - OPTIMAL_RTOL):
            return REFUTED, f"the optimum is at most {u:.9g} tok/s"
        if r is not None and u is not None and r >= value * (1 - OPTIMAL_RTOL) and u <= value * (1 + OPTIMAL_RTOL):
            return VERIFIED, f"re-proven optimum {r:.9g} tok/s (bound {u:.9g})"
        return OPEN, f"the re-proof stopped between {_tps(r)} and {_tps(u)} tok/s"
    if r is not None and value < r:
        return REFUTED, f"a plan of {r:.9g} tok/s is above the bound"
    if u is not None and value >= u:
        return VERIFIED, f"at or above the re-proven bound {u:.9g} tok/s on the optimum"
    if r is not None and u is not None and u <= r * (1 + OPTIMAL_RTOL):
        return VERIFIED, f"at or above the re-proven optimum {r:.9g} tok/s (to the re-proof's 1e-9)"
    return OPEN, f"the re-proof stopped between {_tps(r)} and {_tps(u)} tok/s"


def _tps(value: float | None) -> str:
    return "-" if value is None else f"{value:.9g}"


def report_workbook(report: str, workbook: str | None) -> LoadedWorkbook:
    """The workbook whose scenarios the report's study ran: ``workbook`` if given, else the input file
    the Run sheet names, looked for beside the report, here, and among the bundled examples.  Its
    SHA-256 must be the one the report recorded."""
    import dipsd

    run = dipsd.read_report(report)["Run"]
    info = {str(k): str(v) for k, v in zip(run.iloc[:, 0], run.iloc[:, 1])}
    name, digest = info.get("input file", ""), info.get("input sha256", "")
    if workbook is None:
        places = [os.path.join(os.path.dirname(os.path.abspath(report)), name), os.path.abspath(name)]
        if name and os.path.basename(name) == name:
            try:
                places.append(example_path(name))
            except InputError:
                pass
        workbook = next((p for p in places if name and os.path.isfile(p)), None)
        if workbook is None:
            raise InputError(f"{report}: its study read {name!r}, which is neither beside the report nor here; "
                             f"give the workbook: dipsd verify {report} --workbook PATH")
    book = load_workbook(workbook)
    if digest and book.sha256 != digest:
        raise InputError(f"{workbook} is not the workbook of {report} (SHA-256 {book.sha256[:12]}..., the report "
                         f"recorded {digest[:12]}...); give the one its study ran")
    return book


def claims(report: str) -> list[tuple[str, str, str, float]]:
    """``(scenario, method, claim, value)`` for every optimum and bound of the report's Results sheet."""
    import dipsd

    results = dipsd.read_report(report)["Results"]
    out = []
    for row in results.itertuples(index=False):
        if str(row.status) == "optimal" and not _missing(row.throughput_tps):
            out.append((str(row.scenario), str(row.method), "optimum", float(row.throughput_tps)))
        if not _missing(row.upper_bound_tps):
            out.append((str(row.scenario), str(row.method), "bound", float(row.upper_bound_tps)))
    return out


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def verify_report(report: str, workbook: str | None = None, *, time_limit: float = 60.0, solver: str = "highs",
                  mps_dir: str | None = None) -> list[Verdict]:
    """Every claim of ``report`` against an independent re-proof (module docstring), in report order."""
    from .solvers.exact import solve_exact
    from .solvers.milp import solvers as milp_solvers

    milp_solvers.check(solver)
    if not (isinstance(time_limit, int | float) and 0 < time_limit < math.inf):
        raise InputError(f"time_limit: a number of seconds > 0, got {time_limit!r}")
    book = report_workbook(report, workbook)
    scenarios = {s.name: s for s in book.scenarios}
    stated = claims(report)
    unknown = sorted({s for s, *_ in stated if s not in scenarios})
    if unknown:
        raise InputError(f"{report}: scenario {unknown[0]!r} is not in {book.path}; give the workbook its study ran")
    if mps_dir is not None:
        if not os.path.isdir(mps_dir):
            raise InputError(f"--mps {mps_dir!r} is not an existing folder")
        taken = [p for p in (certificate_path(scenarios[s], mps_dir) for s in dict.fromkeys(s for s, *_ in stated))
                 if os.path.lexists(p)]
        if taken:
            raise InputError(f"--mps: {taken[0]} exists; dipsd does not overwrite it (choose another folder)")
    proofs = {}
    with milp_solvers.use(solver):
        for name in dict.fromkeys(s for s, *_ in stated):
            result = solve_exact(scenarios[name], time_limit=time_limit, start_plan=None, known_bound_tps=None)
            proofs[name] = result
            if mps_dir is not None and result.status.value == "optimal" and result.throughput_tps is not None:
                write_certificate(scenarios[name], result.throughput_tps, mps_dir)
    verdicts = []
    for name, method, claim, value in stated:
        proof = proofs[name]
        verdict, detail = judge(claim, value, proof.throughput_tps, proof.upper_bound_tps)
        verdicts.append(Verdict(name, method, claim, value, verdict, f"{detail} (exact from scratch, {solver}, "
                                                                    f"{proof.status.value}, {proof.runtime_s:.1f}s)"))
    return verdicts


def write_certificate(scenario: Scenario, optimum_tps: float, folder: str) -> str:
    """The Dinkelbach MILP ``max W (U - q S)`` of ``scenario`` at ``q = R*`` (tokens/ms) as MPS in ``folder``."""
    from .formulation.milp import build_model

    model, _ = build_model(scenario, q=optimum_tps / 1000.0)
    path = certificate_path(scenario, folder)
    model.write(path, format="mps", io_options={"symbolic_solver_labels": True})
    return path


def certificate_path(scenario: Scenario, folder: str) -> str:
    """``FOLDER/NAME.mps``, the scenario's name made safe for a file name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", scenario.name).strip(".")[:100] or "scenario"
    return os.path.join(folder, f"{safe}.mps")
