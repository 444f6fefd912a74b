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
from contextlib import contextmanager
from typing import Iterator, Sequence

from .errors import InputError


def _same(a: str, b: str) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_output(path: str, *, inputs: Sequence[str | None] = (), suffix: str = ".xlsx", what: str = "output") -> str:
    """The absolute path of a valid output file; raises :class:`InputError` otherwise."""
    text = os.fspath(path)
    if os.path.isdir(text):
        raise InputError(f"{what} {text!r} is a folder; give a file name ending in {suffix}")
    if not text.lower().endswith(suffix):
        raise InputError(f"{what} {text!r}: the file name must end in {suffix}")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise InputError(f"{what} {text!r}: folder {folder!r} does not exist")
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
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_folder(path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
