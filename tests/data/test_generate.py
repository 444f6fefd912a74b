"""Template, generator and writer: round trips and determinism."""

from __future__ import annotations

from dipsd import load_workbook
from dipsd.commands.template import template_scenario
from dipsd.data.generate import generate
from dipsd.data.writer import save_scenarios


def test_template_loads_back_to_the_scenario_it_describes(tmp_path, run_cli):
    path = str(tmp_path / "t.xlsx")
    code, out, _ = run_cli("template", path)
    assert code == 0
    book = load_workbook(path)
    assert book.scenarios == (template_scenario(),)
    (s,) = book.scenarios
    assert s.num_users == 6 and sum(u.acceptance is not None for u in s.users) == 1
    import openpyxl
    readme = openpyxl.load_workbook(path)["README"]
    documented = {row[1] for row in readme.iter_rows(values_only=True)}
    assert {"alpha", "memory_cap_bytes", "expected_tokens", "max_batches"} <= documented


def test_generate_is_seeded_and_round_trips(tmp_path, run_cli):
    a, b, c = (str(tmp_path / f"{n}.xlsx") for n in "abc")
    assert run_cli("generate", a, "--users", "3,4", "--per-size", "4", "--seed", "7")[0] == 0
    assert run_cli("generate", b, "--users", "3,4", "--per-size", "4", "--seed", "7")[0] == 0
    assert run_cli("generate", c, "--users", "3,4", "--per-size", "4", "--seed", "8")[0] == 0
    sa, sb, sc = (load_workbook(p).scenarios for p in (a, b, c))
    assert sa == sb and sa != sc
    assert sa == tuple(generate([3, 4], 4, 7, "heterogeneous"))


def test_heterogeneous_profile_varies_what_it_promises():
    scenarios = generate([6], 30, seed=3, profile="heterogeneous")
    users = [u for s in scenarios for u in s.users]
    assert len({u.alpha for u in users}) > 50
    assert len({u.draft.c_ms_per_flop for u in users}) > 20 and len({u.prefix_len for u in users}) > 3
    assert any(u.acceptance for u in users)
    assert any(s.max_batch_size(max(u.prefix_len for u in s.users)) < s.num_users for s in scenarios)
    assert all(s.max_batch_size(max(u.prefix_len for u in s.users)) >= 1 for s in scenarios)


def test_paper_profile_is_homogeneous():
    for s in generate([2, 5], 2, seed=1, profile="paper"):
        assert len({(u.alpha, u.prefix_len) for u in s.users}) == 1


def test_writer_keeps_formula_looking_names_as_text(tmp_path):
    from dipsd import Scenario, User
    s = Scenario('=HYPERLINK("http://x","y")', (User("=1+1"), User("b")))
    path = tmp_path / "f.xlsx"
    save_scenarios(path, [s])
    assert load_workbook(path).scenarios == (s,)
