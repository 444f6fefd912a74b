"""The workbook loader: every way to reject input, through the API and the command line."""

from __future__ import annotations

import copy
import zipfile

import pytest

from dipsd import WorkbookError, load_workbook
from dipsd.data import defaults as D
from dipsd.data.scenario import TargetModel
from tests.conftest import good_sheets, write_book


def test_good_workbook_defaults_and_overrides(tmp_path):
    book = load_workbook(write_book(tmp_path / "w.xlsx", good_sheets()))
    s1, s2 = book.scenarios
    assert [u.name for u in s1.users] == ["a", "b"]
    assert s1.users[0].alpha == 0.8 and s1.users[0].prefix_len == 256  # scenario default, own value
    assert s1.users[1].alpha == 0.6 and s1.users[1].prefix_len == D.PREFIX_LEN
    assert s2.users[0].alpha == D.ALPHA and s2.max_draft_length == 4
    assert (s1.min_batches, s1.max_batches) == (2, 2)
    assert (s2.min_batches, s2.max_batches) == (1, 1)  # a single user: N = 1
    assert s1.target == TargetModel()
    assert len(book.sha256) == 64


def _problems(tmp_path, sheets):
    path = write_book(tmp_path / "bad.xlsx", sheets)
    with pytest.raises(WorkbookError) as err:
        load_workbook(path)
    return err.value.problems


def _mutate(fn):
    sheets = copy.deepcopy(good_sheets())
    fn(sheets)
    return sheets


def _set(sheet, row, col, value):
    def fn(sheets):
        header = sheets[sheet][0]
        if col not in header:
            for r in sheets[sheet]:
                r.append(None)
            header[-1] = col
        sheets[sheet][row - 1][header.index(col)] = value
    return fn


def _acc(rows):
    def fn(sheets):
        sheets["acceptance"] = [["scenario", "user", "draft_length", "expected_tokens"]] + rows
    return fn


FULL = [["s1", "a", k, 1 + 0.5 * k] for k in range(1, 6)]

# (id, mutation, sheet, excel row, column, fragment of the allowed text)
CASES = [
    ("no-scenarios-sheet", lambda s: s.pop("scenarios"), "scenarios", None, None, "missing"),
    ("no-users-sheet", lambda s: s.pop("users"), "users", None, None, "missing"),
    ("required-column-missing", lambda s: [r.pop(1) for r in s["users"]], "users", 1, "user", "required column missing"),
    ("unknown-column", lambda s: s["users"][0].__setitem__(2, "alpah"), "users", 1, "alpah", "did you mean 'alpha'"),
    ("blank-required", _set("users", 3, "user", None), "users", 3, "user", "required"),
    ("non-numeric", _set("users", 2, "alpha", "high"), "users", 2, "alpha", "not a number"),
    ("non-integer", _set("scenarios", 2, "target_blocks", 3.5), "scenarios", 2, "target_blocks", "whole number"),
    ("alpha-above-1", _set("users", 3, "alpha", 1.5), "users", 3, "alpha", "[0, 1]"),
    ("alpha-negative", _set("scenarios", 3, "alpha", -0.1), "scenarios", 3, "alpha", "[0, 1]"),
    ("zero-latency", _set("users", 2, "comm_latency_ms", 0), "users", 2, "comm_latency_ms", "> 0"),
    ("negative-beta", _set("scenarios", 2, "verify_beta_ms", -1), "scenarios", 2, "verify_beta_ms", ">= 1e-06"),
    ("zero-size", _set("users", 2, "draft_hidden", 0), "users", 2, "draft_hidden", ">= 1"),
    ("zero-memory", _set("scenarios", 2, "memory_cap_bytes", 0), "scenarios", 2, "memory_cap_bytes", "> 0"),
    ("lub-zero", _set("scenarios", 2, "max_draft_length", 0), "scenarios", 2, "max_draft_length", "<= 64"),
    ("lub-too-big", _set("scenarios", 2, "max_draft_length", 65), "scenarios", 2, "max_draft_length", "<= 64"),
    ("min-above-max", lambda s: (_set("scenarios", 2, "min_batches", 2)(s), _set("scenarios", 2, "max_batches", 1)(s)),
     "scenarios", 2, "min_batches", "at most max_batches"),
    ("max-above-users", _set("scenarios", 2, "max_batches", 3), "scenarios", 2, "max_batches", "[1, 2]"),
    ("min-zero", _set("scenarios", 2, "min_batches", 0), "scenarios", 2, "min_batches", ">= 1"),
    ("duplicate-scenario", lambda s: s["scenarios"].append(["s1", 3, None]), "scenarios", 4, "scenario", "unique"),
    ("duplicate-user", lambda s: s["users"].append(["s1", "a", None, None]), "users", 5, "user", "unique within scenario"),
    ("unknown-scenario", lambda s: s["users"].append(["s9", "z", None, None]), "users", 5, "scenario", "a scenario of sheet"),
    ("scenario-without-users", lambda s: s["scenarios"].append(["s3", 3, None]), "scenarios", 4, "scenario", "at least one user"),
    ("acceptance-incomplete", _acc(FULL[:4]), "acceptance", 2, "draft_length", "every draft length 1..5"),
    ("acceptance-decreasing", _acc(FULL[:2] + [["s1", "a", 3, 1.2]] + FULL[3:]), "acceptance", 4, "expected_tokens", "non-decreasing"),
    ("acceptance-above-k+1", _acc([["s1", "a", 1, 2.5]] + FULL[1:]), "acceptance", 2, "expected_tokens", "[1, 2]"),
    ("acceptance-below-1", _acc([["s1", "a", 1, 0.5]] + FULL[1:]), "acceptance", 2, "expected_tokens", "[1, 2]"),
    ("acceptance-unknown-user", _acc(FULL + [["s1", "q", 1, 1.5]]), "acceptance", 7, "user", "a user of scenario 's1'"),
    ("acceptance-k-too-big", _acc(FULL + [["s1", "a", 6, 2.0]]), "acceptance", 7, "draft_length", "1..5"),
    ("memory-params-alone", _set("scenarios", 2, "memory_cap_bytes", 4.0e10), "scenarios", 2, "memory_cap_bytes", "parameter memory"),
    ("memory-one-user-kv", _set("users", 2, "prefix_len", 1_000_000), "users", 2, "prefix_len", "fits the memory cap alone"),
    ("prefix-above-range", _set("users", 2, "prefix_len", 10_000_000), "users", 2, "prefix_len", "<= 1,048,576 tokens"),
    ("latency-above-range", _set("users", 2, "comm_latency_ms", 1e20), "users", 2, "comm_latency_ms", "<= 600000 ms"),
    ("slope-above-range", _set("users", 2, "draft_c_ms_per_flop", 1e300), "users", 2, "draft_c_ms_per_flop", "<= 1e-06 ms/FLOP"),
    ("server-intercept-below-floor", _set("scenarios", 2, "verify_beta_ms", 1e-9), "scenarios", 2, "verify_beta_ms",
     ">= 1e-06 and <= 600000 ms"),
]


@pytest.mark.parametrize("mutation,sheet,row,column,allowed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rejections_name_file_sheet_row_column(tmp_path, mutation, sheet, row, column, allowed):
    problems = _problems(tmp_path, _mutate(mutation))
    match = [p for p in problems if p.sheet == sheet and p.row == row and p.column == column]
    assert match, f"no problem at {sheet}/{row}/{column} in {problems}"
    assert allowed in match[0].allowed
    assert match[0].file == "bad.xlsx"


@pytest.mark.parametrize("mutation,sheet,row,column,allowed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rejections_through_cli(tmp_path, run_cli, mutation, sheet, row, column, allowed):
    path = write_book(tmp_path / "bad.xlsx", _mutate(mutation))
    code, out, err = run_cli("check", path)
    assert code == 2
    assert "Traceback" not in err
    line = next(line for line in err.splitlines() if allowed in line)
    assert line.startswith("dipsd: error: bad.xlsx")
    if row is not None:
        assert f"row {row}" in line and f"column '{column}'" in line
    assert f"sheet '{sheet}'" in line


def test_bad_value_shown_as_text_not_evaluated(tmp_path):
    problems = _problems(tmp_path, _mutate(_set("users", 2, "alpha", "'=1+1")))
    assert problems[0].value == "'=1+1"


def test_many_bad_cells_are_all_reported(tmp_path):
    def fn(s):
        for r in s["users"][1:]:
            r[2] = "bad"
        s["scenarios"][1][1] = 0.5
    problems = _problems(tmp_path, _mutate(fn))
    assert {(p.sheet, p.row) for p in problems} >= {("users", 2), ("users", 3), ("users", 4), ("scenarios", 2)}


def test_problem_list_is_capped(tmp_path):
    sheets = good_sheets()
    sheets["users"] += [["s1", f"u{i}", "bad", None] for i in range(80)]
    problems = _problems(tmp_path, sheets)
    assert len(problems) == 51 and "more problems" in problems[-1].allowed


def test_missing_file(tmp_path, run_cli):
    with pytest.raises(WorkbookError, match="file not found"):
        load_workbook(tmp_path / "nope.xlsx")
    code, _, err = run_cli("check", str(tmp_path / "nope.xlsx"))
    assert code == 2 and err.strip() == "dipsd: error: nope.xlsx: file not found"


@pytest.mark.parametrize("content", [b"scenario,alpha\ns1,0.5\n", b"PK\x03\x04truncated"], ids=["csv", "truncated"])
def test_not_a_workbook(tmp_path, run_cli, content):
    path = tmp_path / "fake.xlsx"
    path.write_bytes(content)
    with pytest.raises(WorkbookError, match="not a readable .xlsx workbook"):
        load_workbook(path)
    code, _, err = run_cli("check", str(path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_truncated_real_workbook(tmp_path):
    good = write_book(tmp_path / "good.xlsx", good_sheets())
    data = open(good, "rb").read()
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WorkbookError, match="not a readable"):
        load_workbook(cut)


def _rewrite_member(src, dst, member, transform):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == member:
                data = transform(data)
            zout.writestr(item, data)


def test_xml_bomb_is_refused(tmp_path, run_cli):
    good = write_book(tmp_path / "good.xlsx", good_sheets())
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i else b"&lol;") * 10) for i in range(1, 10))
            + b"]>")

    def transform(data):  # declared, not referenced: a failing guard must not exhaust the test machine
        body = data.split(b"?>", 1)[1] if data.startswith(b"<?xml") else data
        return bomb + body

    dst = tmp_path / "bomb.xlsx"
    _rewrite_member(good, dst, "xl/worksheets/sheet1.xml", transform)
    with pytest.raises(WorkbookError, match="not a readable"):
        load_workbook(dst)
    code, _, err = run_cli("check", str(dst))
    assert code == 2 and "Traceback" not in err


def test_formula_uses_cached_value_and_uncached_is_rejected(tmp_path):
    good = write_book(tmp_path / "good.xlsx", good_sheets())
    # users sheet is sheet2.xml; row 3 (user b) has alpha 0.6 in column C
    def with_cache(data):
        return data.replace(b'<c r="C3" t="n"><v>0.6</v></c>', b'<c r="C3"><f>0.3*2</f><v>0.6</v></c>')

    def without_cache(data):
        return data.replace(b'<c r="C3" t="n"><v>0.6</v></c>', b'<c r="C3"><f>0.3*2</f></c>')

    cached, uncached = tmp_path / "cached.xlsx", tmp_path / "uncached.xlsx"
    _rewrite_member(good, cached, "xl/worksheets/sheet2.xml", with_cache)
    _rewrite_member(good, uncached, "xl/worksheets/sheet2.xml", without_cache)
    assert b"<f>" in zipfile.ZipFile(cached).read("xl/worksheets/sheet2.xml")
    assert load_workbook(cached).scenarios[0].users[1].alpha == 0.6
    with pytest.raises(WorkbookError) as err:
        load_workbook(uncached)
    (p,) = err.value.problems
    assert (p.sheet, p.row, p.column) == ("users", 3, "alpha") and "cached value" in p.allowed


def test_other_sheets_and_blank_rows_are_ignored(tmp_path):
    sheets = good_sheets()
    sheets["notes"] = [["anything", "at all"], [1, 2]]
    sheets["users"].insert(2, [None, None, None, None])
    book = load_workbook(write_book(tmp_path / "w.xlsx", sheets))
    assert [len(s.users) for s in book.scenarios] == [2, 1]


def test_headers_are_trimmed_and_order_is_free(tmp_path):
    sheets = good_sheets()
    sheets["users"] = [[" prefix_len ", "user", "scenario ", "alpha"], [256, "a", "s1", None], [None, "b", "s1", 0.6], [None, "x", "s2",
                                                                                                                        None]]
    book = load_workbook(write_book(tmp_path / "w.xlsx", sheets))
    assert book.scenarios[0].users[0].prefix_len == 256


def test_acceptance_table_loaded(tmp_path):
    sheets = _mutate(_acc(FULL))
    book = load_workbook(write_book(tmp_path / "w.xlsx", sheets))
    a = book.scenarios[0].users[0]
    assert a.acceptance == (1.5, 2.0, 2.5, 3.0, 3.5) and a.expected_tokens(3) == 2.5
    assert book.scenarios[0].users[1].acceptance is None


def test_numbers_as_text_are_accepted(tmp_path):
    book = load_workbook(write_book(tmp_path / "w.xlsx", _mutate(_set("users", 3, "alpha", " 0.55 "))))
    assert book.scenarios[0].users[1].alpha == 0.55


# ---------------------------------------------------------------- sheets dipsd does not read (issue 38)
@pytest.mark.parametrize("name,meant", [("Acceptance", "acceptance"), ("Plans", "plans"), (" plans ", "plans"),
                                        ("acceptence", "acceptance"), ("Users", "users")])
def test_a_sheet_named_almost_like_ours_is_refused_with_a_hint(tmp_path, name, meant):
    sheets = good_sheets()
    if meant == "users":
        sheets[name] = sheets.pop("users")
    else:
        sheets[name] = [["scenario", "user", "draft_length", "expected_tokens"]]
    with pytest.raises(WorkbookError) as info:
        load_workbook(write_book(tmp_path / "w.xlsx", sheets))
    text = str(info.value)
    assert f"sheet '{name}' is not read: sheet names match exactly; did you mean '{meant}'?" in text
    assert "missing" not in text  # the root cause once, not also "sheet 'users' missing"


def test_other_sheets_are_listed_as_not_read(tmp_path, run_cli):
    sheets = good_sheets()
    sheets["my notes"] = [["anything"]]
    sheets["README"] = [["the template's explanations"]]
    path = write_book(tmp_path / "w.xlsx", sheets)
    assert load_workbook(path).unread == ("my notes",)
    code, out, _ = run_cli("check", path)
    assert code == 0 and "sheets not read: 'my notes'" in out and "README" not in out


def _template(tmp_path, run_cli, edit):
    """The template workbook (6 users, u1's measured table for 1..20, two plans), edited by ``edit(wb)``."""
    import openpyxl

    path = tmp_path / "t.xlsx"
    assert run_cli("template", str(path))[0] == 0
    wb = openpyxl.load_workbook(path)
    edit(wb)
    wb.save(path)
    return str(path)


def _column(ws, name):
    return [c.value for c in ws[1]].index(name) + 1


def test_a_scenario_refused_for_its_own_cell_raises_no_follow_on_errors(tmp_path, run_cli):
    """Issue 38, item 2: max_draft_length lowered to 16 refuses u1's table rows 17..20; the plans of the
    scenario are not reported again as naming an unknown scenario."""
    path = _template(tmp_path, run_cli, lambda wb: wb["scenarios"].cell(2, _column(wb["scenarios"], "max_draft_length"), 16))
    with pytest.raises(WorkbookError) as info:
        load_workbook(path)
    lines = str(info.value).splitlines()
    assert lines and all("draft_length" in line for line in lines), lines
    assert not any("a scenario of sheet 'scenarios'" in line for line in lines)


def test_a_user_refused_for_its_scenario_raises_no_follow_on_errors(tmp_path, run_cli):
    def edit(wb):
        wb["users"].cell(2, 1, "paper-6-user")  # u1's scenario mistyped; u1's measured table names u1
    path = _template(tmp_path, run_cli, edit)
    with pytest.raises(WorkbookError) as info:
        load_workbook(path)
    lines = str(info.value).splitlines()
    assert any("sheet 'users', row 2, column 'scenario'" in line and "did you mean 'paper-6-users'" in line for line in lines)
    assert not any("sheet 'acceptance'" in line for line in lines), lines


def test_a_user_name_typo_in_the_acceptance_table_is_one_problem_with_a_hint(tmp_path, run_cli):
    def edit(wb):
        ws = wb["acceptance"]
        for row in range(2, ws.max_row + 1):
            ws.cell(row, 2, "U1")
    path = _template(tmp_path, run_cli, edit)
    with pytest.raises(WorkbookError) as info:
        load_workbook(path)
    lines = [line for line in str(info.value).splitlines() if "sheet 'acceptance'" in line]
    assert len(lines) == 1 and "row 2, column 'user': bad value 'U1'" in lines[0]
    assert "did you mean 'u1'?" in lines[0] and "(and rows 3-21)" in lines[0]


# ---------------------------------------------------------------- acceptance from per-position rates (issue 38)
def _rates_book(tmp_path, column, values, user="a"):
    sheets = good_sheets()  # s1: L_ub 5, users a (alpha 0.8) and b
    sheets["acceptance"] = [["scenario", "user", "draft_length", column]] + [["s1", user, j, v] for j, v in enumerate(values, 1)]
    return write_book(tmp_path / "r.xlsx", sheets)


def test_a_constant_conditional_rate_is_the_closed_form(tmp_path):
    from dipsd import User

    table = load_workbook(_rates_book(tmp_path, "accept_prob", [0.78] * 5)).scenario("s1").users[0].acceptance
    closed = [User("x", alpha=0.78).expected_tokens(k) for k in range(1, 6)]
    assert table == pytest.approx(closed, rel=1e-14)


def test_rates_by_hand(tmp_path):
    # conditional 0.9, 0.5, 0.5, 0, 1: a = 0.9, 0.45, 0.225, 0, 0 -> u = 1.9, 2.35, 2.575, 2.575, 2.575
    table = load_workbook(_rates_book(tmp_path, "accept_prob", [0.9, 0.5, 0.5, 0.0, 1.0])).scenario("s1").users[0].acceptance
    assert table == pytest.approx((1.9, 2.35, 2.575, 2.575, 2.575), rel=1e-14)
    # unconditional shares 0.8, 0.6, 0.6, 0.1, 0 -> u = 1.8, 2.4, 3.0, 3.1, 3.1
    table = load_workbook(_rates_book(tmp_path, "accepted_share", [0.8, 0.6, 0.6, 0.1, 0.0])).scenario("s1").users[0].acceptance
    assert table == pytest.approx((1.8, 2.4, 3.0, 3.1, 3.1), rel=1e-14)


@pytest.mark.parametrize("column,values,row,fragment", [
    ("accepted_share", [0.8, 0.9, 0.5, 0.1, 0.0], 3, "non-increasing in draft_length for user 'a'"),
    ("accept_prob", [0.8, 1.2, 0.5, 0.1, 0.0], 3, "a number in [0, 1]"),
])
def test_bad_rates_are_located(tmp_path, column, values, row, fragment):
    with pytest.raises(WorkbookError) as info:
        load_workbook(_rates_book(tmp_path, column, values))
    assert f"sheet 'acceptance', row {row}, column '{column}'" in str(info.value) and fragment in str(info.value)


def test_one_kind_of_acceptance_per_user_and_row(tmp_path):
    sheets = good_sheets()
    sheets["acceptance"] = [["scenario", "user", "draft_length", "expected_tokens", "accept_prob"],
                            ["s1", "a", 1, 1.5, None], ["s1", "a", 2, None, 0.5], ["s1", "b", 1, 1.2, 0.4]]
    with pytest.raises(WorkbookError) as info:
        load_workbook(write_book(tmp_path / "m.xlsx", sheets))
    text = str(info.value)
    assert "row 3, column 'accept_prob': bad value '0.5': one kind of column per user" in text
    assert "row 4" in text and "exactly one of expected_tokens, accept_prob, accepted_share per row (this row gives 2)" in text


def test_new_refusals_through_the_command_line(tmp_path, run_cli):
    """A misnamed sheet and a rising accepted share: exit 2, file, sheet, row and column, no traceback."""
    sheets = good_sheets()
    sheets["Acceptance"] = [["scenario", "user", "draft_length", "expected_tokens"]]
    code, _, err = run_cli("check", write_book(tmp_path / "a.xlsx", sheets))
    assert code == 2 and "Traceback" not in err and "dipsd: error: a.xlsx, sheet 'Acceptance': sheet 'Acceptance' is not read" in err
    code, _, err = run_cli("check", _rates_book(tmp_path, "accepted_share", [0.5, 0.7, 0.2, 0.1, 0.0]))
    assert code == 2 and "Traceback" not in err
    assert "r.xlsx, sheet 'acceptance', row 3, column 'accepted_share': bad value '0.7'" in err
