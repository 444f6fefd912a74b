"""What the report's Run sheet records about a study: inputs, versions, settings, times."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from typing import Protocol

from ..data.workbook import LoadedWorkbook
from ..solvers import certify as certify_mod
from ..solvers import dipsd as dipsd_mod
from ..solvers import exact as exact_mod
from ..solvers import steps as steps_mod
from ..solvers import tolerances
from ..solvers.milp import solvers as milp_solvers
from ..solvers.milp.solvers import package_version, solver_options
from .stats import HIT_TOL


class Ran(Protocol):
    """What the Run sheet reads of a study's outcome (the runner's ``StudyOutcome``)."""

    started: float
    finished: float
    problems: list[str]
    interrupted: bool


def run_metadata(book: LoadedWorkbook, methods: list[str], outcome: Ran, *, time_limit: float, workers: int, scheduler: str | None,
                 command_line: str | None = None, solver: str = "highs", work_limit: int | None = None) -> dict:
    """The Run sheet of a study's report."""
    stamp = lambda t: datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="seconds")  # noqa: E731
    return {
        "command line": command_line if command_line is not None else " ".join(["dipsd"] + sys.argv[1:]),
        "input file": os.path.basename(book.path),
        "input sha256": book.sha256,
        "scenarios": len(book.scenarios),
        "methods": ", ".join(methods),
        "dipsd": package_version("dipsd"), "pyomo": package_version("pyomo"), "highspy (HiGHS)": package_version("highspy"),
        "pandas": package_version("pandas"), "openpyxl": package_version("openpyxl"), "numpy": package_version("numpy"),
        "python": platform.python_version(),
        "time limit per task s": time_limit,
        "work limit per task": (f"{work_limit} units (certify: master LP solves with their pricing rounds and budget-IP "
                                f"nodes; results the same on any machine unless a time limit stopped them)")
                               if work_limit is not None else "none (time limits only)",
        "MILP solver": f"{solver} ({milp_solvers.SOLVERS[solver].package} {milp_solvers.version(solver)}): exact and "
                       f"DiP-SD's step MILPs (where the x-step's search stops at its node budget); certify always uses HiGHS",
        "solver options": solver_options(solver),
        "Dinkelbach": f"improvement tolerance {tolerances.IMPROVE_RTOL:g} (relative), closed-form agreement {tolerances.AGREE_RTOL:g}, "
                      f"at most {exact_mod.MAX_ITERATIONS} iterations; certified bound q + max(F_ub, 0) / S_min with "
                      f"F_ub = HiGHS's dual bound + {tolerances.HIGHS_SLACK:g} (scaled units); optimal only when that bound "
                      f"is within {tolerances.OPTIMAL_RTOL:g} (relative) of the plan",
        "certify": f"branch-and-price over span boxes (columns by exact pricing, branching on a pair of users or a "
                   f"length range); boxes narrower than "
                   f"{certify_mod.MIN_WIDTH:g} (relative) are not split; optimal when the plan is within "
                   f"{tolerances.OPTIMAL_RTOL:g} of the bound (raised by {certify_mod.SAFETY:g} against rounding)",
        "DiP-SD": f"x-step by branch and bound (node budgets {steps_mod.SEARCH_BUDGET[0]:,} and "
                  f"{steps_mod.SEARCH_BUDGET[1]:,}, then the step MILP), l-step by an exact search over span caps; "
                  f"stops when lengths repeat and R improves < {dipsd_mod.REL_TOL:g} (relative), "
                  f"at most {dipsd_mod.MAX_ROUNDS} rounds per N",
        "starts": "certify starts from DiP-SD's plan, exact from certify's plan and bound (else DiP-SD's), when those "
                  "methods are in the study (their time is not in the later method's runtime); exact alone runs DiP-SD "
                  "then certify first (time included)",
        "hit tolerance": f"gap <= {HIT_TOL:g} (relative)",
        "workers": workers, "scheduler": scheduler or "local processes",
        "machine cores": os.cpu_count(), "machine": platform.platform(),
        "started (UTC)": stamp(outcome.started), "finished (UTC)": stamp(outcome.finished),
        "consistency check": ("FAILED: " + "; ".join(outcome.problems)) if outcome.problems else
            "passed: every plan re-evaluated in closed form, no bound or optimum below another method's plan",
        "interrupted": "yes (Ctrl-C): the report holds the finished tasks" if outcome.interrupted else "no",
    }
