"""The commands of ``dipsd``: one module each, each with ``add(sub)`` (its parser, dispatched by
``set_defaults(func=run)``) and ``run(args)`` (its work; an exit code)."""

from __future__ import annotations

from . import check, evaluate, generate, model, paper, solve, study, sweep, template, verify

COMMANDS = (check, template, generate, solve, evaluate, study, sweep, verify, model, paper)
"""In the order ``dipsd --help`` lists them."""


def add_all(sub) -> None:
    """Register every command's parser."""
    for command in COMMANDS:
        command.add(sub)
