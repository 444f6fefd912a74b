"""dipsd: batching, pipelining and draft lengths for distributed pipelined speculative decoding.

Public API::

    from dipsd import load_workbook, evaluate, Plan, Scenario, User
    from dipsd import run_study, read_report, results_frame, example_path, solve

``solve(scenario, method)`` runs one method (``dipsd``, ``certify``, ``exact``, ...) and returns
its :class:`SolveResult`; ``run_study`` runs many and returns a tidy pandas DataFrame.
"""

from typing import Any

from .data.bundled import example_path
from .data.scenario import DraftModel, Scenario, TargetModel, User, paper_scenario
from .data.workbook import LoadedWorkbook, load_workbook
from .errors import DipsdError, InputError, PlanError, WorkbookError
from .formulation.evaluate import Evaluation, ad_batch_throughput_tps, ad_throughput_tps, evaluate
from .formulation.plan import Plan

__version__ = "0.15.0"

__all__ = [
    "DraftModel", "Scenario", "TargetModel", "User", "paper_scenario", "LoadedWorkbook", "load_workbook",
    "DipsdError", "InputError", "PlanError", "WorkbookError", "Evaluation", "evaluate", "Plan",
    "ad_throughput_tps", "ad_batch_throughput_tps", "example_path", "run_study", "read_report", "results_frame",
    "solve", "SolveResult", "Status", "register_method", "NamedPlan", "__version__",
]

_LAZY = {
    "run_study": ("dipsd.api", "run_study"),
    "read_report": ("dipsd.reports.frames", "read_report"),
    "results_frame": ("dipsd.reports.frames", "results_frame"),
    "solve": ("dipsd.solvers.catalog", "solve"),
    "register_method": ("dipsd.solvers.catalog", "register_method"),
    "NamedPlan": ("dipsd.data.plans", "NamedPlan"),
    "SolveResult": ("dipsd.solvers.results", "SolveResult"),
    "Status": ("dipsd.solvers.results", "Status"),
}


def __dir__() -> list[str]:
    """``dir(dipsd)`` lists the public API, the lazily loaded names included."""
    return sorted(set(__all__) | {n for n in globals() if not n.startswith("_")})


def __getattr__(name: str) -> Any:
    """Solvers and pandas load on first use, so that ``import dipsd`` stays light."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'dipsd' has no attribute {name!r}")
