"""Progress of a study on stderr.

On a terminal: one status line, redrawn at least once a second, that says what is running
(scenario × method and for how long), how many tasks are done, and at most how long the rest
takes (from the time limits of what remains).  Elsewhere (a log file, a pipe): a plain line per
finished task.  With ``-v`` the log says all that (a line per task started and finished), and
the command makes this display quiet.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .solvers.results import Record
    from .study import Running


def _seconds(s: float) -> str:
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


class Progress:
    """Call it with each finished record (``on_done``); give :meth:`tick` to ``on_tick``."""

    def __init__(self, quiet: bool, *, stream: TextIO | None = None):
        self.quiet, self.stream, self.start = quiet, stream or sys.stderr, time.monotonic()
        self.tty = self.stream.isatty()
        self.shown = False

    def line(self, running: Running) -> str:
        """The status line for a :class:`~dipsd.study.Running`."""
        width = 20
        filled = int(width * running.done / max(running.total, 1))
        now = sorted(running.tasks, key=lambda t: -t[2])
        doing = ", ".join(f"{s} × {m} {_seconds(e)}" for s, m, e in now[:2])
        if len(now) > 2:
            doing += f" +{len(now) - 2}"
        return (f"[{'#' * filled}{'.' * (width - filled)}] {running.done}/{running.total} done, "
                f"{_seconds(time.monotonic() - self.start)} | running: {doing or '-'} | "
                f"at most {_seconds(running.left_at_most_s)} left (time limits)")

    def tick(self, running: Running) -> None:
        if self.quiet or not self.tty:
            return
        columns = shutil.get_terminal_size((100, 20)).columns
        text = self.line(running)[: max(20, columns - 1)]
        self.stream.write("\r" + text.ljust(max(20, columns - 1)))
        self.stream.flush()
        self.shown = True

    def __call__(self, record: Record, done: int, total: int) -> None:
        """Report one finished :class:`~dipsd.solvers.results.Record`."""
        if self.quiet:
            return
        if self.tty:
            if done == total and self.shown:
                self.stream.write("\n")
                self.stream.flush()
            return
        tps = record.throughput_tps
        shown = "-" if tps is None else f"{tps:.3f} tok/s"
        self.stream.write(f"[{done}/{total}] {record.scenario} {record.method}: {record.status.value} {shown} "
                          f"({record.runtime_s:.2f}s)\n")
        self.stream.flush()
