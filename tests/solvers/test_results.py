"""The result record: every field round-trips through JSON and the checkpoint; bad shapes are named."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dipsd import load_workbook
from dipsd.data.bundled import example_path
from dipsd.solvers.registry import run_method
from dipsd.solvers.results import Record, SolveResult, Status
from dipsd.study import Checkpoint

names = st.text(min_size=1, max_size=12)
numbers = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64))


@st.composite
def records(draw):
    users = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    plan = draw(st.booleans())
    cut = draw(st.integers(1, len(users)))
    return Record(
        scenario=draw(names), method=draw(names), status=draw(st.sampled_from(list(Status))),
        throughput_tps=draw(numbers), upper_bound_tps=draw(numbers),
        batches=(tuple(users[:cut]), tuple(users[cut:])) if plan and cut < len(users) else ((tuple(users),) if plan else None),
        draft_lengths=tuple((u, draw(st.integers(1, 64))) for u in users) if plan else None,
        span_ms=draw(numbers), expected_tokens=draw(numbers), iterations=draw(st.integers(0, 10**6)),
        runtime_s=draw(st.floats(0, 1e6)), message=draw(st.text(max_size=30)),
    )


@given(records())
def test_every_field_round_trips_through_json(record):
    again = Record.from_json(json.loads(json.dumps(record.to_json())))
    assert again == record
    assert again.status is record.status  # an enum, not its text


def test_every_field_round_trips_through_the_checkpoint(tmp_path):
    path = str(tmp_path / "c.jsonl")
    kept = [Record("s1", "dipsd", Status.FEASIBLE, 12.5, None, (("a", "b"), ("=c",)), (("a", 3), ("b", 1), ("=c", 20)),
                   100.125, 7.5, 4, 0.25, "4 rounds"),
            Record("s1", "exact", Status.OPTIMAL, 13.0, 13.0000001, (("a",), ("b", "=c")), (("a", 2), ("b", 2), ("=c", 2)),
                   90.0, 6.0, 2, 1.5, "F(q) <= 0"),
            Record("s2", "ad", Status.FEASIBLE, 3.0, None, (("x",),), None, 333.3, 1.0, 0, 0.0, "target only"),
            Record("s2", "exact", Status.NO_PLAN, message="time limit before any plan")]
    failed = Record.failed("s2", "certify", "ValueError: boom", 0.5)
    header = {"workbook": "w.xlsx", "methods": ["dipsd"]}
    ckpt = Checkpoint(path, header, resume=False)
    for r in kept + [failed]:
        ckpt.add(r)
    ckpt.close()
    again = Checkpoint(path, header, resume=True)
    again.close()
    assert list(again.records.values()) == kept  # error records are not kept: their tasks run again


@pytest.mark.parametrize("data,named", [
    ({"method": "m", "status": "optimal"}, "'scenario'"),
    ({"scenario": "s", "method": "m", "status": "solved"}, "'status'"),
    ({"scenario": "s", "method": "m", "status": "optimal", "throughput_tps": True}, "'throughput_tps'"),
    ({"scenario": "s", "method": "m", "status": "optimal", "throughput_tps": "12"}, "'throughput_tps'"),
    ({"scenario": "s", "method": "m", "status": "optimal", "span_ms": float("nan")}, "'span_ms'"),
    ({"scenario": "s", "method": "m", "status": "optimal", "batches": [["a", 1]]}, "'batches'"),
    ({"scenario": "s", "method": "m", "status": "optimal", "draft_lengths": {"a": 2.5}}, "'draft_lengths'"),
    ({"scenario": "s", "method": "m", "status": "optimal", "iterations": "3"}, "'iterations'"),
    ([1, 2], "JSON object"),
])
def test_a_bad_record_names_what_is_wrong(data, named):
    with pytest.raises(ValueError, match=named):
        Record.from_json(data)


def test_a_solver_result_and_its_record_describe_the_same_plan():
    book = load_workbook(example_path())
    s = book.scenarios[0]
    for method in ("dipsd", "ad-batch", "certify"):
        result = run_method(method, s, time_limit=20)
        record = result.record(s)
        back = SolveResult.from_record(Record.from_json(json.loads(json.dumps(record.to_json()))), s)
        assert back.status is result.status and back.throughput_tps == pytest.approx(result.throughput_tps, rel=1e-12)
        assert record.num_batches == len(result.batches) and back.upper_bound_tps == record.upper_bound_tps
        if result.plan is not None:
            assert dict(record.draft_lengths) == {u.name: l for u, l in zip(s.users, result.plan.lengths)}
