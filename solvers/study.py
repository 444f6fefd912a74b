"""Studies: every scenario of a workbook times a list of methods, in parallel, resumable.

Each (scenario, method) is an independent task carrying plain data (the frozen scenario,
the method's name, the time limit, optionally a start plan as names).  Workers build
their models locally, so nothing unpicklable crosses a process boundary and a remote Dask
worker needs no access to the workbook.  The exact method of a scenario is submitted once that scenario's
DiP-SD result is in, with DiP-SD's plan as its start.

Every finished task is appended at once to a JSON-lines checkpoint (flushed and
fsynced), so a study stopped by Ctrl-C or ``kill -9`` loses at most the tasks in flight;
``resume=True`` skips tasks already in the checkpoint.  A task that fails becomes a
record with status ``error`` and its message; the others go on.

Backends: local worker processes (forked where possible, one HiGHS thread each; HiGHS
keeps one thread pool per process, so a process never changes its thread count), or a Dask distributed cluster
(``scheduler="tcp://HOST:PORT"``, or ``"local"`` for a LocalCluster); Dask is optional.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from ..data.scenario import Scenario
from ..data.workbook import LoadedWorkbook
from ..errors import InputError
from ..formulation.plan import Plan

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Task:
    """One unit of work; plain data only (a frozen :class:`Scenario` of Python numbers)."""

    scenario: Scenario
    method: str
    time_limit: float
    start: dict | None = None  # a finished record of the method this one starts from (plain JSON data)

    @property
    def key(self) -> tuple[str, str]:
        return (self.scenario.name, self.method)


def run_task(task: Task) -> dict:
    """Run one task in a worker; always returns a JSON-able record, never raises."""
    from .registry import Start, run_method

    t0 = time.perf_counter()
    try:
        start = None
        if task.start is not None:
            plan = None
            if task.start.get("batches") and task.start.get("draft_lengths"):
                plan = Plan.from_names(task.scenario, task.start["batches"], task.start["draft_lengths"])
            start = Start(plan, task.start.get("upper_bound_tps"), task.start.get("method", ""))
        result = run_method(task.method, task.scenario, time_limit=task.time_limit, start=start)
        record = result.to_json(task.scenario)
    except Exception as exc:  # a task failure must never take the study down
        log.exception("task %s/%s failed", task.scenario.name, task.method)
        record = _crash_record(task, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
    return record


# ----------------------------------------------------------------------------- checkpoint
class Checkpoint:
    """JSON-lines file: a header line, then one record per finished task."""

    def __init__(self, path: str, header: dict, resume: bool):
        self.path = path
        self.records: dict[tuple[str, str], dict] = {}
        if resume and os.path.exists(path):
            self._read(header)
            self._fh = open(path, "a", encoding="utf-8")
        else:
            self._fh = open(path, "w", encoding="utf-8")
            self._write({"checkpoint": CHECKPOINT_VERSION, **header})

    def _read(self, header: dict) -> None:
        with open(self.path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        complete = lines[:-1] if lines and lines[-1] else lines  # a half-written last line is dropped
        if lines and lines[-1]:
            log.warning("%s: ignoring a half-written last line", self.path)
        for i, line in enumerate(line for line in complete if line.strip()):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                raise InputError(f"{self.path}: line {i + 1} is not JSON; delete the checkpoint or run without --resume") from None
            if i == 0:
                if data.get("scenarios_sha256") != header["scenarios_sha256"]:
                    raise InputError(f"{self.path}: checkpoint was made from other scenarios; run without --resume")
                continue
            self.records[(data["scenario"], data["method"])] = data
        # rewrite cleanly so that appends never follow a half line
        with open(self.path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"checkpoint": CHECKPOINT_VERSION, **header}) + "\n")
            for record in self.records.values():
                fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _write(self, data: dict) -> None:
        self._fh.write(json.dumps(data) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def add(self, record: dict) -> None:
        self.records[(record["scenario"], record["method"])] = record
        self._write(record)

    def close(self) -> None:
        self._fh.close()


# ----------------------------------------------------------------------------- backends
class _LocalBackend:
    def __init__(self, workers: int):
        self.workers = workers
        self.pool = self._new_pool()

    def _new_pool(self):
        # fork where the platform has it: workers inherit the imported modules (the parent
        # never starts HiGHS, so no solver threads are forked); spawn elsewhere
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context(method),
                                      initializer=_ignore_sigint)

    def submit(self, task: Task):
        return self.pool.submit(run_task, task)

    def wait(self, futures):
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return done

    def result(self, future, task: Task) -> dict:
        try:
            return future.result()
        except cf.process.BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()
            return _crash_record(task, "worker process died")
        except Exception as exc:
            return _crash_record(task, f"{type(exc).__name__}: {exc}")

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

    def submit(self, task: Task):
        return self.client.submit(run_task, task, pure=False)

    def wait(self, futures):
        from distributed import wait
        return wait(list(futures), return_when="FIRST_COMPLETED").done

    def result(self, future, task: Task) -> dict:
        try:
            return future.result()
        except Exception as exc:
            return _crash_record(task, f"{type(exc).__name__}: {exc}")

    def close(self, cancel: bool = False):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops them and still writes the report."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _crash_record(task: Task, message: str, runtime_s: float = 0.0) -> dict:
    """The record of a task that failed (same keys as a result's JSON)."""
    return {"scenario": task.scenario.name, "method": task.method, "status": "error", "throughput_tps": None,
            "upper_bound_tps": None, "num_batches": None, "batches": None, "draft_lengths": None, "span_ms": None,
            "expected_tokens": None, "iterations": 0, "runtime_s": runtime_s, "message": message}


# ----------------------------------------------------------------------------- driver
@dataclass
class StudyOutcome:
    """Records in workbook order; ``interrupted`` when Ctrl-C stopped the study."""

    records: list[dict]
    interrupted: bool = False
    started: float = field(default_factory=time.time)
    finished: float = 0.0


def plan_tasks(book: LoadedWorkbook, methods: list[str], time_limit: float) -> list[Task]:
    return [Task(s, m, time_limit) for s in book.scenarios for m in methods]


def run_study(book: LoadedWorkbook, methods: list[str], *, time_limit: float, checkpoint_path: str,
              workers: int = 1, scheduler: str | None = None, resume: bool = False,
              on_done: Callable[[dict, int, int], None] | None = None) -> StudyOutcome:
    """Run every (scenario, method) task; see the module docstring."""
    outcome = StudyOutcome(records=[])
    header = {"workbook": os.path.basename(book.path), "scenarios_sha256": book.fingerprint,
              "methods": methods, "time_limit": time_limit}
    ckpt = Checkpoint(checkpoint_path, header, resume)
    tasks = [t for t in plan_tasks(book, methods, time_limit) if t.key not in ckpt.records]
    total = len(tasks) + sum(1 for k in ckpt.records if k[1] in methods)
    from .registry import METHODS

    # a method that starts from another waits for that one's record of the same scenario
    source = {m: METHODS[m].start_source(methods) for m in methods}
    waiting: dict[tuple[str, str], list[Task]] = {}
    queue: list[Task] = []
    # longest first: DiP-SD (which unlocks the others) and large scenarios lead the queue, so the
    # long solves start early and the short tasks fill the gaps at the end
    rank = {"dipsd": 0, "certify": 0, "exact": 0, "dipsd-fixed": 1, "sd-nobatch": 2}
    order_key = lambda t: (rank.get(t.method, 3), -t.scenario.num_users)  # noqa: E731
    tasks.sort(key=order_key)
    for t in tasks:
        src = source[t.method]
        if src is not None and (t.scenario.name, src) not in ckpt.records:
            waiting.setdefault((t.scenario.name, src), []).append(t)
        else:
            queue.append(_with_start(t, ckpt.records.get((t.scenario.name, src)) if src else None))
    done = total - len(tasks)
    backend = _DaskBackend(scheduler, workers) if scheduler else _LocalBackend(workers)
    pending: dict = {}
    try:
        while queue or pending or waiting:
            while queue and len(pending) < 2 * workers:
                task = queue.pop(0)
                pending[backend.submit(task)] = task
            if not pending:  # the records waited for are missing (should not happen): run without a start
                for held in waiting.values():
                    queue.extend(held)
                waiting.clear()
                continue
            for future in backend.wait(pending):
                task = pending.pop(future)
                record = backend.result(future, task)
                ckpt.add(record)
                done += 1
                if on_done:
                    on_done(record, done, total)
                released = waiting.pop(task.key, [])
                if released:
                    queue[:0] = [_with_start(t, record) for t in released]
    except KeyboardInterrupt:
        outcome.interrupted = True
        backend.close(cancel=True)
        backend = None
    finally:
        if backend is not None:
            backend.close()
        ckpt.close()
    order = {(s.name, m): i for i, (s, m) in enumerate((s, m) for s in book.scenarios for m in methods)}
    outcome.records = sorted((r for k, r in ckpt.records.items() if k in order), key=lambda r: order[(r["scenario"], r["method"])])
    outcome.finished = time.time()
    return outcome


def _with_start(task: Task, record: dict | None) -> Task:
    """The task with the finished record it starts from (if that record has a plan or a bound)."""
    if record and (record.get("batches") or record.get("upper_bound_tps") is not None):
        return Task(task.scenario, task.method, task.time_limit, start=record)
    return task
