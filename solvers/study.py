"""Studies: every scenario of a workbook times a list of methods, in parallel, resumable.

Each (scenario, method) is an independent task carrying plain data (the frozen scenario,
the method's name, the time limit, optionally a start plan as names).  Workers build
their models locally, so nothing unpicklable crosses a process boundary and a remote Dask
worker needs no access to the workbook.  A method that starts from another (its
``Method.starts_from``) is submitted once that method's record of the scenario is in, with it as its start.

Every finished task is a :class:`~dipsd.solvers.results.Record`, appended at once to a JSON-lines checkpoint (flushed and
fsynced), so a study stopped by Ctrl-C or ``kill -9`` loses at most the tasks in flight;
``resume=True`` skips tasks already in the checkpoint.  A task that fails becomes a
record with status ``error`` and its message; the others go on.

Backends: local worker processes (forked where possible, one HiGHS thread each; HiGHS
keeps one thread pool per process, so a process never changes its thread count), or a Dask distributed cluster
(``scheduler="tcp://HOST:PORT"``, or ``"local"`` for a LocalCluster); Dask is optional.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib.metadata as md
import json
import logging
import multiprocessing
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Callable

from ..data.scenario import Scenario
from ..data.text import plural
from ..data.plans import NamedPlan, plan_name
from ..data.workbook import LoadedWorkbook
from ..errors import InputError, output_failure
from ..formulation.plan import Plan
from ..outputs import atomic_write, set_aside
from . import milp_solvers
from .audit import audit, conflicts, record_problem
from .results import Record, Status
from .tolerances import HIGHS_OPTIONS, HIGHS_SLACK, OBJECTIVE_SCALE

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Task:
    """One unit of work; plain data only (a frozen :class:`Scenario` of Python numbers)."""

    scenario: Scenario
    method: str
    time_limit: float
    start: Record | None = None  # the finished record of the method this one starts from
    plan: NamedPlan | None = None  # method plan:NAME: the workbook's plan for this scenario
    ref: str | None = None  # a user's method: "module:function", for a worker that lacks it
    gives_bound: bool = False
    starts_from: tuple[str, ...] = ()
    solver: str = "highs"  # the MILP solver of exact and DiP-SD's steps (milp_solvers)

    @property
    def key(self) -> tuple[str, str]:
        return (self.scenario.name, self.method)


def run_task(task: Task) -> Record:
    """Run one task in a worker; always returns a record, never raises."""
    from .catalog import ensure_method, run_named_plan

    t0 = time.perf_counter()
    try:
        if task.plan is not None:
            return run_named_plan(task.scenario, task.plan).record(task.scenario)
        ensure_method(task.method, task.ref, task.gives_bound, task.starts_from)
        return _run_with_start(task)
    except Exception as exc:  # a task failure must never take the study down
        log.exception("task %s/%s failed", task.scenario.name, task.method)
        return _crash_record(task, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)


def _run_with_start(task: Task) -> Record:
    """The task's method on its scenario with the task's MILP solver, from its start (re-checked)."""
    from .registry import Start, run_method

    with milp_solvers.use(task.solver):
        start = None
        why = None if task.start is None else record_problem(task.start, task.scenario)
        if why is not None:
            log.warning("%s/%s: the %s result it starts from is ignored: %s", task.scenario.name, task.method,
                        task.start.method, why)
        elif task.start is not None:
            plan = None
            if task.start.has_plan:
                plan = Plan.from_names(task.scenario, task.start.batches, dict(task.start.draft_lengths))
            start = Start(plan, task.start.upper_bound_tps, task.start.method)
        result = run_method(task.method, task.scenario, time_limit=task.time_limit, start=start)
        return result.record(task.scenario)


# ----------------------------------------------------------------------------- checkpoint
class Checkpoint:
    """JSON-lines file: a header line, then one record per finished task.

    Opening one takes an exclusive lock (``PATH.lock``, held until :meth:`close`): a second
    study on the same report is refused at once.  An existing checkpoint is never emptied:
    without ``resume`` the study is refused (``fresh`` moves the old file aside first); with
    ``resume`` its header must match this run's in every field that changes results, every
    line must be a record, and the file is rewritten atomically (temporary file, fsync,
    rename) before new records are appended.  Records with status ``error`` are not kept on
    resume, so their tasks run again; nor is a record that fails the re-check of
    :mod:`dipsd.solvers.audit` against its scenario (its plan re-evaluated, its bound and any
    claim of optimality held against every plan of the scenario): a warning names the file,
    the line and why, and the task runs again.
    """

    def __init__(self, path: str, header: dict, *, resume: bool, fresh: bool = False,
                 scenarios: dict[str, Scenario] | None = None):
        self.path = path
        self.scenarios = scenarios or {}
        self.records: dict[tuple[str, str], Record] = {}
        self._fh = None
        self._lock = _Lock(path + ".lock")
        try:
            held = self._count(path) if os.path.exists(path) else 0
            if held and not resume:  # a checkpoint with no finished task holds nothing to lose
                if not fresh:
                    raise InputError(
                        f"{path} holds {plural(held, 'finished task')} of an earlier study; "
                        f"run with --resume to continue it, or --fresh to move it aside and start again")
                moved = set_aside(path)
                log.warning("moved the earlier checkpoint to %s", moved)
            if resume and os.path.exists(path):
                header = self._read(header)
            with atomic_write(path) as fh:
                fh.write(json.dumps({"checkpoint": CHECKPOINT_VERSION, **header}) + "\n")
                for record in self.records.values():
                    fh.write(json.dumps(record.to_json()) + "\n")
            self._fh = open(path, "a", encoding="utf-8")
        except BaseException:
            self._lock.release()
            raise

    @staticmethod
    def _count(path: str) -> int:
        """Lines after the header (finished tasks, as far as a quick look can tell)."""
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return max(0, sum(1 for line in fh if line.strip()) - 1)
        except OSError:
            return 0

    def _read(self, header: dict) -> dict:
        """Load the records (see the class docstring); the header to write back (with the history
        of the settings the study ran under)."""
        with open(self.path, "rb") as fh:
            raw = fh.read().split(b"\n")
        lines = []
        for number, chunk in enumerate(raw, start=1):
            try:
                lines.append(chunk.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise InputError(f"{self.path}, line {number}: not UTF-8 text (byte {exc.start + 1}); not a checkpoint "
                                 f"line; move the file aside (--fresh) to start again") from None
        if lines and lines[-1]:  # a line cut short by a kill: that task runs again
            log.warning("%s: the last line is incomplete (a task cut short); its task runs again", self.path)
            lines = lines[:-1]
        numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
        if not numbered:
            return header
        line_of: dict[tuple[str, str], int] = {}
        longer = False
        for number, line in numbered:
            try:
                data = json.loads(line)
            except (ValueError, RecursionError):  # malformed, too deeply nested, or an integer beyond the digit limit
                data = None
            first = number == numbered[0][0]
            if first:
                if not (isinstance(data, dict) and "checkpoint" in data):
                    raise InputError(f"{self.path}, line {number}: not a checkpoint header; "
                                     f"move the file aside (--fresh) to start again")
                self._compare(data, header)
                new_limit, old_limit = header.get("time_limit"), data.get("time_limit")
                longer = all(isinstance(v, (int, float)) for v in (new_limit, old_limit)) and new_limit > old_limit
                history = list(data.get("history", [])) + [{k: data.get(k) for k in ("methods", "time_limit")}]
                if data.get("methods") != header.get("methods") or longer:
                    header = {**header, "history": history}
                elif "history" in data:
                    header = {**header, "history": data["history"]}
                continue
            try:
                record = Record.from_json(data)
            except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
                raise InputError(f"{self.path}, line {number}: not a task record ({exc}); "
                                 f"move the file aside (--fresh) to start again") from None
            if longer and record.status in (Status.TIME_LIMIT, Status.NO_PLAN):
                continue  # stopped by the old time limit: runs again with the longer one
            if record.status is not Status.ERROR:
                self.records[(record.scenario, record.method)] = record
                line_of[(record.scenario, record.method)] = number
        self._audit(line_of)
        return header

    def _audit(self, line_of: dict[tuple[str, str], int]) -> None:
        """Drop the records that do not survive the closed-form re-check (module :mod:`.audit`)."""
        def drop(key, why):
            log.warning("%s, line %d: %s/%s dropped, %s; the task runs again", self.path, line_of[key], key[0], key[1], why)
            del self.records[key]

        for key, record in list(self.records.items()):
            scenario = self.scenarios.get(record.scenario)
            why = record_problem(record, scenario) if scenario is not None else None
            if why is not None:
                drop(key, why)
        by_scenario: dict[str, list[Record]] = {}
        for record in self.records.values():
            by_scenario.setdefault(record.scenario, []).append(record)
        for records in by_scenario.values():
            for record, why in conflicts(records):
                drop((record.scenario, record.method), why)

    def _compare(self, old: dict, new: dict) -> None:
        """Refuse to resume under settings that change results, naming each difference.  Two
        changes are allowed: more methods (the old ones' records are kept, the new ones run) and
        a longer time limit (records stopped by the old limit, ``time_limit`` or ``no_plan``, run
        again; finished and proven ones are kept)."""
        def allowed(key, was, now) -> bool:
            if key == "methods":
                return isinstance(was, list) and set(was) <= set(now)
            if key == "time_limit":
                return isinstance(was, (int, float)) and now >= was
            return False

        keys = [k for k in HEADER_KEYS_THAT_MATTER if k in new or k in old]
        diffs = [f"{key}: checkpoint {old.get(key)!r}, this run {new.get(key)!r}" for key in keys
                 if old.get(key) != new.get(key) and not allowed(key, old.get(key), new.get(key))]
        if diffs:
            raise InputError(f"{self.path}: cannot resume, the study changed ({'; '.join(diffs)}); "
                             f"run with the same settings, or with --fresh to start again")

    def add(self, record: Record) -> None:
        self.records[(record.scenario, record.method)] = record
        try:
            self._fh.write(json.dumps(record.to_json()) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:  # disk full, file too large: stop, saying so (the lines before are intact)
            raise output_failure(self.path, exc) from None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._lock.release()


HEADER_KEYS_THAT_MATTER = ("scenarios_sha256", "methods", "time_limit", "dipsd", "pyomo", "highspy", "solver_options",
                           "solver", "solver_version")
"""Header fields that must match for ``--resume`` (they change the results); ``methods`` may grow
and ``time_limit`` rise (:meth:`Checkpoint._compare`)."""


class _Lock:
    """An exclusive, non-blocking lock on a file beside the checkpoint (POSIX ``flock``)."""

    def __init__(self, path: str):
        self.path, self.fd = path, None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        try:  # never through a symbolic link; a folder, FIFO or device there is refused, not waited on
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), 0o644)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise IsADirectoryError(path)
        except OSError as exc:
            raise InputError(f"the lock file {path} cannot be created as a regular file ({type(exc).__name__}: "
                             f"{exc.strerror or 'not a regular file'}); move it aside or choose another --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InputError(f"another study is writing to this report right now ({path} is locked); "
                             f"wait for it, or choose another --out") from None
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.remove(self.path)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


# ----------------------------------------------------------------------------- backends
class _LocalBackend:
    def __init__(self, workers: int):
        self.workers = workers
        self.pool = self._new_pool()
        self.pool_of: dict = {}

    def _new_pool(self):
        # fork where the platform has it: workers inherit the imported modules (the parent
        # never starts HiGHS, so no solver threads are forked); spawn elsewhere
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context(method),
                                      initializer=_worker_init, initargs=(os.getpid(),))

    def submit(self, task: Task):
        future = self.pool.submit(run_task, task)
        self.pool_of[future] = self.pool
        return future

    def wait(self, futures, timeout: float):
        done, _ = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return done

    def result(self, future, task: Task) -> Record | None:
        """The task's record, or None when its worker process died (the task may run again)."""
        pool = self.pool_of.pop(future, None)
        try:
            return future.result()
        except cf.process.BrokenProcessPool:
            if pool is self.pool:  # the first sign of this pool's death: start a new one
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = self._new_pool()
            return None
        except Exception as exc:
            return _crash_record(task, f"{type(exc).__name__}: {exc}")

    def stop(self, future) -> None:
        """Stop a task that gives no answer: its pool's workers are killed (a process pool cannot
        kill one task), so every task in flight ends as a dead worker and runs again; the hung
        one is recorded as such by the caller."""
        pool = self.pool_of.get(future, self.pool)
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()

    def close(self, cancel: bool = False):
        if cancel:  # Ctrl-C: stop the workers now; what they were doing is lost, nothing else
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


class _DaskBackend:
    def __init__(self, scheduler: str, workers: int):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InputError("--scheduler needs Dask: pip install 'dipsd[cluster]'") from None
        self.cluster = None
        if scheduler == "local":
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(scheduler, timeout="10s")
            except OSError as exc:
                raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        self.workers = workers
        self.stopped = set()

    stopped: set

    def submit(self, task: Task):
        return self.client.submit(run_task, task, pure=False)

    def wait(self, futures, timeout: float):
        from distributed import wait
        try:
            return wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED").done
        except TimeoutError:  # distributed's wait raises on a timeout (a subclass of TimeoutError)
            return set()

    def result(self, future, task: Task) -> Record | None:
        if future in self.stopped:
            return None
        try:
            return future.result()
        except Exception as exc:
            return _crash_record(task, f"{type(exc).__name__}: {exc}")

    def stop(self, future) -> None:
        """Give up on a task that gives no answer (Dask cannot kill a running task; its worker
        goes on until the cluster closes): the caller records it."""
        self.stopped.add(future)
        future.cancel()

    def close(self, cancel: bool = False):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def grace(time_limit: float) -> float:
    """How long past its time limit a task may run before the watchdog stops it: 60 s plus half
    the limit (methods stop at their limit but may finish the step they are in: a MILP build, a
    last LP)."""
    return 60.0 + 0.5 * time_limit


TICK_S = 1.0
"""The study loop wakes at least this often (seconds) to report what is running."""


@dataclass(frozen=True)
class Running:
    """What a study is doing, for a progress display: ``tasks`` in flight as (scenario, method,
    seconds since start), ``done`` of ``total`` finished, ``slots`` in parallel, and
    ``left_at_most_s``, the time the rest takes if every task used its whole time limit
    (remaining limits of the running tasks plus the limits of the others, over the slots)."""

    tasks: tuple[tuple[str, str, float], ...]
    done: int
    total: int
    slots: int
    left_at_most_s: float


def _worker_init(parent: int) -> None:
    """Leave Ctrl-C to the parent (it stops the workers and still writes the report), and die
    with the parent however it dies: on Linux the kernel's parent-death signal, elsewhere (and
    as a fallback) a watchdog thread that notices the parent is gone within a second."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's SIGTERM handler is the parent's
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):  # not Linux
        pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCHDOG_S)
        os._exit(1)

    threading.Thread(target=watch, name="dipsd-parent-watchdog", daemon=True).start()


WATCHDOG_S = 1.0
MAX_TRIES = 3
"""A task whose worker process dies is run at most this many times, then recorded as an error."""


def _crash_record(task: Task, message: str, runtime_s: float = 0.0) -> Record:
    """The record of a task that failed."""
    return Record.failed(task.scenario.name, task.method, message, runtime_s)


# ----------------------------------------------------------------------------- driver
@dataclass
class StudyOutcome:
    """Records in workbook order; ``interrupted`` when Ctrl-C stopped the study."""

    records: list[Record]
    interrupted: bool = False
    problems: list[str] = field(default_factory=list)
    """What the closed-form audit of the final records found (:func:`dipsd.solvers.audit.audit`): empty when sound."""
    started: float = field(default_factory=time.time)
    finished: float = 0.0


def plan_tasks(book: LoadedWorkbook, methods: list[str], time_limit: float, solver: str = "highs") -> list[Task]:
    """One task per scenario and method; a ``plan:NAME`` method only where the scenario has that plan."""
    from .catalog import METHODS

    tasks = []
    for s in book.scenarios:
        plans = book.plans_of(s.name)
        for m in methods:
            if plan_name(m) is not None:
                if m in plans:
                    tasks.append(Task(s, m, time_limit, plan=plans[m]))
                continue
            spec = METHODS[m]
            tasks.append(Task(s, m, time_limit, ref=spec.ref, gives_bound=spec.gives_bound, starts_from=spec.starts_from,
                              solver=solver))
    return tasks


def package_version(name: str) -> str:
    """An installed distribution's version, or ``"not installed"``."""
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def study_header(book: LoadedWorkbook, methods: list[str], time_limit: float, solver: str = "highs") -> dict:
    """What the checkpoint records about a study: everything that changes its results (the MILP
    solver, its version and options included; a header without ``solver`` is HiGHS's)."""
    header = {"workbook": os.path.basename(book.path), "scenarios_sha256": book.fingerprint, "methods": list(methods),
              "time_limit": time_limit, "dipsd": package_version("dipsd"), "pyomo": package_version("pyomo"),
              "highspy": package_version("highspy"), "solver_options": solver_options(solver)}
    if solver != "highs":
        header.update(solver=solver, solver_version=milp_solvers.version(solver))
    return header


def solver_options(solver: str = "highs") -> str:
    """The options every MILP solve of a study sets, as the checkpoint and the Run sheet record them."""
    return SOLVER_OPTIONS if solver == "highs" else f"{milp_solvers.describe(solver)} (certify: {SOLVER_OPTIONS})"


SOLVER_OPTIONS = ("HiGHS mip_rel_gap=0 mip_abs_gap=0 threads=1 per worker process, "
                  + " ".join(f"{k}={v:g}" for k, v in HIGHS_OPTIONS.items())
                  + f", objective scaled to {OBJECTIVE_SCALE:g} / (q S_min), dual bounds + {HIGHS_SLACK:g} (scaled units)")
"""The HiGHS options every MILP solve sets (recorded in the checkpoint header and the Run sheet)."""


def run_study(book: LoadedWorkbook, methods: list[str], *, time_limit: float, checkpoint_path: str,
              workers: int = 1, scheduler: str | None = None, resume: bool = False, fresh: bool = False,
              on_done: Callable[[Record, int, int], None] | None = None,
              on_tick: Callable[["Running"], None] | None = None,
              finish: Callable[[StudyOutcome], None] | None = None, solver: str = "highs") -> StudyOutcome:
    """Run every (scenario, method) task; see the module docstring.

    ``solver`` is the MILP solver of exact and DiP-SD's steps (:mod:`.milp_solvers`, checked by the
    caller).  ``on_done(record, done, total)`` is called as each task finishes; ``on_tick`` at least once a
    second with what is running (:class:`Running`).  ``finish`` (for example: write the report)
    runs while the checkpoint is still locked.  Each task start and finish is logged at INFO.
    """
    from .catalog import METHODS

    outcome = StudyOutcome(records=[])
    ckpt = Checkpoint(checkpoint_path, study_header(book, methods, time_limit, solver), resume=resume, fresh=fresh,
                      scenarios={s.name: s for s in book.scenarios})
    backend = None
    try:
        tasks = [t for t in plan_tasks(book, methods, time_limit, solver) if t.key not in ckpt.records]
        total = len(tasks) + sum(1 for k in ckpt.records if k[1] in methods)
        # a method that starts from another waits for that one's record of the same scenario
        source = {m: METHODS[m].start_source(methods) if m in METHODS else None for m in methods}
        waiting: dict[tuple[str, str], list[Task]] = {}
        queue: list[Task] = []
        # a chain first (a method others start from, or one that starts from another: DiP-SD unlocks
        # certify, certify exact), large scenarios first, so the long solves start early and the
        # short tasks fill the gaps at the end
        chained = {m for m in methods if source[m] is not None} | {source[m] for m in methods if source[m] is not None}
        tasks.sort(key=lambda t: (t.method not in chained, -t.scenario.num_users))
        for t in tasks:
            src = source[t.method]
            if src is not None and (t.scenario.name, src) not in ckpt.records:
                waiting.setdefault((t.scenario.name, src), []).append(t)
            else:
                queue.append(_with_start(t, ckpt.records.get((t.scenario.name, src)) if src else None))
        done = total - len(tasks)
        slots = max(1, min(workers, len(tasks)))
        tries: dict[tuple[str, str], int] = {}
        pending: dict = {}
        if tasks:
            backend = _DaskBackend(scheduler, slots) if scheduler else _LocalBackend(slots)
        try:
            alone: dict = {}  # future -> whether its task ran with no other task in flight
            suspects: set[tuple[str, str]] = set()  # in flight when a worker died: run alone next time
            started: dict = {}  # future -> when it was submitted (a free slot runs it at once)
            hung: dict[tuple[str, str], float] = {}  # tasks the watchdog stopped, with their seconds
            collateral: set[tuple[str, str]] = set()  # tasks in flight in a pool the watchdog killed
            while queue or pending or waiting:
                while queue and len(pending) < slots:
                    if queue[0].key in suspects and pending:
                        break  # a suspect runs alone, so that a death is its own
                    task = queue.pop(0)
                    future = backend.submit(task)
                    pending[future] = task
                    started[future] = time.monotonic()
                    log.info("%s × %s: started (time limit %gs)", task.scenario.name, task.method, task.time_limit)
                    alone[future] = task.key in suspects
                    if alone[future]:
                        break
                if not pending:  # the records waited for are missing (should not happen): run without a start
                    for held in waiting.values():
                        queue.extend(held)
                    waiting.clear()
                    continue
                finished_now = set(backend.wait(pending, TICK_S))
                now = time.monotonic()
                for future, task in pending.items():  # the watchdog: no answer long after the time limit
                    if future not in finished_now and task.key not in hung and now - started[future] > task.time_limit + grace(task.time_limit):
                        hung[task.key] = now - started[future]
                        log.warning("%s/%s: no answer after %.0f s (time limit %g s + grace %.0f s); stopping it", *task.key,
                                    hung[task.key], task.time_limit, grace(task.time_limit))
                        backend.stop(future)
                        if isinstance(backend, _DaskBackend):
                            finished_now.add(future)
                        else:  # the pool's other tasks die with it and run again
                            collateral.update(t.key for f, t in pending.items() if f is not future)
                if on_tick is not None:
                    now = time.monotonic()
                    later = [t for t in queue] + [t for held in waiting.values() for t in held]
                    on_tick(Running(tuple((t.scenario.name, t.method, now - started[f]) for f, t in pending.items()),
                                    done, total, slots,
                                    (sum(t.time_limit for t in later)
                                     + sum(max(0.0, t.time_limit - (now - started[f])) for f, t in pending.items())) / slots))
                for future in finished_now:
                    task = pending.pop(future)
                    started.pop(future, None)
                    record = backend.result(future, task)
                    ran_alone = alone.pop(future, False)
                    if record is None and task.key in hung:
                        seconds = hung.pop(task.key)
                        record = _crash_record(task, f"no answer after {seconds:.0f} s (time limit {task.time_limit:g} s "
                                                     f"+ grace {grace(task.time_limit):.0f} s): stopped; --resume runs it "
                                                     f"again", seconds)
                    elif record is None and task.key in collateral:  # stopped with a hung one: not its fault
                        collateral.discard(task.key)
                        queue.insert(0, task)
                        continue
                    if record is None:  # a worker died (OOM killer, kill -9): run it again, a few times
                        # every task in flight sees the pool break; only a death while running alone counts
                        if ran_alone:
                            tries[task.key] = tries.get(task.key, 0) + 1
                        suspects.add(task.key)
                        if tries.get(task.key, 0) < MAX_TRIES:
                            log.warning("%s/%s: a worker process died; running the task again", *task.key)
                            queue.insert(0, task)
                            continue
                        record = _crash_record(task, f"its worker process died {plural(tries[task.key], 'time')} (killed by the "
                                                     f"out-of-memory killer or a signal?); --resume runs it again")
                    ckpt.add(record)
                    done += 1
                    log.info("%s × %s: %s%s in %.2fs", record.scenario, record.method, record.status.value,
                             "" if record.throughput_tps is None else f", {record.throughput_tps:.6g} tok/s", record.runtime_s)
                    if on_done:
                        on_done(record, done, total)
                    released = waiting.pop(task.key, [])
                    if released:
                        queue[:0] = [_with_start(t, record) for t in released]
        except KeyboardInterrupt:
            outcome.interrupted = True
            if backend is not None:
                backend.close(cancel=True)
            backend = None
        order = {(s.name, m): i for i, (s, m) in enumerate((s, m) for s in book.scenarios for m in methods)}
        outcome.records = sorted((r for k, r in ckpt.records.items() if k in order),
                                 key=lambda r: order[(r.scenario, r.method)])
        outcome.finished = time.time()
        outcome.problems = audit(outcome.records, {s.name: s for s in book.scenarios})
        for line in outcome.problems:
            log.error("consistency check: %s", line)
        if finish is not None:
            finish(outcome)
    finally:
        if backend is not None:
            backend.close()
        ckpt.close()
    return outcome


def _with_start(task: Task, record: Record | None) -> Task:
    """The task with the finished record it starts from (if that record has a plan or a bound)."""
    if record is not None and (record.has_plan or record.upper_bound_tps is not None):
        return Task(task.scenario, task.method, task.time_limit, start=record)
    return task
