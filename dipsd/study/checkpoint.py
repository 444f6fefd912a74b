"""The checkpoint of a study: a JSON-lines file (a header, then one record per finished task),
its lock, and the header that says what changes a study's results.

Every line carries ``"sig"``: an HMAC-SHA256, under a secret key of the user's
(:func:`signing_key`), of the line's canonical JSON (sorted keys, without ``sig``) together with
the study's scenario fingerprint.  On ``--resume`` a record whose signature does not match
(edited by hand or by a script, copied from another study, or written under another user's or
machine's key) is named and its task runs again: it is never trusted.  A header whose signature
does not match makes every record run again.  What this protects against and what not is in
docs/design.md ("Checkpoints that cannot be edited unnoticed").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat

from ..data.scenario import Scenario
from ..data.workbook import LoadedWorkbook
from ..errors import InputError, output_failure
from ..outputs import atomic_write, held_work, set_aside
from ..solvers.audit import conflicts, record_problem
from ..solvers.milp import solvers as milp_solvers
from ..solvers.milp.solvers import package_version, solver_options
from ..solvers.results import Record, Status

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 2
"""2: every line signed (``sig``)."""
KEY_ENV = "DIPSD_KEY_FILE"
"""The environment variable naming the key file (default ``$XDG_CONFIG_HOME/dipsd/checkpoint.key``,
else ``~/.config/dipsd/checkpoint.key``)."""
_ephemeral: bytes | None = None


def key_path() -> str:
    """Where the user's signing key lives."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV]
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config, "dipsd", "checkpoint.key")


def signing_key() -> bytes:
    """The user's secret key (32 random bytes), created on first use (folder 0700, file 0600, never
    through a link).  Where it can be neither read nor created, a key for this process only, with a
    warning: the study's records then cannot be resumed as trusted (they run again)."""
    path = key_path()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
            return signing_key()
        except FileExistsError:  # another process created it meanwhile
            return signing_key()
        except OSError as exc:
            return _process_key(path, exc)
    except OSError as exc:
        return _process_key(path, exc)
    with os.fdopen(fd, "rb") as fh:
        key = fh.read(4096)
    if len(key) < 16:
        return _process_key(path, ValueError("fewer than 16 bytes"))
    return key


def _process_key(path: str, exc: Exception) -> bytes:
    global _ephemeral
    if _ephemeral is None:
        log.warning("the checkpoint signing key %s cannot be used (%s: %s); this process signs with a key of its own, "
                    "so --resume will run every task again (set %s to a writable file)", path, type(exc).__name__, exc, KEY_ENV)
        _ephemeral = secrets.token_bytes(32)
    return _ephemeral


def signed(line: dict, study: str, key: bytes) -> dict:
    """``line`` with its signature (``sig``) for the study whose scenario fingerprint is ``study``."""
    body = {k: v for k, v in line.items() if k != "sig"}
    return {**body, "sig": _mac(body, study, key)}


def signature_ok(line: dict, study: str, key: bytes) -> bool:
    """Whether ``line`` carries the signature :func:`signed` gives it."""
    sig = line.get("sig")
    body = {k: v for k, v in line.items() if k != "sig"}
    return isinstance(sig, str) and hmac.compare_digest(sig, _mac(body, study, key))


def _mac(body: dict, study: str, key: bytes) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, f"{study}\n{text}".encode(), hashlib.sha256).hexdigest()


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
        self.key, self.study = signing_key(), str(header.get("scenarios_sha256", ""))
        self._fh = None
        self._lock = _Lock(path + ".lock")
        try:
            if held_work(path, resume=resume, fresh=fresh) and not resume:  # --fresh
                moved = set_aside(path)
                log.warning("moved the earlier checkpoint to %s", moved)
            if resume and os.path.exists(path):
                header = self._read(header)
            with atomic_write(path) as fh:
                fh.write(self._line({"checkpoint": CHECKPOINT_VERSION, **header}))
                for record in self.records.values():
                    fh.write(self._line(record.to_json()))
            self._fh = open(path, "a", encoding="utf-8")
        except BaseException:
            self._lock.release()
            raise

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
        header_ok = True
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
                header_ok = signature_ok(data, self.study, self.key)
                if not header_ok:
                    log.warning("%s, line %d: the header's signature does not match (edited, or written under another "
                                "key); no record of this file is trusted: every task runs again", self.path, number)
                longer = _raised(data.get("time_limit"), header.get("time_limit"))
                more_work = _raised(data.get("work_limit"), header.get("work_limit"))
                history = list(data.get("history", [])) + [{k: data.get(k) for k in ("methods", "time_limit", "work_limit")
                                                            if k in data or k != "work_limit"}]
                if data.get("methods") != header.get("methods") or longer or more_work:
                    header = {**header, "history": history}
                elif "history" in data:
                    header = {**header, "history": data["history"]}
                continue
            try:
                record = Record.from_json({k: v for k, v in data.items() if k != "sig"} if isinstance(data, dict) else data)
            except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
                raise InputError(f"{self.path}, line {number}: not a task record ({exc}); "
                                 f"move the file aside (--fresh) to start again") from None
            if not header_ok:
                continue
            if not signature_ok(data, self.study, self.key):
                log.warning("%s, line %d: %s/%s dropped: its signature does not match (edited by hand, copied from "
                            "another study, or written under another user's key); the task runs again", self.path, number,
                            record.scenario, record.method)
                continue
            if (longer and record.status in (Status.TIME_LIMIT, Status.NO_PLAN)) or (more_work and record.status is Status.WORK_LIMIT):
                continue  # stopped by the old limit: runs again with the raised one
            if record.status is not Status.ERROR:
                self.records[(record.scenario, record.method)] = record
                line_of[(record.scenario, record.method)] = number
        self._audit(line_of)
        return header

    def _audit(self, line_of: dict[tuple[str, str], int]) -> None:
        """Drop the records that do not survive the closed-form re-check (module :mod:`.audit`)."""
        def drop(key: tuple[str, str], why: str) -> None:
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
        """Refuse to resume under settings that change results, naming each difference.  Three
        changes are allowed: more methods (the old ones' records are kept, the new ones run), a
        longer time limit (records stopped by the old limit, ``time_limit`` or ``no_plan``, run
        again; finished and proven ones are kept) and a larger work limit (``work_limit`` records
        run again)."""
        def allowed(key: str, was: object, now: object) -> bool:
            if key == "methods":
                return isinstance(was, list) and isinstance(now, list) and set(was) <= set(now)
            if key in ("time_limit", "work_limit"):
                return isinstance(was, (int, float)) and isinstance(now, (int, float)) and now >= was
            if key == "user_methods":  # methods may be added; those of the checkpoint must be the same code
                was, now = was or {}, now or {}
                return isinstance(was, dict) and isinstance(now, dict) and all(now.get(k) == v for k, v in was.items())
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
            assert self._fh is not None, "the checkpoint is open while the study runs"
            self._fh.write(self._line(record.to_json()))
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:  # disk full, file too large: stop, saying so (the lines before are intact)
            raise output_failure(self.path, exc) from None

    def _line(self, data: dict) -> str:
        return json.dumps(signed(data, self.study, self.key)) + "\n"

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._lock.release()


HEADER_KEYS_THAT_MATTER = ("scenarios_sha256", "methods", "time_limit", "dipsd", "pyomo", "highspy", "solver_options",
                           "solver", "solver_version", "work_limit", "user_methods")
"""Header fields that must match for ``--resume`` (they change the results); ``methods`` may grow
and ``time_limit`` and ``work_limit`` rise (:meth:`Checkpoint._compare`; a study without a work
limit cannot be resumed with one, nor the other way round)."""


def _raised(was: object, now: object) -> bool:
    """Whether a limit rose between the checkpoint and this run (both numbers)."""
    return isinstance(was, (int, float)) and isinstance(now, (int, float)) and now > was


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


def study_header(book: LoadedWorkbook, methods: list[str], time_limit: float, solver: str = "highs",
                 work_limit: int | None = None) -> dict:
    """What the checkpoint records about a study: everything that changes its results (the MILP
    solver, its version and options included; a header without ``solver`` is HiGHS's, one
    without ``work_limit`` had none)."""
    header = {"workbook": os.path.basename(book.path), "scenarios_sha256": book.fingerprint, "methods": list(methods),
              "time_limit": time_limit, "dipsd": package_version("dipsd"), "pyomo": package_version("pyomo"),
              "highspy": package_version("highspy"), "solver_options": solver_options(solver)}
    if solver != "highs":
        header.update(solver=solver, solver_version=milp_solvers.version(solver))
    if work_limit is not None:
        header["work_limit"] = work_limit
    from ..solvers.catalog import METHODS

    users = {m: METHODS[m].identity for m in methods if m in METHODS and METHODS[m].identity}
    if users:
        header["user_methods"] = users
    return header
