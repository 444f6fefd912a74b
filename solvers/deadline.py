"""One clock for every method: a :class:`Deadline` started when a method starts.

A deadline is a wall-clock time limit and, optionally, a *work limit*: a count of solver work
units (what a unit is, each method that honours a work limit documents; ``certify``: one
master LP solve with its pricing round, or one branch-and-bound node of a budget IP).  Under a
work limit a method makes every decision that depends on "how much of the limit is used" from
the work count alone (:meth:`progress`), so the same input and limits give the same result on
any machine and under any load; the time limit stays the user's wall-clock cap and a result
stopped by it says so (status ``time_limit``, not ``work_limit``).
"""

from __future__ import annotations

import time

from ..errors import InputError


def check_work_limit(work_limit: object) -> None:
    """A work limit is a whole number >= 1, or None (no work limit)."""
    if work_limit is not None and (isinstance(work_limit, bool) or not isinstance(work_limit, int) or work_limit < 1):
        raise InputError(f"work_limit: a whole number of work units >= 1, or None, as on the command line; got {work_limit!r}")


class Deadline:
    """A time limit of ``seconds`` counted from construction (``time.perf_counter``), and an
    optional limit of ``work`` units spent through :meth:`spend`.

    ``hit`` is set by whoever was stopped by the time limit (a solver step that ran into it), so
    that a result can say ``time_limit`` honestly.
    """

    def __init__(self, seconds: float, work: int | None = None):
        self.start = time.perf_counter()
        self.limit = float(seconds)
        self.hit = False
        self.work = work
        self.used = 0

    @property
    def at(self) -> float:
        """The instant (``time.perf_counter`` scale) when time is up."""
        return self.start + self.limit

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        """Seconds left, never below 0."""
        return max(0.0, self.limit - self.elapsed())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    # ------------------------------------------------------------------ work
    def spend(self, units: int = 1) -> None:
        """Count ``units`` of work done."""
        self.used += units

    def work_left(self) -> int | None:
        """Work units left (never below 0), or None without a work limit."""
        return None if self.work is None else max(0, self.work - self.used)

    def out_of_work(self) -> bool:
        return self.work is not None and self.used >= self.work

    def over(self) -> bool:
        """Whether either limit is reached."""
        return self.out_of_work() or self.expired()

    def progress(self) -> float:
        """The share of the limit used: of the work limit when there is one (deterministic),
        else of the time limit."""
        if self.work is not None:
            return self.used / self.work if self.work > 0 else 1.0
        return self.elapsed() / self.limit if self.limit > 0 else 1.0

    def share(self, fraction: float, cap: float | None = None) -> Deadline:
        """A new deadline of ``fraction`` of the time left (at most ``cap`` seconds).  Under a work
        limit, the rest of the wall-clock time instead (a part of a method that runs under a share
        is deterministic when it ends by itself, and a share of the time would make it stop at a
        point that depends on the machine's speed)."""
        if self.work is not None:
            return Deadline(self.remaining())
        seconds = fraction * self.remaining()
        return Deadline(seconds if cap is None else min(seconds, cap))
