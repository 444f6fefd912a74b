"""The ``dipsd`` command line.

Every input error (bad workbook, bad argument) prints one line per problem to stderr and
exits with code 2; no traceback is shown for them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .argtypes import int_list
from .data.bundled import example_path

__all__ = ["main", "build_parser", "example_path"]
from . import __version__
from .errors import InputError

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


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

    c = sub.add_parser("check", help="validate a scenario workbook and summarize each scenario",
                       description="Validate a scenario workbook; print one line per scenario.")
    c.add_argument("workbook", nargs="?", default=None, help="scenario workbook (.xlsx); default: the bundled heterogeneous example")

    t = sub.add_parser("template", help="write a ready-to-edit workbook with the paper defaults",
                       description="Write a workbook with the paper defaults, 6 users, an acceptance table for one user and a README sheet.")
    t.add_argument("path", help="where to write the .xlsx (an existing file is not overwritten)")
    t.add_argument("--force", action="store_true", help="overwrite an existing file")

    g = sub.add_parser("generate", help="write a seeded random study workbook",
                       description="Write seeded random scenarios; the same seed gives the same data.")
    g.add_argument("path", help="where to write the .xlsx (an existing file is not overwritten)")
    g.add_argument("--force", action="store_true", help="overwrite an existing file")
    g.add_argument("--users", type=int_list, default=[3, 4, 5, 6], help="comma-separated numbers of users (default 3,4,5,6)")
    g.add_argument("--per-size", type=int, default=3, help="scenarios per number of users (default 3)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--profile", choices=["paper", "heterogeneous"], default="heterogeneous", help="paper: homogeneous paper defaults; heterogeneous: varied users (default)")

    from . import commands
    commands.add_solve(sub)
    commands.add_study(sub)
    commands.add_paper(sub)
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
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
    libraries = logging.WARNING if verbose < 2 else logging.INFO if verbose == 2 else logging.DEBUG
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(libraries)

    def keep(record: logging.LogRecord) -> bool:
        # a library may reset its loggers' levels when imported (Dask does): filter at the handler too
        return record.levelno >= libraries or not record.name.split(".")[0] in LIBRARIES

    for handler in logging.getLogger().handlers:
        handler.addFilter(keep)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    from . import commands
    try:
        return getattr(commands, "run_" + args.command)(args)
    except InputError as exc:
        for line in str(exc).splitlines():
            print(f"dipsd: error: {line}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("dipsd: interrupted (studies: run the same command with --resume to continue)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
