"""Resumed work is re-checked, not trusted: tampered checkpoint records are dropped, named and re-run;
the audit's own rules on hand-made records; a start that its own plan refutes is ignored."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from dipsd import evaluate, load_workbook
from dipsd.data.generate import generate
from dipsd.data.writer import save_scenarios
from dipsd.formulation.plan import Plan
from dipsd.reports.frames import read_report
from dipsd.solvers.audit import audit, conflicts, record_problem
from dipsd.solvers.exact import solve_exact
from dipsd.solvers.registry import run_method
from dipsd.solvers.results import Record, Status

METHODS = "dipsd,certify,exact"


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit") / "book.xlsx"
    save_scenarios(path, generate([4, 5], 1, seed=8, max_draft_length=4))
    return str(path)


def _study(run_cli, book, out, *extra):
    return run_cli("study", book, "--out", out, "--methods", METHODS, "--workers", "1", "--quiet", *extra)


def _lines(path):
    with open(path) as fh:
        return fh.read().splitlines()


def _tamper(path, pick, change):
    """Change the first record for which ``pick(record)`` holds, and sign it again with the user's key (a
    forger who has the key: the signature alone would drop it, and this tests the closed-form re-check
    behind it); its 1-based line number."""
    from dipsd.study.checkpoint import signed, signing_key

    lines = _lines(path)
    study = json.loads(lines[0])["scenarios_sha256"]
    for i, line in enumerate(lines[1:], start=1):
        data = json.loads(line)
        if pick(data):
            lines[i] = json.dumps(signed(change(data), study, signing_key()))
            with open(path, "w") as fh:
                fh.write("\n".join(lines) + "\n")
            return i + 1, data
    raise AssertionError("no record to tamper with")


def _weak_plan(scenario_name, book):
    """A feasible but poor plan of the scenario, as record fields (every user alone at length 1)."""
    s = {x.name: x for x in load_workbook(book).scenarios}[scenario_name]
    plan = Plan(tuple((m,) for m in range(s.num_users)), (1,) * s.num_users)
    ev = evaluate(s, plan)
    assert ev.feasible
    names = [u.name for u in s.users]
    return {"batches": [[names[m] for m in b] for b in plan.batches], "draft_lengths": {n: 1 for n in names},
            "num_batches": plan.num_batches, "throughput_tps": ev.throughput_tps, "span_ms": ev.span_ms,
            "expected_tokens": ev.expected_tokens}


def _is(method):
    return lambda d: d["method"] == method


TAMPERS = {
    "edited throughput": (_is("dipsd"), lambda d, book: {**d, "throughput_tps": 987.65}, "closed-form value"),
    "bound below a plan": (_is("certify"), lambda d, book: {**d, "upper_bound_tps": d["throughput_tps"] * 0.9},
                           "below its own plan"),
    "plan missing a user": (_is("dipsd"), lambda d, book: {**d, "batches": [b for b in d["batches"][1:]] or [[]]},
                            "not a plan of the scenario"),
    "false optimal": (_is("certify"), lambda d, book: {**d, **_weak_plan(d["scenario"], book), "status": "optimal",
                                                        "upper_bound_tps": _weak_plan(d["scenario"], book)["throughput_tps"]},
                      "'s plan ("),  # its bound (= its weak plan) is refuted by another method's plan
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(TAMPERS))
def test_a_tampered_record_is_dropped_named_and_run_again(book, tmp_path, run_cli, caplog, kind):
    out = str(tmp_path / "r.xlsx")
    code, _, err = _study(run_cli, book, out)
    assert code == 0, err
    clean = {(json.loads(x)["scenario"], json.loads(x)["method"]): json.loads(x) for x in _lines(out + ".jsonl")[1:]}
    pick, change, why = TAMPERS[kind]
    number, original = _tamper(out + ".jsonl", pick, lambda d: change(d, book))
    with caplog.at_level(logging.WARNING):
        code, _, err = _study(run_cli, book, out, "--resume")
    assert code == 0, err
    warned = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert any(f"line {number}:" in w and why in w and original["method"] in w for w in warned), warned
    assert "Traceback" not in err
    again = {(json.loads(x)["scenario"], json.loads(x)["method"]): json.loads(x) for x in _lines(out + ".jsonl")[1:]}
    key = (original["scenario"], original["method"])
    # the task ran again: its record is the honest one (same plan value as the clean run)
    assert again[key]["throughput_tps"] == pytest.approx(clean[key]["throughput_tps"], rel=1e-9)
    results = read_report(out)["Results"]
    row = results[(results.scenario == key[0]) & (results.method == key[1])].iloc[0]
    assert row.throughput_tps == pytest.approx(clean[key]["throughput_tps"], rel=1e-9)
    assert (results.gap_pct.dropna() >= 0).all() and (results.certified_gap_pct.dropna() >= 0).all()
    run = read_report(out)["Run"]
    assert run.astype(str).apply(lambda col: col.str.contains("consistency check")).any().any()


def test_audit_rules_on_hand_made_records():
    (s,) = generate([4], 1, seed=3, max_draft_length=3)
    good = run_method("certify", s, time_limit=30)
    d = run_method("dipsd", s)
    rec, drec = good.record(s), d.record(s)
    assert record_problem(rec, s) is None and record_problem(drec, s) is None
    assert conflicts([rec, drec]) == []
    low = dataclasses.replace(rec, upper_bound_tps=drec.throughput_tps * (1 - 1e-9))
    assert record_problem(low, s) is not None or conflicts([low, drec])
    odd = dataclasses.replace(rec, status=Status.OPTIMAL, throughput_tps=None, batches=None, draft_lengths=None)
    assert "without a plan" in record_problem(odd, s)
    assert audit([rec, drec, low], {s.name: s})  # a bound below a plan is a failed consistency check
    assert audit([rec, drec], {s.name: s}) == []


def test_exact_ignores_a_given_bound_that_its_start_plan_refutes(caplog):
    (s,) = generate([4], 1, seed=3, max_draft_length=3)
    d = run_method("dipsd", s)
    with caplog.at_level(logging.WARNING):
        e = solve_exact(s, start_plan=d.plan, known_bound_tps=d.throughput_tps * 0.5)
    assert "ignored" in caplog.text
    brute = run_method("enumerate", s)
    assert e.status is Status.OPTIMAL and e.throughput_tps == pytest.approx(brute.throughput_tps, rel=1e-9)
    assert e.upper_bound_tps >= brute.throughput_tps


def test_a_start_record_that_fails_the_audit_is_not_used(caplog):
    from dipsd.study import Task, run_task

    (s,) = generate([4], 1, seed=3, max_draft_length=3)
    d = run_method("dipsd", s).record(s)
    tampered = dataclasses.replace(d, throughput_tps=d.throughput_tps * 2, upper_bound_tps=d.throughput_tps * 2)
    with caplog.at_level(logging.WARNING):
        out = run_task(Task(s, "exact", 30.0, start=tampered))
    assert "ignored" in caplog.text and out.status is Status.OPTIMAL
    assert out.throughput_tps == pytest.approx(run_method("enumerate", s).throughput_tps, rel=1e-9)
    assert isinstance(out, Record)
