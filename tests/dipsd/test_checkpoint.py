"""Checkpoint lines are signed with the user's key: an edited, copied or foreign record is never
trusted on resume (issue 37), and the key is kept as a secret file."""

from __future__ import annotations

import json
import os
import stat

import pytest

from dipsd.data.generate import generate
from dipsd.data.writer import save_scenarios
from dipsd.study import checkpoint as C

LINE = {"scenario": "s", "method": "certify", "status": "feasible", "throughput_tps": 41.5932, "upper_bound_tps": 41.6531}


def test_a_signature_holds_only_for_the_same_line_study_and_key():
    key, other = b"k" * 32, b"o" * 32
    line = C.signed(LINE, "study-a", key)
    assert C.signature_ok(line, "study-a", key)
    assert C.signature_ok(json.loads(json.dumps(line)), "study-a", key)  # survives a JSON round trip
    assert not C.signature_ok({**line, "upper_bound_tps": 41.5932}, "study-a", key)  # a bound lowered by hand
    assert not C.signature_ok({**line, "extra": 1}, "study-a", key)
    assert not C.signature_ok(line, "study-b", key)  # copied from another study
    assert not C.signature_ok(line, "study-a", other)  # written under another user's key
    assert not C.signature_ok(LINE, "study-a", key)  # unsigned


def test_the_key_is_created_once_as_a_secret_file(tmp_path, monkeypatch):
    path = tmp_path / "cfg" / "dipsd" / "checkpoint.key"
    monkeypatch.setenv(C.KEY_ENV, str(path))
    key = C.signing_key()
    assert len(key) == 32 and C.signing_key() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_a_key_that_cannot_be_kept_is_a_warning_and_a_process_key(tmp_path, monkeypatch, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv(C.KEY_ENV, str(blocked / "checkpoint.key"))
    monkeypatch.setattr(C, "_ephemeral", None)
    key = C.signing_key()
    assert len(key) == 32 and C.signing_key() == key and "cannot be used" in caplog.text


def test_a_key_file_behind_a_link_is_not_used(tmp_path, monkeypatch):
    real = tmp_path / "real.key"
    real.write_bytes(b"x" * 32)
    os.symlink(real, tmp_path / "link.key")
    monkeypatch.setenv(C.KEY_ENV, str(tmp_path / "link.key"))
    monkeypatch.setattr(C, "_ephemeral", None)
    assert C.signing_key() != b"x" * 32


@pytest.fixture
def book(tmp_path):
    path = tmp_path / "b.xlsx"
    save_scenarios(path, generate([5], 1, seed=19, max_draft_length=3))  # DiP-SD 65.82, the optimum 66.83 tok/s
    return str(path)


def _lines(path):
    return [json.loads(line) for line in open(path).read().splitlines()]


def _write(path, lines):
    with open(path, "w") as fh:
        fh.write("".join(json.dumps(line) + "\n" for line in lines))


PLAN_FIELDS = ("throughput_tps", "batches", "draft_lengths", "span_ms", "expected_tokens")


@pytest.mark.parametrize("signatures", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_an_edited_bound_never_makes_exact_claim_a_wrong_optimum(book, tmp_path, run_cli, monkeypatch, signatures):
    """Issue 37, case 2: certify's record edited to DiP-SD's (suboptimal) plan with its bound lowered to
    that plan's value, exact's record removed.  With signatures the edited record is named and run again
    and exact's optimum is the true one; without them (the check patched away) exact would start from
    the forged bound and claim optimal 1.5 % below the optimum: the instance is a real attack."""
    out = str(tmp_path / "r.xlsx")
    code, _, err = run_cli("study", book, "--out", out, "--methods", "dipsd,certify,exact", "--workers", "1", "--quiet")
    assert code == 0, err
    lines = _lines(out + ".jsonl")
    by = {line.get("method"): i for i, line in enumerate(lines)}
    optimum, heuristic = lines[by["exact"]]["throughput_tps"], lines[by["dipsd"]]["throughput_tps"]
    assert lines[by["exact"]]["status"] == "optimal" and heuristic < optimum * (1 - 1e-3)
    forged = dict(lines[by["certify"]], **{k: lines[by["dipsd"]][k] for k in PLAN_FIELDS}, upper_bound_tps=heuristic)
    lines[by["certify"]] = forged
    _write(out + ".jsonl", [line for line in lines if line.get("method") != "exact"])
    if not signatures:
        monkeypatch.setattr(C, "signature_ok", lambda line, study, key: True)
    code, _, err = run_cli("study", book, "--out", out, "--methods", "dipsd,certify,exact", "--workers", "1", "--quiet",
                           "--resume")
    assert code == 0 and "Traceback" not in err
    again = {line["method"]: line for line in _lines(out + ".jsonl")[1:]}
    if not signatures:  # what the signatures prevent
        assert again["exact"]["status"] == "optimal" and again["exact"]["throughput_tps"] < optimum * (1 - 1e-3)
        return
    assert f"line {by['certify'] + 1}: " in err and "certify dropped: its signature does not match" in err
    assert again["exact"]["status"] == "optimal"
    assert again["exact"]["throughput_tps"] == pytest.approx(optimum, rel=1e-9)
    assert again["certify"]["upper_bound_tps"] >= optimum * (1 - 1e-12)


@pytest.mark.slow
def test_records_written_under_another_key_all_run_again(book, tmp_path, run_cli, monkeypatch):
    out = str(tmp_path / "r.xlsx")
    code, _, err = run_cli("study", book, "--out", out, "--methods", "dipsd,ad", "--workers", "1", "--quiet")
    assert code == 0, err
    monkeypatch.setenv(C.KEY_ENV, str(tmp_path / "another-user.key"))
    code, _, err = run_cli("study", book, "--out", out, "--methods", "dipsd,ad", "--workers", "1", "--quiet", "--resume")
    assert code == 0 and "the header's signature does not match" in err
    assert all(C.signature_ok(line, _lines(out + ".jsonl")[0]["scenarios_sha256"], C.signing_key())
               for line in _lines(out + ".jsonl"))


def test_a_user_method_changed_between_runs_is_refused_on_resume(book, tmp_path, run_cli, monkeypatch):
    """Issue 37, case 6: a plugin upgraded between runs (its code changed) is a difference like any other."""
    import importlib
    import sys

    from dipsd.solvers.catalog import register_method
    from dipsd.solvers.registry import METHODS

    source = tmp_path / "mine_v.py"
    source.write_text("from tests.solvers.user_methods import packed_at_three as run\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = str(tmp_path / "r.xlsx")
    try:
        register_method("mine", "mine_v:run")
        code, _, err = run_cli("study", book, "--out", out, "--methods", "ad,mine", "--workers", "1", "--quiet")
        assert code == 0, err
        assert "code sha256" in _lines(out + ".jsonl")[0]["user_methods"]["mine"]
        code, _, err = run_cli("study", book, "--out", out, "--methods", "ad,mine", "--workers", "1", "--quiet", "--resume")
        assert code == 0, err  # the same code: resumed
        source.write_text("from tests.solvers.user_methods import everyone_alone as run\n")  # version 0.2
        sys.modules.pop("mine_v", None)
        importlib.invalidate_caches()
        register_method("mine", "mine_v:run")
        code, _, err = run_cli("study", book, "--out", out, "--methods", "ad,mine", "--workers", "1", "--quiet", "--resume")
        assert code == 2 and "cannot resume, the study changed (user_methods" in err and "Traceback" not in err
    finally:
        METHODS.pop("mine", None)
        sys.modules.pop("mine_v", None)
