"""One clock for every method: a :class:`Deadline` started when a method starts."""

from __future__ import annotations

import time


class Deadline:
    """A time limit of ``seconds`` counted from construction (``time.perf_counter``).

    ``hit`` is set by whoever was stopped by it (a solver step that ran into the limit), so
    that a result can say ``time_limit`` honestly.
    """

    def __init__(self, seconds: float):
        self.start = time.perf_counter()
        self.limit = float(seconds)
        self.hit = False

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

    def share(self, fraction: float, cap: float | None = None) -> Deadline:
        """A new deadline of ``fraction`` of the time left (at most ``cap`` seconds)."""
        seconds = fraction * self.remaining()
        return Deadline(seconds if cap is None else min(seconds, cap))
