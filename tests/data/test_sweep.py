"""``dipsd sweep``: a grid over one scenario, written as a workbook, validated, run as a study."""

from __future__ import annotations

import json

import pytest

from dipsd import InputError, load_workbook
from dipsd.data.bundled import example_path
from dipsd.data.sweep import parse_vary, write_grid


def test_the_grid_sets_every_column_and_clones_users(tmp_path):
    book = load_workbook(example_path())
    base = book.scenario("het-M3-1")
    grid = write_grid(book, "het-M3-1", parse_vary(["alpha=0.6,0.9", "users=2,7", "verify_beta_ms=50"]), str(tmp_path / "g.xlsx"))
    assert [s.name for s in grid.scenarios] == [f"het-M3-1-alpha={a}-users={m}-verify_beta_ms=50" for a in (0.6, 0.9) for m in (2, 7)]
    for s in grid.scenarios:
        m = int(s.name.split("users=")[1].split("-")[0])
        assert s.num_users == m and s.target.beta_ms == 50 and s.batch_range == range(1 if m == 1 else 2, m + 1)
        assert {u.alpha for u in s.users} == {float(s.name.split("alpha=")[1].split("-")[0])}  # every user, own values too
        for i, u in enumerate(s.users):  # clones keep their original's device and prefix
            original = base.users[i % base.num_users]
            assert (u.prefix_len, u.draft, u.comm_latency_ms) == (original.prefix_len, original.draft, original.comm_latency_ms)
        assert [u.name for u in s.users][:4] == ["u1", "u2", "u3", "u1-2"][:m]


def test_bad_grids_are_refused_naming_why(tmp_path):
    book = load_workbook(example_path())
    with pytest.raises(InputError, match="unknown column 'alpah'; did you mean 'alpha'"):
        parse_vary(["alpah=1"])
    with pytest.raises(InputError, match="whole numbers of users"):
        parse_vary(["users=2.5"])
    with pytest.raises(InputError, match="sheet 'scenarios', row 2, column 'alpha': bad value '1.5'"):
        write_grid(book, "het-M3-1", parse_vary(["alpha=1.5"]), str(tmp_path / "g.xlsx"))
    assert not (tmp_path / "g.xlsx").exists()  # nothing left behind


@pytest.mark.slow
def test_sweep_through_the_command_line_runs_the_grid_as_a_study(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("sweep", "--scenario", "het-M3-1", "--vary", "users=3,5", "--out", "grid.xlsx", "--study",
                             "--methods", "dipsd,ad", "--workers", "1", "--quiet", "--time-limit", "20")
    assert code == 0 and "wrote grid.xlsx: 2 scenarios" in err, err
    rows = [json.loads(line) for line in (tmp_path / "grid-report.xlsx.jsonl").read_text().splitlines()[1:]]
    assert {r["scenario"] for r in rows} == {"het-M3-1-users=3", "het-M3-1-users=5"} and len(rows) == 4
    code, _, err = run_cli("sweep", "--scenario", "het-M3-1", "--vary", "users=3", "--out", "grid.xlsx")
    assert code == 2 and "exists; dipsd does not overwrite it" in err
