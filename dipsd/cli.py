"""The ``dipsd`` command line.

Every input error (bad workbook, bad argument) prints one line per problem to stderr and
exits with code 2; no traceback is shown for them.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import threading

from .data.bundled import example_path

__all__ = ["main", "build_parser", "example_path"]
from . import __version__
from .errors import EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OUTPUT, EXIT_TERMINATED, InputError, OutputError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: exit 2 like every input error
        self.print_usage(sys.stderr)
        print(f"dipsd: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dipsd", description="Exact and heuristic optimization of distributed pipelined speculative decoding (DiP-SD).")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log progress (-vv: solver logs, -vvv: library debug)")
    p.add_argument("--version", action="version", version=f"dipsd {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    from . import commands
    commands.add_all(sub)
    for command in sub.choices.values():  # -v also after the command; SUPPRESS keeps one given before it
        command.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                             help="log progress (-vv: solver logs, -vvv: library debug)")
    return p


LIBRARIES = ("pyomo", "distributed", "tornado", "asyncio", "bokeh", "matplotlib", "PIL", "fsspec")
"""Loggers of the libraries dipsd runs on: quiet up to ``-v``, INFO at ``-vv``, everything at ``-vvv``."""


def configure_logging(verbose: int) -> None:
    """Logging on stderr by verbosity: warnings by default; ``-v`` dipsd's progress (a line per task
    started and finished, per Dinkelbach iteration, certify round and DiP-SD round); ``-vv`` also
    dipsd's debug lines and the solvers' own logs (HiGHS's, on stderr) and the libraries' INFO
    lines (Dask's cluster, Pyomo's); ``-vvv`` every library's debug lines (Pyomo's model
    construction)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    libraries = logging.WARNING if verbose < 2 else logging.INFO if verbose == 2 else logging.DEBUG
    root = logging.getLogger()
    root.setLevel(level)
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:  # one handler of ours, whatever else (a test's log capture) is attached
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(libraries)

    def keep(record: logging.LogRecord) -> bool:
        # a library may reset its loggers' levels when imported (Dask does): filter at the handler too
        return record.levelno >= libraries or record.name.split(".")[0] not in LIBRARIES

    handler.filters = [keep]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (so a redirected or captured
    stderr gets the lines), never to stdout."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ sets it; the property always follows sys.stderr
        pass


class Terminated(KeyboardInterrupt):
    """SIGTERM (sent by ``timeout``, Slurm, Docker, systemd): handled like Ctrl-C."""


_sigterm = {"received": False, "pid": 0}


def _on_sigterm(signum, frame):
    if os.getpid() != _sigterm["pid"]:
        # a worker forked from this process, terminated (its pool broke) before its initializer reset this
        # handler: it ends as SIGTERM's default would, without a traceback
        os._exit(128 + signal.SIGTERM)
    _sigterm["received"] = True
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    try:
        os.getcwd()
    except FileNotFoundError:  # every relative path (the default report, --out r.xlsx) would fail deep inside
        print("dipsd: error: the current folder no longer exists (deleted or moved); change to an existing folder",
              file=sys.stderr)
        return EXIT_INPUT
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    previous = None
    if threading.current_thread() is threading.main_thread():
        _sigterm["pid"] = os.getpid()
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    _sigterm["received"] = False
    try:
        code = args.func(args)
        sys.stdout.flush()  # a full disk or a closed pipe under stdout is this command's failure, said here
        # a study stopped by SIGTERM wrote its report and said how to resume, like after Ctrl-C
        return EXIT_TERMINATED if code == EXIT_INTERRUPTED and _sigterm["received"] else code
    except Terminated:
        print("dipsd: terminated (SIGTERM; studies: run the same command with --resume to continue)", file=sys.stderr)
        return EXIT_TERMINATED
    except InputError as exc:
        for line in str(exc).splitlines():
            print(f"dipsd: error: {line}", file=sys.stderr)
        return EXIT_INPUT
    except OutputError as exc:
        print(f"dipsd: error: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    except BrokenPipeError:  # stdout closed early (`dipsd ... | head`): stop quietly, as Unix tools do
        _silence_stdout()
        return EXIT_FAILED
    except OSError as exc:  # stdout cannot be written (`> /dev/full`): files are checked and said as OutputError,
        if exc.errno not in _WRITE_FAILURES:  # so a write failure that gets here is stdout's
            raise
        _silence_stdout()
        print(f"dipsd: error: the standard output cannot be written ({exc.strerror or exc}); nothing more was printed",
              file=sys.stderr)
        return EXIT_OUTPUT
    except KeyboardInterrupt:
        print("dipsd: interrupted (studies: run the same command with --resume to continue)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


_WRITE_FAILURES = frozenset(getattr(errno, name) for name in ("ENOSPC", "EFBIG", "EDQUOT", "EIO") if hasattr(errno, name))


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's own flush at exit does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
