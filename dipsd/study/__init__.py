"""The study runner (the application layer, beside the service): every scenario of a workbook
times a list of methods, in parallel, resumable.

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
The package: :mod:`.tasks` (the unit of work), :mod:`.checkpoint` (the file, its lock and
header), :mod:`.backends` (local processes, Dask), :mod:`.scheduler` (the loop).
"""

from .checkpoint import CHECKPOINT_VERSION, HEADER_KEYS_THAT_MATTER, Checkpoint, study_header
from .scheduler import MAX_TRIES, Running, StudyOutcome, grace, run_study
from .tasks import Task, crash_record, plan_tasks, run_task

__all__ = ["CHECKPOINT_VERSION", "HEADER_KEYS_THAT_MATTER", "Checkpoint", "study_header", "MAX_TRIES", "Running",
           "StudyOutcome", "grace", "run_study", "Task",
           "crash_record", "plan_tasks", "run_task"]
