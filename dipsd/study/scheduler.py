"""The study loop: submit what is ready, watch what runs, record what finishes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..data.text import plural
from ..data.workbook import LoadedWorkbook
from ..solvers.audit import audit
from ..solvers.results import Record
from .backends import _DaskBackend, _LocalBackend
from .checkpoint import Checkpoint, study_header
from .tasks import Task, crash_record, plan_tasks, with_start

log = logging.getLogger(__name__)

MAX_TRIES = 3
"""A task whose worker process dies is run at most this many times, then recorded as an error."""


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


@dataclass
class StudyOutcome:
    """Records in workbook order; ``interrupted`` when Ctrl-C stopped the study."""

    records: list[Record]
    interrupted: bool = False
    problems: list[str] = field(default_factory=list)
    """What the closed-form audit of the final records found (:func:`dipsd.solvers.audit.audit`): empty when sound."""
    started: float = field(default_factory=time.time)
    finished: float = 0.0


def run_study(book: LoadedWorkbook, methods: list[str], *, time_limit: float, checkpoint_path: str,
              workers: int = 1, scheduler: str | None = None, resume: bool = False, fresh: bool = False,
              on_done: Callable[[Record, int, int], None] | None = None,
              on_tick: Callable[[Running], None] | None = None,
              finish: Callable[[StudyOutcome], None] | None = None, solver: str = "highs",
              work_limit: int | None = None) -> StudyOutcome:
    """Run every (scenario, method) task; see the package docstring.

    ``solver`` is the MILP solver of exact and DiP-SD's steps (:mod:`..milp_solvers`, checked by
    the caller); ``work_limit`` goes to the methods that honour one.  ``on_done(record, done,
    total)`` is called as each task finishes; ``on_tick`` at
    least once a second with what is running (:class:`Running`).  ``finish`` (for example: write
    the report) runs while the checkpoint is still locked.  Each task start and finish is logged
    at INFO.
    """
    outcome = StudyOutcome(records=[])
    ckpt = Checkpoint(checkpoint_path, study_header(book, methods, time_limit, solver, work_limit), resume=resume, fresh=fresh,
                      scenarios={s.name: s for s in book.scenarios})
    loop = None
    try:
        loop = _Loop(book, methods, plan_tasks(book, methods, time_limit, solver, work_limit), ckpt, workers, scheduler,
                     on_done, on_tick)
        try:
            loop.run()
        except KeyboardInterrupt:
            outcome.interrupted = True
            loop.cancel()
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
        if loop is not None:
            loop.close()
        ckpt.close()
    return outcome


class _Loop:
    """The loop of one study: a queue of ready tasks, tasks waiting for the record they start
    from, the tasks in flight (``pending``: future -> task), and the bookkeeping for worker
    deaths (``suspects`` run alone, at most :data:`MAX_TRIES` times) and the watchdog (``hung``
    tasks are recorded as errors, ``collateral`` ones run again)."""

    def __init__(self, book: LoadedWorkbook, methods: list[str], planned: list[Task], ckpt: Checkpoint, workers: int,
                 scheduler: str | None, on_done: Callable | None, on_tick: Callable | None):
        from ..solvers.catalog import METHODS

        self.ckpt, self.on_done, self.on_tick = ckpt, on_done, on_tick
        tasks = [t for t in planned if t.key not in ckpt.records]
        self.total = len(tasks) + sum(1 for k in ckpt.records if k[1] in methods)
        self.done = self.total - len(tasks)
        # a method that starts from another waits for that one's record of the same scenario
        source = {m: METHODS[m].start_source(methods) if m in METHODS else None for m in methods}
        self.waiting: dict[tuple[str, str], list[Task]] = {}
        self.queue: list[Task] = []
        # a chain first (a method others start from, or one that starts from another: DiP-SD unlocks
        # certify, certify exact), large scenarios first, so the long solves start early and the
        # short tasks fill the gaps at the end
        chained = {m for m in methods if source[m] is not None} | {source[m] for m in methods if source[m] is not None}
        tasks.sort(key=lambda t: (t.method not in chained, -t.scenario.num_users))
        for t in tasks:
            src = source[t.method]
            if src is not None and (t.scenario.name, src) not in ckpt.records:
                self.waiting.setdefault((t.scenario.name, src), []).append(t)
            else:
                self.queue.append(with_start(t, ckpt.records.get((t.scenario.name, src)) if src else None))
        self.slots = max(1, min(workers, len(tasks)))
        self.backend: _DaskBackend | _LocalBackend | None = None
        if tasks:
            self.backend = _DaskBackend(scheduler, self.slots) if scheduler else _LocalBackend(self.slots)
        self.pending: dict = {}
        self.started: dict = {}  # future -> when it was submitted (a free slot runs it at once)
        self.alone: dict = {}  # future -> whether its task ran with no other task in flight
        self.tries: dict[tuple[str, str], int] = {}
        self.suspects: set[tuple[str, str]] = set()  # in flight when a worker died: run alone next time
        self.hung: dict[tuple[str, str], float] = {}  # tasks the watchdog stopped, with their seconds
        self.collateral: set[tuple[str, str]] = set()  # tasks in flight in a pool the watchdog killed

    def _live(self) -> _DaskBackend | _LocalBackend:
        """The backend (there is one whenever a task is queued)."""
        assert self.backend is not None, "no backend: the study has no tasks"
        return self.backend

    def run(self) -> None:
        while self.queue or self.pending or self.waiting:
            self.submit_ready()
            if not self.pending:  # the records waited for are missing (should not happen): run without a start
                for held in self.waiting.values():
                    self.queue.extend(held)
                self.waiting.clear()
                continue
            finished = set(self._live().wait(self.pending, TICK_S))
            self.watch(finished)
            self.tick()
            for future in finished:
                self.collect(future)

    def submit_ready(self) -> None:
        """Fill the free slots from the queue; a suspect runs alone, so that a death is its own."""
        while self.queue and len(self.pending) < self.slots:
            if any(self.alone.get(f) for f in self.pending):
                break  # a suspect runs alone until it ends: a death beside it would be blamed on it
            if self.queue[0].key in self.suspects and self.pending:
                break
            task = self.queue.pop(0)
            future = self._live().submit(task)
            self.pending[future] = task
            self.started[future] = time.monotonic()
            log.info("%s × %s: started (time limit %gs)", task.scenario.name, task.method, task.time_limit)
            self.alone[future] = task.key in self.suspects
            if self.alone[future]:
                break

    def watch(self, finished: set) -> None:
        """The watchdog: a task with no answer long after its time limit (:func:`grace`) is stopped."""
        now = time.monotonic()
        for future, task in self.pending.items():
            late = now - self.started[future] > task.time_limit + grace(task.time_limit)
            if future in finished or task.key in self.hung or not late:
                continue
            self.hung[task.key] = now - self.started[future]
            log.warning("%s/%s: no answer after %.0f s (time limit %g s + grace %.0f s); stopping it", *task.key,
                        self.hung[task.key], task.time_limit, grace(task.time_limit))
            self._live().stop(future)
            if isinstance(self.backend, _DaskBackend):
                finished.add(future)
            else:  # the pool's other tasks die with it and run again
                self.collateral.update(t.key for f, t in self.pending.items() if f is not future)

    def tick(self) -> None:
        if self.on_tick is None:
            return
        now = time.monotonic()
        later = list(self.queue) + [t for held in self.waiting.values() for t in held]
        running = tuple((t.scenario.name, t.method, now - self.started[f]) for f, t in self.pending.items())
        left = (sum(t.time_limit for t in later)
                + sum(max(0.0, t.time_limit - (now - self.started[f])) for f, t in self.pending.items())) / self.slots
        self.on_tick(Running(running, self.done, self.total, self.slots, left))

    def collect(self, future: Any) -> None:
        """Record a finished task (or run it again after a worker's death), and release the
        tasks that start from it."""
        task = self.pending.pop(future)
        self.started.pop(future, None)
        if task.key not in self.hung and self._live().cancelled(future):  # its pool died before it ran
            self.alone.pop(future, None)
            self.queue.insert(0, task)
            return
        record = self._live().result(future, task)
        ran_alone = self.alone.pop(future, False)
        if record is None and task.key in self.hung:
            seconds = self.hung.pop(task.key)
            record = crash_record(task, f"no answer after {seconds:.0f} s (time limit {task.time_limit:g} s + grace "
                                        f"{grace(task.time_limit):.0f} s): stopped; --resume runs it again", seconds)
        elif record is None and task.key in self.collateral:  # stopped with a hung one: not its fault
            self.collateral.discard(task.key)
            self.queue.insert(0, task)
            return
        if record is None:  # a worker died (OOM killer, kill -9): run it again, a few times
            # every task in flight sees the pool break; only a death while running alone counts
            if ran_alone:
                self.tries[task.key] = self.tries.get(task.key, 0) + 1
            self.suspects.add(task.key)
            if self.tries.get(task.key, 0) < MAX_TRIES:
                log.warning("%s/%s: a worker process died; running the task again", *task.key)
                self.queue.insert(0, task)
                return
            record = crash_record(task, f"its worker process died {plural(self.tries[task.key], 'time')} (killed by the "
                                        f"out-of-memory killer or a signal?); --resume runs it again")
        self.ckpt.add(record)
        self.done += 1
        log.info("%s × %s: %s%s in %.2fs", record.scenario, record.method, record.status.value,
                 "" if record.throughput_tps is None else f", {record.throughput_tps:.6g} tok/s", record.runtime_s)
        if self.on_done:
            self.on_done(record, self.done, self.total)
        released = self.waiting.pop(task.key, [])
        if released:
            self.queue[:0] = [with_start(t, record) for t in released]

    def cancel(self) -> None:
        """Ctrl-C or SIGTERM: stop the workers now (what they were doing is lost, nothing else)."""
        if self.backend is not None:
            self.backend.close(cancel=True)
        self.backend = None

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
        self.backend = None
