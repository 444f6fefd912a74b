"""The one place for dipsd's exceptions.

Every error a user can cause by bad input derives from :class:`InputError`; the command
line turns those into a message and exit code 2.  Everything else derived from
:class:`DipsdError` is a failure of a computation (a solver, a report) that the caller
may record and continue past.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


def did_you_mean(value: object, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known`` names, or ``""``: one wording for every hint."""
    names = [str(k) for k in known]
    same = [k for k in names if k.casefold() == str(value).casefold()]  # 'U1' for 'u1', 'DiP-SD' for 'dipsd'
    close = same or difflib.get_close_matches(str(value), names, n=1)
    if not close:  # case apart: 'Acceptence' -> 'acceptance'
        folded = {k.casefold(): k for k in names}
        close = [folded[k] for k in difflib.get_close_matches(str(value).casefold(), list(folded), n=1)]
    return f"; did you mean '{close[0]}'?" if close else ""


class DipsdError(Exception):
    """Base class of every exception raised on purpose by dipsd."""


class InputError(DipsdError):
    """Input that dipsd refuses: a bad workbook, argument or plan."""


@dataclass(frozen=True)
class CellProblem:
    """One rejected cell (or sheet, or file) of a workbook.

    ``row`` is the row number as Excel shows it (the header is row 1); ``None`` when the
    problem concerns a whole sheet or file.  ``value`` is the offending value shown as
    text, never evaluated.
    """

    file: str
    sheet: str | None
    row: int | None
    column: str | None
    value: str | None
    allowed: str

    def __str__(self) -> str:
        where = [self.file]
        if self.sheet is not None:
            where.append(f"sheet '{self.sheet}'")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = ", ".join(where)
        if self.value is not None:
            text += f": bad value {self.value!r}"
        return f"{text}: {self.allowed}"


class WorkbookError(InputError):
    """A scenario workbook that cannot be used; carries every problem found."""

    def __init__(self, problems: list[CellProblem] | tuple[CellProblem, ...]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class PlanError(InputError):
    """A plan that is not a partition of the users into batches with valid lengths."""


class TooLargeError(InputError):
    """An instance too large for the requested method (for example brute force)."""


class SolverError(DipsdError):
    """A solver failed in a way that is not a status (crash, wrong answer)."""


class OutputError(DipsdError):
    """An output could not be written (disk full, file too large, read-only file system, ...):
    exit code :data:`EXIT_OUTPUT`; what was written before (checkpoint, earlier report) is intact."""


EXIT_OK = 0
"""Exit code: the command did what it promises."""
EXIT_FAILED = 1
"""Exit code: every task failed, or a claim was refuted (``verify``)."""
EXIT_INPUT = 2
"""Exit code: bad input (a workbook cell, an option, an unusable plan), said in one message."""
EXIT_OUTPUT = 74
"""Exit code when an output cannot be written (sysexits' EX_IOERR)."""
EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT); the finished work is kept."""
EXIT_TERMINATED = 143
"""Exit code after SIGTERM (128 + 15); the finished work is kept."""


def output_failure(path: str, exc: BaseException) -> OutputError:
    """An :class:`OutputError` naming ``path`` and the operating system's reason (the first
    ``OSError`` in the chain: a library may report a later consequence, e.g. 'seek of closed file')."""
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and not isinstance(cause, OSError) and id(cause) not in seen:
        seen.add(id(cause))
        cause = cause.__context__ or cause.__cause__
    reason = (cause.strerror or str(cause)) if isinstance(cause, OSError) else f"{type(exc).__name__}: {exc}"
    return OutputError(f"could not write {path}: {reason}")
