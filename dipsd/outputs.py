"""Where commands write: checked before any work, and written so that nothing is half-written or lost.

:func:`check_output` refuses (exit code 2) an output path that is a folder, lies in a
folder that is missing or not writable, does not end in the expected suffix, or is the
same file as an input.  :func:`atomic_write` writes a file through a temporary file in
the same folder, flushed and fsynced, then renamed into place (the folder fsynced too),
so a crash leaves either the old file or the new one.  :func:`set_aside` moves a file out
of the way under a new name instead of deleting it.
"""

from __future__ import annotations

import datetime
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .errors import InputError


def _same(a: str, b: str) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


LONGEST_ADDED = len(".jsonl.lock") + len(".old-YYYYmmddTHHMMSS-99")
"""The longest suffix dipsd adds to an output's name (its checkpoint's lock, a set-aside copy)."""


def _name_max(folder: str) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def check_output(path: str, *, inputs: Sequence[str | None] = (), suffix: str = ".xlsx", what: str = "output") -> str:
    """The absolute path of a valid output file; raises :class:`InputError` otherwise.

    Refused: a folder, a symbolic link, a FIFO, device or anything else that is not a regular
    file; a name too long for the folder's file system once dipsd's own suffixes are added; a
    missing or unwritable folder; an input file."""
    text = os.fspath(path)
    if os.path.isdir(text):
        raise InputError(f"{what} {text!r} is a folder; give a file name ending in {suffix}")
    if os.path.islink(text):
        raise InputError(f"{what} {text!r} is a symbolic link; dipsd writes only regular files (give the real path)")
    if os.path.lexists(text) and not stat.S_ISREG(os.lstat(text).st_mode):
        raise InputError(f"{what} {text!r} exists and is not a regular file (a FIFO, socket or device?)")
    if not text.lower().endswith(suffix):
        raise InputError(f"{what} {text!r}: the file name must end in {suffix}")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise InputError(f"{what} {text!r}: folder {folder!r} does not exist")
    name_bytes = len(os.fsencode(os.path.basename(text)))
    if name_bytes + LONGEST_ADDED > _name_max(folder):
        raise InputError(f"{what}: the file name is {name_bytes} bytes long; at most "
                         f"{_name_max(folder) - LONGEST_ADDED} bytes (dipsd adds up to {LONGEST_ADDED} for its checkpoint files)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{what} {text!r}: folder {folder!r} is not writable")
    if os.path.exists(text) and not os.access(text, os.W_OK):
        raise InputError(f"{what} {text!r} exists and is not writable")
    for source in inputs:
        if source is not None and _same(text, os.fspath(source)):
            raise InputError(f"{what} {text!r} is the input file {os.fspath(source)!r}; choose another name")
    return os.path.abspath(text)


def fsync_folder(path: str) -> None:
    """Make a rename in ``path``'s folder durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: str, mode: str = "w") -> Iterator:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    The temporary file is created exclusively under an unpredictable name (``mkstemp``: a
    symbolic link planted in the folder is never followed), and the rename replaces only a
    regular file or nothing: a symbolic link, folder or device at ``path`` is refused."""
    folder, name = os.path.split(os.path.abspath(path))
    if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
        raise InputError(f"{path!r} is not a regular file (a symbolic link, folder, FIFO or device); not replaced")
    fd, tmp = tempfile.mkstemp(prefix=f".{name[:100]}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a report gets the usual permissions
        os.replace(tmp, path)
        fsync_folder(path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_new(path: str, *, suffix: str, what: str) -> str:
    """:func:`check_output` for a file dipsd only ever creates (``--plans-out``, ``model --out``,
    ``sweep --out``): it must not exist yet; the absolute path."""
    checked = check_output(path, suffix=suffix, what=what)
    if os.path.lexists(checked):
        raise InputError(f"{what} {os.fspath(path)!r} exists; dipsd does not overwrite it (choose another name)")
    return checked


def set_aside(path: str) -> str | None:
    """Rename an existing file to ``PATH.old-YYYYmmddTHHMMSS`` (never over another file); its new name."""
    if not os.path.exists(path):
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    target, n = f"{path}.old-{stamp}", 1
    while os.path.exists(target):
        n += 1
        target = f"{path}.old-{stamp}-{n}"
    os.rename(path, target)
    fsync_folder(path)
    return target


def finished_tasks(checkpoint: str) -> int:
    """Lines after the header of a checkpoint (0 when there is none)."""
    if not os.path.isfile(checkpoint):
        return 0
    try:
        with open(checkpoint, "rb") as fh:
            return max(0, sum(1 for line in fh if line.strip()) - 1)
    except OSError:
        return 0


def held_work(checkpoint: str, *, resume: bool, fresh: bool) -> int:
    """The finished tasks a checkpoint holds; :class:`InputError` when it holds some and neither
    ``resume`` nor ``fresh`` says what to do with them (a checkpoint with no finished task holds
    nothing to lose)."""
    held = finished_tasks(checkpoint)
    if held and not (resume or fresh):
        raise InputError(f"{checkpoint} holds {held} finished task{'s' * (held != 1)} of an earlier study; run with "
                         f"--resume to continue it, or --fresh to move it aside and start again")
    return held


def claim(outputs: Sequence[str], checkpoint: str, *, resume: bool, fresh: bool) -> None:
    """Before a study writes anything: refuse to go on where it would discard finished work or
    replace a file that is not this study's.

    A checkpoint holding finished tasks needs ``--resume`` or ``--fresh``.  An existing output
    (report, figure, scenarios) with no checkpoint beside it is not this study's: it is never
    replaced (``--fresh`` moves it aside first).  Raises :class:`InputError`; writes nothing."""
    held_work(checkpoint, resume=resume, fresh=fresh)
    ours = os.path.isfile(checkpoint)
    for path in outputs:
        if os.path.lexists(path) and not ours and not fresh:
            raise InputError(f"{path} exists and is not the output of a study here (no checkpoint {os.path.basename(checkpoint)} "
                             f"beside it); dipsd does not replace it: choose another --out, or --fresh to move it aside")


def shown(path: str) -> str:
    """A path as printable text: bytes that are not UTF-8 (lone surrogates) written as escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace") if isinstance(path, str) else str(path)


@contextmanager
def writing(path: str, checkpoint: str | None = None) -> Iterator[None]:
    """Turn a failure to write ``path`` (an ``OSError``, or what a library makes of one) into
    one clear :class:`~dipsd.errors.OutputError`; the earlier file stays (atomic writes)."""
    from .errors import output_failure

    try:
        yield
    except (OSError, ValueError) as exc:
        error = output_failure(path, exc)
        _release(exc)
        if checkpoint:
            error = type(error)(f"{error}; every finished task is in {checkpoint}: free the space (or fix the folder) "
                                f"and run the same command with --resume")
        raise error from None


def _release(exc: BaseException | None) -> None:
    """Free what a failed write left behind now, quietly: a half-written zip archive (openpyxl's)
    closes itself when collected and would print 'Exception ignored ... seek of closed file'."""
    import gc
    import sys

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = None
        exc = exc.__context__
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        gc.collect()
    finally:
        sys.unraisablehook = hook
