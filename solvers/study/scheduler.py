"""The study loop: submit what is ready, watch what runs, record what finishes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ...data.text import plural
from ...data.workbook import LoadedWorkbook
from ..audit import audit
from ..results import Record
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
              finish: Callable[[StudyOutcome], None] | None = None, solver: str = "highs") -> StudyOutcome:
    """Run every (scenario, method) task; see the module docstring.

    ``solver`` is the MILP solver of exact and DiP-SD's steps (:mod:`.milp_solvers`, checked by the
    caller).  ``on_done(record, done, total)`` is called as each task finishes; ``on_tick`` at least once a
    second with what is running (:class:`Running`).  ``finish`` (for example: write the report)
    runs while the checkpoint is still locked.  Each task start and finish is logged at INFO.
    """
    from ..catalog import METHODS

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
                queue.append(with_start(t, ckpt.records.get((t.scenario.name, src)) if src else None))
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
                    late = now - started[future] > task.time_limit + grace(task.time_limit)
                    if future not in finished_now and task.key not in hung and late:
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
                        record = crash_record(task, f"no answer after {seconds:.0f} s (time limit {task.time_limit:g} s "
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
                        record = crash_record(task, f"its worker process died {plural(tries[task.key], 'time')} (killed by the "
                                                     f"out-of-memory killer or a signal?); --resume runs it again")
                    ckpt.add(record)
                    done += 1
                    log.info("%s × %s: %s%s in %.2fs", record.scenario, record.method, record.status.value,
                             "" if record.throughput_tps is None else f", {record.throughput_tps:.6g} tok/s", record.runtime_s)
                    if on_done:
                        on_done(record, done, total)
                    released = waiting.pop(task.key, [])
                    if released:
                        queue[:0] = [with_start(t, record) for t in released]
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
