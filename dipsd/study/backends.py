"""Where a study's tasks run: local worker processes (forked where possible, one HiGHS thread
each; HiGHS keeps one thread pool per process, so a process never changes its thread count), or
a Dask distributed cluster (``scheduler="tcp://HOST:PORT"``, or ``"local"`` for a LocalCluster;
Dask is optional).  Workers die with the study however it dies."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import time
from collections.abc import Iterable
from typing import Any

from ..errors import InputError
from ..solvers.results import Record
from .tasks import Task, crash_record, run_task

log = logging.getLogger(__name__)

class _LocalBackend:
    def __init__(self, workers: int):
        self.workers = workers
        self.pool = self._new_pool()
        self.pool_of: dict = {}

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        # fork where the platform has it: workers inherit the imported modules (the parent
        # never starts HiGHS, so no solver threads are forked); spawn elsewhere
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context(method),
                                      initializer=_worker_init, initargs=(os.getpid(),))

    def submit(self, task: Task) -> Any:
        try:
            future = self.pool.submit(run_task, task)
        except cf.process.BrokenProcessPool:  # a worker died since the last submit: a new pool for the rest
            self._renew(self.pool)
            future = self.pool.submit(run_task, task)
        self.pool_of[future] = self.pool
        return future

    def _renew(self, pool: cf.ProcessPoolExecutor) -> None:
        """The first sign of ``pool``'s death: start a new one (its tasks in flight end as dead workers).
        The old pool's threads are joined first: a worker forked while they still hold their locks could
        start broken, and the task it then runs alone would be blamed for a death that is not its."""
        if pool is self.pool:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = self._new_pool()

    def wait(self, futures: Iterable[Any], timeout: float) -> set[Any]:
        done, _ = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return done

    def result(self, future: Any, task: Task) -> Record | None:
        """The task's record, or None when its worker process died (the task may run again)."""
        pool = self.pool_of.pop(future, None)
        try:
            return future.result()
        except (cf.process.BrokenProcessPool, cf.CancelledError):  # its worker died, or its dead pool cancelled it
            if pool is not None:
                self._renew(pool)
            return None
        except Exception as exc:
            return crash_record(task, f"{type(exc).__name__}: {exc}")

    def cancelled(self, future: Any) -> bool:
        """Whether the task never ran: its pool died first and cancelled it (not its fault)."""
        return bool(future.cancelled())

    def stop(self, future: Any) -> None:
        """Stop a task that gives no answer: its pool's workers are killed (a process pool cannot
        kill one task), so every task in flight ends as a dead worker and runs again; the hung
        one is recorded as such by the caller."""
        pool = self.pool_of.get(future, self.pool)
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()

    def close(self, cancel: bool = False) -> None:
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
            self.client = _connect(Client, scheduler)
        self.workers = workers
        self.stopped = set()

    stopped: set

    def submit(self, task: Task) -> Any:
        return self.client.submit(run_task, task, pure=False)

    def wait(self, futures: Iterable[Any], timeout: float) -> set[Any]:
        from distributed import wait
        try:
            return wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED").done
        except TimeoutError:  # distributed's wait raises on a timeout (a subclass of TimeoutError)
            return set()

    def result(self, future: Any, task: Task) -> Record | None:
        if future in self.stopped:
            return None
        try:
            return future.result()
        except Exception as exc:
            return crash_record(task, f"{type(exc).__name__}: {exc}")

    def cancelled(self, future: Any) -> bool:
        """Dask cancels a task only when the watchdog gives up on it (:meth:`stop`): never innocent."""
        return False

    def stop(self, future: Any) -> None:
        """Give up on a task that gives no answer (Dask cannot kill a running task; its worker
        goes on until the cluster closes): the caller records it."""
        self.stopped.add(future)
        future.cancel()

    def close(self, cancel: bool = False) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


CONNECT_S = 10.0
"""How long connecting to a Dask scheduler and its handshake may take, together."""


def _connect(client_class: Any, address: str, seconds: float | None = None) -> Any:
    """A Dask client of the scheduler at ``address``, or one line of :class:`InputError` when nothing
    there answers as a Dask scheduler within ``seconds``: a port that accepts and stays silent
    (distributed's own timeout does not cover its handshake), a web server or any other service
    (whose answer distributed may read as a frame of exabytes), a closed port.  The attempt runs in a
    thread of its own, so a hung handshake cannot hang the study; it is abandoned there."""
    import threading

    seconds = CONNECT_S if seconds is None else seconds
    box: dict[str, Any] = {}

    def attempt() -> None:
        try:
            box["client"] = client_class(address, timeout=f"{seconds:g}s")
        except BaseException as exc:  # MemoryError from a web server's reply, OSError, TimeoutError ...
            box["error"] = exc

    thread = threading.Thread(target=attempt, name="dipsd-dask-connect", daemon=True)
    thread.start()
    thread.join(seconds + 2.0)
    if thread.is_alive():
        raise InputError(f"--scheduler {address}: no Dask scheduler answered within {seconds + 2:g} s (something accepts "
                         f"connections there but does not speak Dask's protocol?)")
    if "error" in box:
        exc = box["error"]
        raise InputError(f"--scheduler {address}: not a Dask scheduler, or not reachable ({type(exc).__name__}: "
                         f"{str(exc)[:200]})")
    return box["client"]


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
