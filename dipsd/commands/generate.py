"""``dipsd generate``: seeded random study workbooks."""

from __future__ import annotations

import argparse

from ..argtypes import int_list, seed
from ..data.generate import generate
from ..data.text import plural
from ..data.writer import save_scenarios
from ..errors import InputError
from .common import new_workbook_path


def add(sub) -> None:
    """Register the command."""
    g = sub.add_parser("generate", help="write a seeded random study workbook",
                       description="Write seeded random scenarios; the same seed gives the same data.")
    g.add_argument("path", help="where to write the .xlsx (an existing file is not overwritten)")
    g.add_argument("--force", action="store_true", help="overwrite an existing file")
    g.add_argument("--users", type=int_list, default=[3, 4, 5, 6], help="comma-separated numbers of users (default 3,4,5,6)")
    g.add_argument("--per-size", type=int, default=3, help="scenarios per number of users (default 3)")
    g.add_argument("--seed", type=seed, default=0, help="random seed, 0..2**32-1 (default 0)")
    g.add_argument("--profile", choices=["paper", "heterogeneous"], default="heterogeneous",
                   help="paper: homogeneous paper defaults; heterogeneous: varied users (default)")
    g.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.per_size < 1:
        raise InputError(f"--per-size must be >= 1, got {args.per_size}")
    path = new_workbook_path(args)
    scenarios = generate(args.users, args.per_size, args.seed, args.profile)
    save_scenarios(path, scenarios)
    print(f"wrote {plural(len(scenarios), 'scenario')} to {args.path}")
    return 0
