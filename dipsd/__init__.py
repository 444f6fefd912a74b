"""dipsd: batching, pipelining and draft lengths for distributed pipelined speculative decoding.

Public API::

    from dipsd import load_workbook, evaluate, Plan, Scenario, User
"""

from .data.scenario import DraftModel, Scenario, TargetModel, User, paper_scenario
from .data.workbook import LoadedWorkbook, load_workbook
from .errors import DipsdError, InputError, PlanError, WorkbookError
from .formulation.evaluate import Evaluation, ad_batch_throughput_tps, ad_throughput_tps, evaluate
from .formulation.plan import Plan

__version__ = "0.1.0"

__all__ = [
    "DraftModel", "Scenario", "TargetModel", "User", "paper_scenario", "LoadedWorkbook", "load_workbook",
    "DipsdError", "InputError", "PlanError", "WorkbookError", "Evaluation", "evaluate", "Plan",
    "ad_throughput_tps", "ad_batch_throughput_tps", "__version__",
]
