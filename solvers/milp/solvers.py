"""The MILP solvers dipsd can hand its models to, through ``pyomo.contrib.solver``, in one table.

``exact`` and the MILP steps of DiP-SD (and so dipsd-fixed and sd-nobatch) solve their models
through :class:`~dipsd.solvers.milp.session.MilpSession`, which asks :func:`current` which solver to
use.  ``highs`` (the default) runs on Pyomo's persistent HiGHS interface (only Params change
between Dinkelbach iterations, and a MIP start goes through :mod:`~dipsd.solvers.milp.highs_adapter`);
``scip`` runs on Pyomo's direct interface (``scip_direct``: the model is handed over at each
solve, with the Params' current values) and ``gurobi`` on ``gurobi_persistent`` (it updates
the Params' coefficients itself; ``gurobi_direct`` needs scipy); the MIP start is the integer
variables' values (``warmstart_discrete_vars``).  Pyomo's *persistent* SCIP interface
turns mutable Params into SCIP variables, which would make ``scale * (U - q S)`` quadratic, so
it is not used.  ``certify`` keeps highspy: its persistent column master has no Pyomo
equivalent.

Every solver gets the same contract (docs/model.md 6a): MIP gap 0, feasibility, integrality and
optimality tolerances 1e-9 in its own option names (:data:`SOLVERS`), the dual bound plus the
slack of :mod:`~dipsd.solvers.tolerances`, every plan re-valued in closed form.  Which solver a
process uses is set once (:func:`use`: the command line, a study's worker from its task), like
HiGHS's thread count.
"""

from __future__ import annotations

import importlib.metadata as md
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ...errors import InputError
from ..tolerances import HIGHS_FEASIBILITY, HIGHS_OPTIONS, HIGHS_SLACK, OBJECTIVE_SCALE


@dataclass(frozen=True)
class MilpSolver:
    """One solver: its ``pyomo.contrib.solver`` name, the package that brings it (and the extra
    that installs it), and the options that set its tolerances to the contract's."""

    name: str
    pyomo_name: str
    package: str
    extra: str | None
    options: dict = field(default_factory=dict)
    persistent: bool = False
    warmstart: bool = True
    """Whether a MIP start is handed over (Pyomo's SCIP interface makes a partial solution of
    *every* integer variable's value, which fails on variables without one: SCIP starts cold;
    the start plan is still the incumbent dipsd keeps, so results are the same)."""
    used_for: str = ""
    title: str = ""
    """The solver's own name, for messages."""


SOLVERS: dict[str, MilpSolver] = {
    "highs": MilpSolver("highs", "highs", "highspy", None, dict(HIGHS_OPTIONS), persistent=True,
                        used_for="default; exact and DiP-SD's steps on one persistent model; certify always", title="HiGHS"),
    "scip": MilpSolver("scip", "scip_direct", "pyscipopt", "scip",
                       {"numerics/feastol": HIGHS_FEASIBILITY, "numerics/dualfeastol": HIGHS_FEASIBILITY}, warmstart=False,
                       used_for="exact and DiP-SD's steps (the solver of the paper's third-party code)", title="SCIP"),
    "gurobi": MilpSolver("gurobi", "gurobi_persistent", "gurobipy", "gurobi",
                         {"FeasibilityTol": HIGHS_FEASIBILITY, "IntFeasTol": HIGHS_FEASIBILITY,
                          "OptimalityTol": HIGHS_FEASIBILITY},
                         used_for="exact and DiP-SD's steps (pip's gurobipy carries a size-limited licence)", title="Gurobi"),
}
"""Every solver by its ``--solver`` name."""

_current: dict[str, Any] = {"name": "highs", "threads": 1}


def current() -> MilpSolver:
    """The solver this process uses."""
    return SOLVERS[_current["name"]]


def current_threads() -> int:
    """The threads each MILP solve of this process uses (1 in studies: processes run in parallel)."""
    return _current["threads"]


@contextmanager
def use(name: str, threads: int = 1) -> Iterator[MilpSolver]:
    """Use solver ``name`` with ``threads`` threads inside the block.  Its availability is checked
    once, before any work (:func:`check`; the command line, the study service, :func:`dipsd.solve`),
    not at every task.  HiGHS keeps one thread pool per process: a process should not change its
    thread count."""
    solver = SOLVERS.get(name) or check(name)  # an unknown name: check's message
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= available_cores():
        raise InputError(f"threads: a whole number from 1 to {available_cores()} (the cores this process may use), got {threads!r}")
    before = dict(_current)
    _current.update(name=solver.name, threads=int(threads))
    try:
        yield solver
    finally:
        _current.update(before)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform says, else the count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def version(name: str) -> str:
    """The installed version of the solver's package, or ``"not installed"``."""
    try:
        return md.version(SOLVERS[name].package)
    except md.PackageNotFoundError:
        return "not installed"


def check(name: str) -> MilpSolver:
    """The solver called ``name`` if it can run here; otherwise :class:`InputError` in one line
    naming what to install (exit code 2 on the command line), before any work."""
    import pyomo.environ  # noqa: F401  (registers the contrib solvers: without it the factory knows none)
    from pyomo.contrib.solver.common.factory import SolverFactory

    from ...errors import did_you_mean

    if name not in SOLVERS:
        raise InputError(f"--solver: unknown solver {str(name)[:40]!r}{did_you_mean(str(name), SOLVERS)}; "
                         f"choose from {', '.join(SOLVERS)}")
    solver = SOLVERS[name]
    if name == "gurobi":  # Pyomo 6.10 warns on every release of a licence environment it never took: noise
        logging.getLogger("pyomo.contrib.solver.solvers.gurobi.gurobi_direct_base").setLevel(logging.ERROR)
    try:
        available = SolverFactory(solver.pyomo_name).available()
    except Exception:  # a broken installation counts as missing
        available = None
    if not available:
        install = f"pip install -e '.[{solver.extra}]'" if solver.extra else f"pip install {solver.package}"
        raise InputError(f"--solver {name}: {solver.package} is not installed or has no licence here "
                         f"({available}); install it with {install}")
    return solver


def describe(name: str) -> str:
    """The solver, its version and options, as the Run sheet and the checkpoint record them."""
    solver = SOLVERS[name]
    options = " ".join(f"{k}={v:g}" for k, v in solver.options.items())
    return f"{solver.name} ({solver.package} {version(name)}) mip gap 0, {options}"


def package_version(name: str) -> str:
    """An installed distribution's version, or ``"not installed"``."""
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def solver_options(solver: str = "highs") -> str:
    """The options every MILP solve of a study sets, as the checkpoint and the Run sheet record them."""
    return SOLVER_OPTIONS if solver == "highs" else f"{describe(solver)} (certify: {SOLVER_OPTIONS})"


SOLVER_OPTIONS = ("HiGHS mip_rel_gap=0 mip_abs_gap=0 threads=1 per worker process, "
                  + " ".join(f"{k}={v:g}" for k, v in HIGHS_OPTIONS.items())
                  + f", objective scaled to {OBJECTIVE_SCALE:g} / (q S_min), dual bounds + {HIGHS_SLACK:g} (scaled units)")
"""The HiGHS options every MILP solve sets (recorded in the checkpoint header and the Run sheet)."""
