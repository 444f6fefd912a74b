"""Plans a user brings (workbook sheet ``plans``): named, by user names, validated on loading.

A :class:`NamedPlan` is plain data (names and numbers, no pandas, no solver types), so it can be
stored in a :class:`~dipsd.data.workbook.LoadedWorkbook`, carried by a study task and pickled to
a worker.  Whether a plan is *feasible* (memory cap, number of batches) is not a loading matter:
the closed-form evaluator says so, with the reason (a plan over the cap is still a plan to report).
"""

from __future__ import annotations

from dataclasses import dataclass

PLAN_METHOD_PREFIX = "plan:"
"""A plan named NAME is the method ``plan:NAME`` in studies, tables and charts."""


@dataclass(frozen=True)
class NamedPlan:
    """One plan of one scenario: ``batches`` in verification order (user names), ``lengths`` per
    user, ``rows`` the Excel rows of each batch (for messages)."""

    scenario: str
    name: str
    batches: tuple[tuple[str, ...], ...]
    lengths: tuple[tuple[str, int], ...]
    rows: tuple[tuple[int, ...], ...] = ()

    @property
    def method(self) -> str:
        return PLAN_METHOD_PREFIX + self.name

    def length_of(self) -> dict[str, int]:
        return dict(self.lengths)


def plan_name(method: str) -> str | None:
    """NAME for a method ``plan:NAME``, else None."""
    return method[len(PLAN_METHOD_PREFIX):] if method.startswith(PLAN_METHOD_PREFIX) else None
