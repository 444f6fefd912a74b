"""Progress of a study on stderr: a bar on a terminal, a plain line per finished task otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """A progress bar on a terminal, a plain line per finished task otherwise."""

    def __init__(self, quiet: bool):
        self.quiet, self.stream, self.start = quiet, sys.stderr, time.monotonic()
        self.tty = self.stream.isatty()

    def __call__(self, record, done: int, total: int) -> None:
        """Report one finished :class:`~dipsd.solvers.results.Record`."""
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        if self.tty:
            width = 30
            filled = int(width * done / max(total, 1))
            eta = elapsed / done * (total - done) if done else 0.0
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                              f"elapsed {elapsed:6.1f}s  remaining ~{eta:6.1f}s ")
            if done == total:
                self.stream.write("\n")
        else:
            tps = record.throughput_tps
            shown = "-" if tps is None else f"{tps:.3f} tok/s"
            self.stream.write(f"[{done}/{total}] {record.scenario} {record.method}: {record.status.value} {shown} "
                              f"({record.runtime_s:.2f}s)\n")
        self.stream.flush()
