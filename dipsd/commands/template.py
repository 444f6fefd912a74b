"""``dipsd template``: a ready-to-edit workbook with the paper defaults and two example plans."""

from __future__ import annotations

import argparse

from ..data.scenario import Scenario
from ..data.writer import save_scenarios
from .common import new_workbook_path


def add(sub) -> None:
    """Register the command."""
    t = sub.add_parser("template", help="write a ready-to-edit workbook with the paper defaults",
                       description="Write a workbook with the paper defaults, 6 users, an acceptance table for one user, "
                                   "two example plans (sheet 'plans') and a README sheet; max_batches is left blank "
                                   "(= the number of users).")
    t.add_argument("path", help="where to write the .xlsx (an existing file is not overwritten)")
    t.add_argument("--force", action="store_true", help="overwrite an existing file")
    t.set_defaults(func=run)


def template_scenario() -> Scenario:
    """The template's scenario: paper defaults, 6 users, a measured table for user u1."""
    from ..data.scenario import User

    measured = User(name="u1", alpha=0.74)  # a slightly lower acceptance than the closed form's 0.78
    table = tuple(round(measured.expected_tokens(k), 6) for k in range(1, 21))
    users = (User(name="u1", acceptance=table),) + tuple(User(name=f"u{i}") for i in range(2, 7))
    return Scenario(name="paper-6-users", users=users)


def template_plans(scenario: Scenario):
    """Two example plans of the template's scenario (sheet ``plans``): three users per batch at
    length 3, and every user alone at length 4."""
    from ..data.plans import NamedPlan

    names = [u.name for u in scenario.users]
    half = len(names) // 2
    return [
        NamedPlan(scenario.name, "two-batches", (tuple(names[:half]), tuple(names[half:])), tuple((n, 3) for n in names)),
        NamedPlan(scenario.name, "one-per-user", tuple((n,) for n in names), tuple((n, 4) for n in names)),
    ]


def run(args: argparse.Namespace) -> int:
    path = new_workbook_path(args)
    scenario = template_scenario()
    # max_batches blank: the number of users, so that users added later keep every plan allowed
    save_scenarios(path, [scenario], plans=template_plans(scenario), blank={"max_batches", "min_batches"})
    print(f"wrote {args.path}")
    return 0
