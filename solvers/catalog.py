"""Which methods exist, and the one check of method names every front door uses.

Four kinds of method, one calling convention (:class:`~dipsd.solvers.registry.Method`):

* the built-ins of :data:`~dipsd.solvers.registry.METHODS` (DiP-SD, the baselines, certify,
  exact, enumerate);
* functions a user registers: :func:`register_method` (``fn(scenario, time_limit, start)``
  returns a :class:`~dipsd.formulation.plan.Plan`, a :class:`SolveResult` or None);
* functions an installed package declares in the entry-point group ``dipsd.methods``
  (``name = "package.module:function"``), registered on first use of this catalog;
* the plans of a workbook (sheet ``plans``): method ``plan:NAME``, one plan per scenario,
  evaluated in closed form (:func:`run_named_plan`).

What a user's function returns is never trusted: a plan is evaluated in closed form (an
infeasible one is an ``error`` result naming why), a SolveResult is rebuilt from checked parts
and re-checked like a resumed record (:func:`~dipsd.solvers.audit.record_problem`), and a bound,
``optimal`` or ``infeasible`` is kept only from a method registered with ``gives_bound=True``
(``optimal`` only with a bound at its plan's value).  The function gets a copy of the scenario;
what it prints goes to the log; an exception or ``sys.exit`` is an ``error`` result, never a crash.

Studies run user methods in worker processes: a forked worker inherits the registration; a
spawned or Dask worker re-imports the function from its reference ``"module:function"``
(:func:`ensure_method`), so a registered function must be importable by that name (not a
lambda or a function of ``__main__`` there).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.metadata as md
import io
import logging
import math
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import replace

from ..data.plans import PLAN_METHOD_PREFIX, NamedPlan
from ..data.scenario import Scenario
from ..errors import InputError, PlanError, did_you_mean
from ..formulation.evaluate import evaluate
from ..formulation.plan import Plan
from .audit import record_problem
from .deadline import check_work_limit
from .registry import METHODS, Method, Start
from .results import SolveResult, Status
from .tolerances import OPTIMAL_RTOL

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "dipsd.methods"
BUILT_IN = frozenset(METHODS)
_plugins_loaded = False
_entry_points: set[str] = set()
"""Methods registered from installed packages' entry points: listed, run only when named."""


def register_method(name: str, fn: Callable | str, *, starts_from: Iterable[str] = (), gives_bound: bool = False,
                    help: str = "", package: str = "") -> None:
    """Make ``fn`` a method called ``name`` for ``solve``, ``run_study`` and ``dipsd study``.

    ``fn(scenario, time_limit, start)`` gets a :class:`~dipsd.Scenario`, the time limit in
    seconds and a :class:`~dipsd.solvers.registry.Start` (the plan and bound of the first
    method of ``starts_from`` in the run, or None), and returns a :class:`~dipsd.Plan`, a
    :class:`~dipsd.SolveResult` or None (no plan).  ``fn`` may also be given as
    ``"module:function"``.  ``gives_bound=True`` declares that the ``upper_bound_tps`` of its
    results is a proven upper bound on the optimum (it then enters every certified gap);
    otherwise a bound it returns is dropped.  A name of a built-in method, or one starting with
    ``plan:``, is refused.  ``package`` (``"name version"``, set for entry-point plugins) joins the
    method's identity in the checkpoint header: a study is not resumed under a changed method.
    """
    if not isinstance(name, str) or not name.strip() or "," in name or name != name.strip():
        raise InputError(f"method name: non-empty text without commas or surrounding spaces, got {name!r}")
    if name in BUILT_IN or name.startswith(PLAN_METHOD_PREFIX) or name == "all":
        raise InputError(f"method name {name!r} is taken (built-in methods: {', '.join(sorted(BUILT_IN))}; "
                         f"'{PLAN_METHOD_PREFIX}...' names a workbook's plan)")
    starts = tuple(starts_from)
    ref = fn if isinstance(fn, str) else _reference(fn)
    function = _resolve(fn) if isinstance(fn, str) else fn
    if not callable(function):
        raise InputError(f"method {name!r}: {fn!r} is not callable")
    identity = "; ".join(filter(None, [package, code_identity(function)]))
    METHODS[name] = Method(name, help or f"user method {ref or name}", _wrap(name, function, gives_bound), starts,
                           ref=ref, gives_bound=gives_bound, identity=identity)


def code_identity(fn: Callable) -> str:
    """``"module:function, code sha256 ..."``: the function's own name and the digest of its module's
    source file (a change anywhere in it, helpers included, changes the identity), else of the
    function's bytecode and constants."""
    import hashlib
    import inspect

    try:
        path = inspect.getsourcefile(fn)
        with open(path or "", "rb") as fh:
            data = fh.read()
    except (TypeError, OSError):
        code = getattr(fn, "__code__", None)
        data = repr((code.co_code, code.co_consts, code.co_names)).encode() if code is not None else repr(fn).encode()
    name = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', type(fn).__name__)}"
    return f"{name}, code sha256 {hashlib.sha256(data).hexdigest()[:16]}"


def _reference(fn: Callable) -> str | None:
    module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qual:
        return None  # a lambda, a nested function or a script's function: only forked workers have it
    return f"{module}:{qual}"


def _resolve(ref: str) -> Callable:
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise InputError(f"method reference {ref!r}: expected 'module:function'")
    try:
        obj: object = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"method reference {ref!r} cannot be imported: {type(exc).__name__}: {exc}") from None
    if not callable(obj):
        raise InputError(f"method reference {ref!r} is not a function")
    return obj


def _wrap(name: str, fn: Callable, gives_bound: bool) -> Callable[[Scenario, float, Start | None], SolveResult]:
    """``fn`` as a method whose results can be believed (the module docstring): it gets its own copy
    of the scenario (a mutation cannot reach anything else), its prints go to the log (stdout is
    the commands' output), ``sys.exit`` and any exception are an ``error`` result, and what it
    returns is rebuilt from checked parts (:func:`_believable`)."""

    def run(scenario: Scenario, time_limit: float, start: Start | None) -> SolveResult:
        t0 = time.perf_counter()

        def failed(why: str) -> SolveResult:
            return SolveResult(scenario.name, name, Status.ERROR, None, None, None, time.perf_counter() - t0, message=why)

        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                out = fn(copy.deepcopy(scenario), time_limit, start)
        except SystemExit as exc:  # a method that exits ends its own task, not dipsd
            return failed(f"the method called sys.exit({exc.code!r})")
        except Exception as exc:  # a user's method failing is a result, never a crash
            log.debug("%s/%s raised:\n%s", scenario.name, name, traceback.format_exc())
            return failed(f"the method raised {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            if printed.getvalue():
                log.info("%s/%s printed (sent to the log, not stdout): %s", scenario.name, name, printed.getvalue()[:2000])
        runtime = time.perf_counter() - t0
        if out is None:
            return SolveResult(scenario.name, name, Status.NO_PLAN, None, None, None, runtime, message="the method returned no plan")
        if isinstance(out, Plan):
            return _checked_plan(scenario, name, out, runtime, "the method")
        if isinstance(out, SolveResult):
            try:
                return _believable(scenario, name, out, runtime, gives_bound)
            except Exception as exc:  # a result too malformed to record
                return failed(f"the method's result cannot be believed: {type(exc).__name__}: {str(exc)[:300]}")
        return failed(f"the method returned {type(out).__name__}; expected a Plan, a SolveResult or None")

    return run


def _believable(scenario: Scenario, name: str, out: SolveResult, runtime: float, gives_bound: bool) -> SolveResult:
    """A user's :class:`SolveResult` rebuilt from checked parts: its status (claims a method that
    proves nothing may not make are taken back, saying so), its plan valued in closed form, a
    bound only from a method that declares ``gives_bound=True`` (a finite number, not below the
    plan), a whole number of iterations, its message as text; the runtime is measured here.  An
    error result says why."""
    t_fail = SolveResult(scenario.name, name, Status.ERROR, None, None, None, runtime)
    if not isinstance(out.status, Status):
        return replace(t_fail, message=f"the method's status {out.status!r} is not a dipsd Status")
    iterations = out.iterations
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        return replace(t_fail, message=f"the method's iterations {iterations!r} is not a whole number >= 0")
    bound = out.upper_bound_tps if gives_bound else None
    if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float) or math.isnan(bound)):
        return replace(t_fail, message=f"the method's upper_bound_tps {bound!r} is not a number")
    status, notes = out.status, [str(out.message)[:500]] if out.message else []
    evaluation = None
    if out.plan is not None:
        checked = _checked_plan(scenario, name, out.plan, runtime, "the method")
        if checked.status is Status.ERROR:
            return checked
        evaluation = checked.evaluation
    elif status.has_plan:
        return replace(t_fail, message=f"the method says {status.value} but returned no plan")
    if status is Status.INFEASIBLE and not gives_bound:
        status = Status.NO_PLAN
        notes.append("it said infeasible; only a method that proves its claims (gives_bound=True) may: recorded as no plan")
    if status is Status.OPTIMAL and not (bound is not None and evaluation is not None
                                         and bound <= evaluation.throughput_tps * (1 + OPTIMAL_RTOL)):
        status = Status.FEASIBLE
        notes.append("it said optimal, which only a method with gives_bound=True and a bound at its plan's value may "
                     "claim: recorded as feasible")
    result = SolveResult(scenario.name, name, status, out.plan, evaluation, None if bound is None else float(bound), runtime,
                         iterations=iterations, message="; ".join(notes))
    # the values it states (if any) must be its plan's closed-form values, and its bound not below them
    stated = result if out.evaluation is None or out.plan is None else replace(result, evaluation=out.evaluation)
    why = record_problem(stated.record(scenario), scenario)
    if why is not None:
        return replace(t_fail, message=f"the method's result cannot be believed: {why}")
    return result


def _checked_plan(scenario: Scenario, name: str, plan: Plan, runtime: float, who: str) -> SolveResult:
    try:
        ev = evaluate(scenario, plan)
    except (PlanError, TypeError, ValueError, IndexError) as exc:
        return SolveResult(scenario.name, name, Status.ERROR, None, None, None, runtime,
                           message=f"{who} returned a malformed plan: {exc}")
    if not ev.feasible:
        return SolveResult(scenario.name, name, Status.ERROR, None, None, None, runtime,
                           message=f"{who} returned an infeasible plan: {ev.reason}")
    return SolveResult(scenario.name, name, Status.FEASIBLE, plan, ev, None, runtime, message="plan evaluated in closed form")


def run_named_plan(scenario: Scenario, named: NamedPlan) -> SolveResult:
    """A workbook's plan as a result: ``feasible`` with its closed-form value, or ``infeasible``
    naming the plan, the batch, its Excel rows and the reason."""
    t0 = time.perf_counter()
    try:
        plan = Plan.from_names(scenario, named.batches, named.length_of())
        ev = evaluate(scenario, plan)
    except PlanError as exc:  # the loader checks the same: only a plan built in Python gets here
        return SolveResult(scenario.name, named.method, Status.ERROR, None, None, None, time.perf_counter() - t0,
                           message=f"plan {named.name!r}: {exc}")
    if not ev.feasible:
        where = [f"batch {n} is sheet 'plans' rows {_rows(rows)}"
                 for n, (batch, rows) in enumerate(zip(ev.batches, named.rows), start=1) if not batch.memory_ok]
        detail = f" ({'; '.join(where)})" if where else ""
        return SolveResult(scenario.name, named.method, Status.INFEASIBLE, None, None, None, time.perf_counter() - t0,
                           message=f"plan {named.name!r} is infeasible: {ev.reason}{detail}")
    return SolveResult(scenario.name, named.method, Status.FEASIBLE, plan, ev, None, time.perf_counter() - t0,
                       message=f"plan {named.name!r} from the workbook, evaluated in closed form")


def _rows(rows: tuple[int, ...]) -> str:
    return ", ".join(map(str, rows[:8])) + (" ..." if len(rows) > 8 else "")


def load_plugins() -> None:
    """Register the methods installed packages declare in the ``dipsd.methods`` entry-point group
    (once per process); a plugin that fails to load is skipped with a warning."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in METHODS:
            continue
        try:
            fn = ep.load()
            spec = getattr(fn, "dipsd_method", {})  # optional: {"starts_from": [...], "gives_bound": bool, "help": "..."}
            dist = getattr(ep, "dist", None)
            _entry_points.add(ep.name)
            register_method(ep.name, ep.value if ":" in ep.value else fn, starts_from=spec.get("starts_from", ()),
                            gives_bound=bool(spec.get("gives_bound", False)),
                            help=spec.get("help", "") or f"plugin {ep.value}",
                            package="" if dist is None else f"package {dist.name} {dist.version}")
        except Exception as exc:  # a broken plugin must not take dipsd down
            log.warning("method plugin %r (%s) not loaded: %s: %s", ep.name, ep.value, type(exc).__name__, exc)


def ensure_method(name: str, ref: str | None, gives_bound: bool = False, starts_from: tuple[str, ...] = ()) -> None:
    """In a worker: make sure ``name`` is registered (plugins, else re-import ``ref``)."""
    if name in METHODS or name.startswith(PLAN_METHOD_PREFIX):
        return
    load_plugins()
    if name not in METHODS and ref:
        register_method(name, ref, gives_bound=gives_bound, starts_from=starts_from)


def default_methods() -> list[str]:
    """Every method except ``enumerate`` (brute force, tiny instances only): built-ins, then the
    methods registered in this process (``register_method``, ``--plugin``).  Methods of installed
    packages (entry points) are listed by ``--help`` and run only when named: installing a package
    never changes what a default study runs."""
    load_plugins()
    return [m for m in METHODS if m != "enumerate" and m not in _entry_points]


def installed_methods() -> list[str]:
    """The methods of installed packages (entry points): run only when named."""
    load_plugins()
    return [m for m in METHODS if m in _entry_points]


def load_plugin_file(path: str) -> list[str]:
    """Import the Python file ``path`` (``--plugin``): its calls of :func:`register_method` register its
    methods, and its functions are also ``STEM:function`` for ``--methods``.  Its folder joins
    ``sys.path``, so forked workers (and spawned ones started after this) find it by that name.  The
    names it registered, in order; :class:`InputError` naming the file and the error otherwise."""
    import importlib.util
    import os
    import sys

    if not (isinstance(path, str) and path.endswith(".py") and os.path.isfile(path)):
        raise InputError(f"--plugin {str(path)[:200]!r}: a Python file (.py) that exists")
    stem = os.path.splitext(os.path.basename(path))[0]
    if not stem.isidentifier():
        raise InputError(f"--plugin {path!r}: the file name must be a Python module name (letters, digits, _)")
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")]))
    before = set(METHODS)
    try:
        if stem in sys.modules and getattr(sys.modules[stem], "__file__", None) != os.path.abspath(path):
            raise InputError(f"--plugin {path!r}: a module named {stem!r} is already imported from elsewhere; rename the file")
        spec = importlib.util.spec_from_file_location(stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[stem] = module
        spec.loader.exec_module(module)
    except InputError:
        raise
    except BaseException as exc:  # SyntaxError, ImportError, SystemExit ...: the file's problem, said in one line
        sys.modules.pop(stem, None)
        raise InputError(f"--plugin {path!r} cannot be loaded: {type(exc).__name__}: {str(exc)[:300]}") from None
    return [m for m in METHODS if m not in before]


def check_methods(names: Iterable[str], *, plans: Iterable[str] = (), what: str = "methods",
                  refused: Callable[[str], str | None] | None = None) -> list[str]:
    """``names`` validated (known, each once) in the order given; ``plans`` are the ``plan:NAME``
    methods of the workbook, ``refused(name)`` says why a workbook's plan cannot be used.
    :class:`InputError` with a "did you mean" otherwise."""
    load_plugins()
    names = [n.strip() if isinstance(n, str) else n for n in names]
    known = list(METHODS) + list(plans)
    if not names:
        raise InputError(f"{what}: no method given; choose from {', '.join(known)}")
    seen: set[str] = set()
    for n in names:
        if isinstance(n, str) and n not in known and ":" in n and not n.startswith(PLAN_METHOD_PREFIX):
            register_method(n, n)  # 'module:function' named on the command line: imported (or a one-line error)
            known.append(n)
        why = refused(n) if refused is not None and isinstance(n, str) and n not in known else None
        if why is not None:
            raise InputError(f"{what}: {n} cannot be run: {why}")
        if not isinstance(n, str) or n not in known:
            shown = repr(n)[:62]
            hint = did_you_mean(n, known) if isinstance(n, str) else ""
            plan_hint = "" if not isinstance(n, str) or not n.startswith(PLAN_METHOD_PREFIX) else \
                " (plan:NAME methods come from the workbook's sheet 'plans')"
            raise InputError(f"{what}: unknown method {shown}{hint}{plan_hint}; choose from {', '.join(known)}")
        if n in seen:
            raise InputError(f"{what}: method {n!r} is listed twice")
        seen.add(n)
    return names


def solve(scenario: Scenario, method: str = "certify", *, time_limit: float = 60.0,
          start_plan: Plan | None = None, solver: str = "highs", work_limit: int | None = None) -> SolveResult | dict[str, SolveResult]:
    """Run one method on one scenario (the Python twin of ``dipsd solve``).

    ``method="all"`` runs every default method (:func:`default_methods`) in order, each started
    from the result it declares (certify from DiP-SD, exact from certify), and returns their
    results by name; otherwise the one :class:`SolveResult`.  ``solver`` is the MILP solver of
    exact and DiP-SD's steps (``highs``, ``scip``, ``gurobi``); ``work_limit`` certify's deterministic
    limit in work units (``--work-limit``).  An unknown name is an
    :class:`~dipsd.errors.InputError` with a "did you mean"."""
    from .milp import solvers as milp_solvers

    check_work_limit(work_limit)
    milp_solvers.check(solver)
    with milp_solvers.use(solver):
        return _solve(scenario, method, time_limit, start_plan, work_limit)


def _solve(scenario: Scenario, method: str, time_limit: float, start_plan: Plan | None,
           work_limit: int | None = None) -> SolveResult | dict[str, SolveResult]:
    from .registry import run_method, start_from

    if method == "all":
        methods = default_methods()
        done: dict[str, SolveResult] = {}
        for m in methods:
            source = METHODS[m].start_source(methods)
            earlier = done.get(source) if source is not None else None
            done[m] = run_method(m, scenario, time_limit=time_limit, start=start_from(earlier), work_limit=work_limit)
        return done
    check_methods([method], what="method")
    return run_method(method, scenario, time_limit=time_limit, start_plan=start_plan, work_limit=work_limit)
