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

    NO_PLAN = "no_plan"
    """The time limit stopped the method before any feasible plan was found."""

    INFEASIBLE = "infeasible"
    """Proven: no plan satisfies the constraints (memory cap and batch range)."""

    ERROR = "error"
    """The method failed; ``message`` says why."""

    @property
    def has_plan(self) -> bool:
        return self in (Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT)


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
    reference: "ReferenceValue | None" = None

    @property
    def _measured(self) -> "Evaluation | ReferenceValue | None":
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

    def to_json(self, scenario: Scenario | None) -> dict:
        """The record of ``dipsd solve --json``, the checkpoint and the reports (users by name;
        by index when no scenario is given)."""
        m = len(self.plan.lengths) if self.plan is not None else 0
        names = [u.name for u in scenario.users] if scenario is not None else [str(i) for i in range(max(m, _largest(self.batches) + 1))]
        batches = None if self.batches is None else [[names[i] for i in b] for b in self.batches]
        lengths = None if self.plan is None else {names[i]: l for i, l in enumerate(self.plan.lengths)}
        bound = self.upper_bound_tps
        return {
            "scenario": self.scenario,
            "method": self.method,
            "status": self.status.value,
            "throughput_tps": self.throughput_tps,
            "upper_bound_tps": bound if bound is not None and math.isfinite(bound) else None,
            "num_batches": None if batches is None else len(batches),
            "batches": batches,
            "draft_lengths": lengths,
            "span_ms": self.span_ms,
            "expected_tokens": self.expected_tokens,
            "iterations": self.iterations,
            "runtime_s": self.runtime_s,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, record: dict, scenario: Scenario) -> "SolveResult":
        """The result a record describes: its plan re-evaluated in closed form (which must
        reproduce the recorded throughput), or for target-only baselines their recorded value."""
        from ..formulation.evaluate import evaluate

        plan = evaluation = reference = None
        if record.get("draft_lengths"):
            plan = Plan.from_names(scenario, record["batches"], record["draft_lengths"])
            evaluation = evaluate(scenario, plan)
        elif record.get("batches") and record.get("throughput_tps") is not None:
            index = {u.name: i for i, u in enumerate(scenario.users)}
            batches = tuple(tuple(index[n] for n in b) for b in record["batches"])
            reference = ReferenceValue(batches, record["expected_tokens"], record["span_ms"])
        return cls(scenario=record["scenario"], method=record["method"], status=Status(record["status"]), plan=plan,
                   evaluation=evaluation, upper_bound_tps=record.get("upper_bound_tps"), runtime_s=record.get("runtime_s") or 0.0,
                   iterations=record.get("iterations") or 0, message=record.get("message") or "", reference=reference)


def _largest(batches) -> int:
    return max((max(b) for b in batches or () if b), default=-1)
