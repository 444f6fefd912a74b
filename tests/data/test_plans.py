"""Sheet 'plans': loaded as NamedPlans, every problem located (file, sheet, row, column, value,
what is allowed, the plan's name), written back by save_scenarios."""

from __future__ import annotations

import pytest

from dipsd import load_workbook
from dipsd.data.plans import NamedPlan
from dipsd.data.writer import save_scenarios
from tests.conftest import good_sheets, write_book

HEADER = ["scenario", "plan", "user", "batch", "draft_length"]


def _book(tmp_path, rows):
    sheets = good_sheets()
    sheets["plans"] = [HEADER] + rows
    return write_book(tmp_path / "p.xlsx", sheets)


def test_plans_load_in_verification_order(tmp_path):
    path = _book(tmp_path, [["s1", "mine", "b", 2, 3], ["s1", "mine", "a", 1, 5], ["s2", "mine", "x", 7, 1],
                            ["s1", "other", "a", 1, 1], ["s1", "other", "b", 1, 1]])
    book = load_workbook(path)
    assert book.plan_methods == ["plan:mine", "plan:other"]
    mine = book.plans_of("s1")["plan:mine"]
    assert mine.batches == (("a",), ("b",)) and mine.length_of() == {"a": 5, "b": 3} and mine.rows == ((3,), (2,))
    assert book.plans_of("s2")["plan:mine"].batches == (("x",),)
    without = load_workbook(write_book(tmp_path / "q.xlsx", good_sheets()))
    assert without.plans == () and without.fingerprint != book.fingerprint


@pytest.mark.parametrize("rows,row,column,fragment", [
    ([["s1", "p", "zz", 1, 1], ["s1", "p", "a", 1, 1]], 2, "user", "a user of scenario 's1'"),
    ([["s1", "p", "a", 1, 1], ["s1", "p", "a", 2, 1], ["s1", "p", "b", 2, 1]], 3, "user", "each user once per plan (plan 'p'"),
    ([["s1", "p", "a", 1, 1]], 2, "user", "every user of scenario 's1' once in plan 'p' (1 user missing)"),
    ([["s1", "p", "a", 1, 6], ["s1", "p", "b", 1, 1]], 2, "draft_length", "1..5 (max_draft_length of 's1'; plan 'p')"),
    ([["s9", "p", "a", 1, 1]], 2, "scenario", "a scenario of sheet 'scenarios'"),
    ([["s1", "p", "a", 0, 1], ["s1", "p", "b", 1, 1]], 2, "batch", ">= 1"),
    ([["s1", "p", "a", 1.5, 1], ["s1", "p", "b", 1, 1]], 2, "batch", "whole number"),
])
def test_plan_problems_are_located(tmp_path, rows, row, column, fragment):
    """A bad plan is unusable, located; the scenarios load (methods that do not use it run)."""
    book = load_workbook(_book(tmp_path, rows))
    assert book.plans == () and [s.name for s in book.scenarios] == ["s1", "s2"]
    (scenario, plan, why), = book.unusable
    assert plan == "p" and f"p.xlsx, sheet 'plans', row {row}, column '{column}'" in why and fragment in why, why
    assert book.unusable_plan("plan:p").startswith(f"plan 'p' of scenario '{scenario}': ")


def test_plans_round_trip_through_the_writer(tmp_path):
    book = load_workbook(_book(tmp_path, [["s1", "mine", "b", 2, 3], ["s1", "mine", "a", 1, 5]]))
    out = tmp_path / "out.xlsx"
    save_scenarios(out, book.scenarios, plans=book.plans)
    again = load_workbook(out)
    assert again.plans == (NamedPlan("s1", "mine", (("a",), ("b",)), (("a", 5), ("b", 3)), ((2,), (3,))),)


@pytest.mark.parametrize("rows,row,column,fragment", [
    ([["s1", "p", "zz", 1, 1], ["s1", "p", "a", 1, 1]], 2, "user", "a user of scenario 's1'"),
    ([["s1", "p", "a", 1, 6], ["s1", "p", "b", 1, 1]], 2, "draft_length", "1..5 (max_draft_length of 's1'; plan 'p')"),
])
def test_plan_problems_through_the_command_line(tmp_path, run_cli, rows, row, column, fragment):
    path = _book(tmp_path, rows)
    code, _, err = run_cli("check", path)
    assert code == 2 and "Traceback" not in err
    assert any(f"p.xlsx, sheet 'plans', row {row}, column '{column}'" in line and fragment in line for line in err.splitlines()), err
