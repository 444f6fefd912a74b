"""Per-user draft limits (sheet 'users', column max_draft_length): loaded, validated with their
location, acceptance tables ending at the user's limit, written back, and respected by plans."""

from __future__ import annotations

import pytest

from dipsd import Plan, PlanError, WorkbookError, evaluate, load_workbook
from dipsd.data.writer import save_scenarios
from tests.conftest import good_sheets, write_book


def _sheets(limit_a, acceptance_rows=()):
    sheets = good_sheets()  # s1: L_ub 5, users a, b; s2: L_ub 4, user x
    sheets["users"] = [["scenario", "user", "alpha", "prefix_len", "max_draft_length"],
                       ["s1", "a", None, 256, limit_a], ["s1", "b", 0.6, None, None], ["s2", "x", None, None, None]]
    if acceptance_rows:
        sheets["acceptance"] = [["scenario", "user", "draft_length", "expected_tokens"], *acceptance_rows]
    return sheets


def test_a_user_limit_loads_and_binds_plans(tmp_path):
    book = load_workbook(write_book(tmp_path / "l.xlsx", _sheets(2, [["s1", "a", 1, 1.5], ["s1", "a", 2, 2.0]])))
    s = book.scenario("s1")
    assert s.limits == (2, 5) and s.users[0].acceptance == (1.5, 2.0)
    assert evaluate(s, Plan(((0,), (1,)), (2, 5))).feasible
    with pytest.raises(PlanError, match="outside 1..2"):
        evaluate(s, Plan(((0,), (1,)), (3, 5)))
    out = tmp_path / "back.xlsx"
    save_scenarios(out, book.scenarios)
    again = load_workbook(out)
    assert again.scenario("s1").limits == (2, 5) and again.fingerprint == book.fingerprint
    plain = load_workbook(write_book(tmp_path / "p.xlsx", _sheets(None)))
    assert plain.fingerprint != book.fingerprint


@pytest.mark.parametrize("limit,rows,column,fragment", [
    (6, (), "max_draft_length", "1..5 (the max_draft_length of scenario 's1')"),
    (2, [["s1", "a", 1, 1.5], ["s1", "a", 2, 2.0], ["s1", "a", 3, 2.1]], "draft_length", "1..2 (max_draft_length of user 'a')"),
    (3, [["s1", "a", 1, 1.5], ["s1", "a", 2, 2.0]], "draft_length", "every draft length 1..3 of user 'a'"),
])
def test_limit_problems_are_located(tmp_path, limit, rows, column, fragment):
    with pytest.raises(WorkbookError) as info:
        load_workbook(write_book(tmp_path / "bad.xlsx", _sheets(limit, rows)))
    assert any(p.column == column and fragment in p.allowed for p in info.value.problems), info.value.problems


def test_methods_respect_the_limits():
    """DiP-SD, certify and exact never give a user a length above its limit, and agree with brute force."""
    from dipsd import paper_scenario
    from dipsd.solvers.registry import run_method

    s = paper_scenario(4, max_draft_length=6)
    s = s.with_(users=tuple(u if i % 2 else type(u)(**{**u.__dict__, "max_draft_length": 1}) for i, u in enumerate(s.users)))
    best = run_method("enumerate", s)
    for method in ("dipsd", "sd-nobatch", "certify", "exact"):
        r = run_method(method, s, time_limit=30)
        assert all(length <= limit for length, limit in zip(r.plan.lengths, s.limits)), method
        assert r.throughput_tps <= best.throughput_tps * (1 + 1e-12)
    assert run_method("exact", s, time_limit=30).throughput_tps == pytest.approx(best.throughput_tps, rel=1e-9)
    assert run_method("certify", s, time_limit=30).upper_bound_tps >= best.throughput_tps


def test_a_limit_problem_through_the_command_line(tmp_path, run_cli):
    code, _, err = run_cli("check", write_book(tmp_path / "bad.xlsx", _sheets(6)))
    assert code == 2 and "Traceback" not in err
    assert "bad.xlsx, sheet 'users', row 2, column 'max_draft_length'" in err and "1..5" in err
