"""Solver outcomes and results shared by every method (exact, brute force, heuristics, baselines)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from ..data.scenario import Scenario
from ..formulation.evaluate import Evaluation
from ..formulation.plan import Plan


class Status(enum.Enum):
    """How a method ended."""

    OPTIMAL = "optimal"
    """The plan is proven optimal (its throughput equals the certified upper bound)."""

    FEASIBLE = "feasible"
    """A feasible plan without a proof of optimality (heuristics, baselines, an iteration cap)."""

    TIME_LIMIT = "time_limit"
    """The time limit stopped the method; it returns its best plan and a certified bound."""

    WORK_LIMIT = "work_limit"
    """The work limit (``--work-limit``, counted in solver work units) stopped the method; it returns
    its best plan and a certified bound, the same on any machine (:mod:`dipsd.solvers.deadline`)."""

    NO_PLAN = "no_plan"
    """The time limit stopped the method before any feasible plan was found."""

    INFEASIBLE = "infeasible"
    """Proven: no plan satisfies the constraints (memory cap and batch range)."""

    ERROR = "error"
    """The method failed; ``message`` says why."""

    @property
    def has_plan(self) -> bool:
        return self in (Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT, Status.WORK_LIMIT)


@dataclass(frozen=True)
class Iteration:
    """One Dinkelbach iteration: ``F(q) = max U - q S`` solved as a MILP.

    ``q`` in tokens/ms; ``value`` is the MILP's incumbent ``F(q)`` (None without one),
    ``bound`` its dual bound (``inf`` when unknown); ``tokens``/``span_ms`` describe the
    maximizer, re-evaluated in closed form; ``milp_s`` is the solver's wall time.
    """

    q: float
    value: float | None
    bound: float
    tokens: float | None
    span_ms: float | None
    milp_s: float
    milp_status: str


@dataclass(frozen=True)
class ReferenceValue:
    """The value of a method that is not a plan of P (target-only decoding baselines):
    ``expected_tokens`` per round of ``span_ms`` over ``batches`` (forward passes).
    The names match :class:`Evaluation`'s, so a result reads either the same way."""

    batches: tuple[tuple[int, ...], ...]
    expected_tokens: float
    span_ms: float

    @property
    def throughput_tps(self) -> float:
        return 1000.0 * self.expected_tokens / self.span_ms


@dataclass(frozen=True)
class SolveResult:
    """The outcome of one method on one scenario.

    ``throughput_tps`` is the closed-form throughput of ``plan`` (tokens/s);
    ``upper_bound_tps`` a certified bound on the optimum (None when the method gives none).
    """

    scenario: str
    method: str
    status: Status
    plan: Plan | None
    evaluation: Evaluation | None
    upper_bound_tps: float | None
    runtime_s: float
    iterations: int = 0
    message: str = ""
    trace: tuple = field(default=())
    build_s: float = 0.0
    reference: ReferenceValue | None = None

    @property
    def _measured(self) -> Evaluation | ReferenceValue | None:
        return self.evaluation if self.evaluation is not None else self.reference

    @property
    def throughput_tps(self) -> float | None:
        return None if self._measured is None else self._measured.throughput_tps

    @property
    def span_ms(self) -> float | None:
        return None if self._measured is None else self._measured.span_ms

    @property
    def expected_tokens(self) -> float | None:
        return None if self._measured is None else self._measured.expected_tokens

    @property
    def batches(self) -> tuple[tuple[int, ...], ...] | None:
        if self.plan is not None:
            return self.plan.batches
        return None if self.reference is None else self.reference.batches

    @property
    def gap_bound(self) -> float | None:
        """Relative distance from the plan to the certified bound (0 when proven optimal)."""
        if self.upper_bound_tps is None or self.throughput_tps is None or not math.isfinite(self.upper_bound_tps):
            return None
        return max(0.0, (self.upper_bound_tps - self.throughput_tps) / self.upper_bound_tps)

    def record(self, scenario: Scenario | None) -> Record:
        """The result as a :class:`Record` (users by name; by index when no scenario is given)."""
        m = len(self.plan.lengths) if self.plan is not None else 0
        names = [u.name for u in scenario.users] if scenario is not None else [str(i) for i in range(max(m, _largest(self.batches) + 1))]
        bound = self.upper_bound_tps
        return Record(
            scenario=self.scenario, method=self.method, status=self.status, throughput_tps=self.throughput_tps,
            upper_bound_tps=bound if bound is not None and math.isfinite(bound) else None,
            batches=None if self.batches is None else tuple(tuple(names[i] for i in b) for b in self.batches),
            draft_lengths=None if self.plan is None else tuple((names[i], l) for i, l in enumerate(self.plan.lengths)),
            span_ms=self.span_ms, expected_tokens=self.expected_tokens, iterations=self.iterations,
            runtime_s=self.runtime_s, message=self.message,
        )

    def to_json(self, scenario: Scenario | None) -> dict:
        """The JSON of :meth:`record` (``dipsd solve --json``, the checkpoint)."""
        return self.record(scenario).to_json()

    @classmethod
    def from_record(cls, record: Record, scenario: Scenario) -> SolveResult:
        """The result a record describes: its plan re-evaluated in closed form (which must
        reproduce the recorded throughput), or for target-only baselines their recorded value."""
        from ..formulation.evaluate import evaluate

        plan = evaluation = reference = None
        if record.has_plan:
            plan = record.plan_of(scenario)
            evaluation = evaluate(scenario, plan)
        elif record.batches and record.throughput_tps is not None:
            index = {u.name: i for i, u in enumerate(scenario.users)}
            batches = tuple(tuple(index[n] for n in b) for b in record.batches)
            if record.expected_tokens is None or record.span_ms is None:
                raise ValueError(f"{record.scenario}/{record.method}: a target-only value needs its tokens and span")
            reference = ReferenceValue(batches, record.expected_tokens, record.span_ms)
        return cls(scenario=record.scenario, method=record.method, status=record.status, plan=plan,
                   evaluation=evaluation, upper_bound_tps=record.upper_bound_tps, runtime_s=record.runtime_s,
                   iterations=record.iterations, message=record.message, reference=reference)

    @classmethod
    def from_json(cls, data: dict, scenario: Scenario) -> SolveResult:
        return cls.from_record(Record.from_json(data), scenario)


@dataclass(frozen=True)
class Record:
    """One method's outcome on one scenario as plain, typed data: what the checkpoint stores and
    the statistics, the Excel report, the paper table and the DataFrames are made from.

    Users are named (``batches`` lists names in verification order, ``draft_lengths`` pairs a
    name with its length, in the scenario's user order); ``status`` is a :class:`Status`;
    ``throughput_tps`` and ``upper_bound_tps`` (a certified bound, finite or None) in tokens/s.
    :meth:`to_json` and :meth:`from_json` round-trip every field exactly (floats as ``repr``).
    """

    scenario: str
    method: str
    status: Status
    throughput_tps: float | None = None
    upper_bound_tps: float | None = None
    batches: tuple[tuple[str, ...], ...] | None = None
    draft_lengths: tuple[tuple[str, int], ...] | None = None
    span_ms: float | None = None
    expected_tokens: float | None = None
    iterations: int = 0
    runtime_s: float = 0.0
    message: str = ""

    @property
    def num_batches(self) -> int | None:
        return None if self.batches is None else len(self.batches)

    @property
    def has_plan(self) -> bool:
        """A plan of P (batches and draft lengths), not a target-only value."""
        return bool(self.batches) and self.draft_lengths is not None

    def plan_of(self, scenario: Scenario) -> Plan:
        """The plan this record names, in ``scenario``'s user indices (:class:`PlanError` if it is not one
        of its plans; ``ValueError`` for a record without a plan)."""
        if self.batches is None or self.draft_lengths is None or not self.batches:
            raise ValueError(f"{self.scenario}/{self.method}: the record holds no plan")
        return Plan.from_names(scenario, self.batches, dict(self.draft_lengths))

    @classmethod
    def failed(cls, scenario: str, method: str, message: str, runtime_s: float = 0.0) -> Record:
        """The record of a task that failed."""
        return cls(scenario, method, Status.ERROR, runtime_s=runtime_s, message=message)

    def to_json(self) -> dict:
        return {
            "scenario": self.scenario, "method": self.method, "status": self.status.value,
            "throughput_tps": self.throughput_tps, "upper_bound_tps": self.upper_bound_tps,
            "num_batches": self.num_batches,
            "batches": None if self.batches is None else [list(b) for b in self.batches],
            "draft_lengths": None if self.draft_lengths is None else dict(self.draft_lengths),
            "span_ms": self.span_ms, "expected_tokens": self.expected_tokens, "iterations": self.iterations,
            "runtime_s": self.runtime_s, "message": self.message,
        }

    @classmethod
    def from_json(cls, data: object) -> Record:
        """The record a JSON object describes; ``ValueError`` naming the first field that is wrong."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        for key in ("scenario", "method"):
            if not isinstance(data.get(key), str):
                raise ValueError(f"{key!r} must be text")
        try:
            status = Status(data.get("status"))
        except ValueError:
            raise ValueError(f"'status' must be one of {', '.join(s.value for s in Status)}") from None
        batches = data.get("batches")
        if batches is not None:
            if not (isinstance(batches, list) and all(isinstance(b, list) and all(isinstance(n, str) for n in b) for b in batches)):
                raise ValueError("'batches' must be a list of lists of user names")
            batches = tuple(tuple(b) for b in batches)
        lengths = data.get("draft_lengths")
        if lengths is not None:
            if not (isinstance(lengths, dict) and all(_is_int(v) for v in lengths.values())):
                raise ValueError("'draft_lengths' must map user names to integers")
            lengths = tuple((str(k), int(v)) for k, v in lengths.items())
        iterations = data.get("iterations") or 0
        if not _is_int(iterations):
            raise ValueError("'iterations' must be an integer")
        message = data.get("message") or ""
        if not isinstance(message, str):
            raise ValueError("'message' must be text")
        return cls(
            scenario=data["scenario"], method=data["method"], status=status,
            throughput_tps=_number(data, "throughput_tps"), upper_bound_tps=_number(data, "upper_bound_tps"),
            batches=batches, draft_lengths=lengths, span_ms=_number(data, "span_ms"),
            expected_tokens=_number(data, "expected_tokens"), iterations=int(iterations),
            runtime_s=_number(data, "runtime_s") or 0.0, message=message,
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(data: dict, key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key!r} must be a finite number or null")
    return float(value)


def _largest(batches: tuple[tuple[int, ...], ...] | None) -> int:
    return max((max(b) for b in batches or () if b), default=-1)
