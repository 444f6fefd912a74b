"""The ``dipsd`` command line.

Every input error (bad workbook, bad argument) prints one line per problem to stderr and
exits with code 2; no traceback is shown for them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import resources

from .errors import InputError

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


def example_path(name: str = "heterogeneous.xlsx") -> str:
    """Path of a bundled example workbook (``paper.xlsx`` or ``heterogeneous.xlsx``)."""
    return str(resources.files("dipsd.data").joinpath("examples", name))


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: exit 2 like every input error
        self.print_usage(sys.stderr)
        print(f"dipsd: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected whole numbers >= 1, got {text!r}")
    return values


def _positive(kind):
    """An argparse type: a number of ``kind`` (int or float) that must be > 0."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
        return value

    return parse


_positive_int, _positive_float = _positive(int), _positive(float)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dipsd", description="Exact and heuristic optimization of distributed pipelined speculative decoding (DiP-SD).")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log progress (-vv for solver detail)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("check", help="validate a scenario workbook and summarize each scenario",
                       description="Validate a scenario workbook; print one line per scenario.")
    c.add_argument("workbook", nargs="?", default=None, help="scenario workbook (.xlsx); default: the bundled heterogeneous example")

    t = sub.add_parser("template", help="write a ready-to-edit workbook with the paper defaults",
                       description="Write a workbook with the paper defaults, 6 users, an acceptance table for one user and a README sheet.")
    t.add_argument("path", help="where to write the .xlsx")

    g = sub.add_parser("generate", help="write a seeded random study workbook",
                       description="Write seeded random scenarios; the same seed gives the same data.")
    g.add_argument("path", help="where to write the .xlsx")
    g.add_argument("--users", type=_int_list, default=[3, 4, 5, 6], help="comma-separated numbers of users (default 3,4,5,6)")
    g.add_argument("--per-size", type=int, default=3, help="scenarios per number of users (default 3)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--profile", choices=["paper", "heterogeneous"], default="heterogeneous", help="paper: homogeneous paper defaults; heterogeneous: varied users (default)")

    from . import commands
    commands.add_solve(sub)
    commands.add_study(sub)
    commands.add_paper(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from . import commands
    try:
        return getattr(commands, "run_" + args.command)(args)
    except InputError as exc:
        for line in str(exc).splitlines():
            print(f"dipsd: error: {line}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("dipsd: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
