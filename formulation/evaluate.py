"""The closed-form evaluator of docs/model.md section 3: what a plan is worth.

This module is the reference every solver is checked against.  It uses the formulas of
section 3 directly (through the methods of the scenario's dataclasses), one batch and one
user at a time, in plain Python floats.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.scenario import Scenario
from .plan import Plan


@dataclass(frozen=True)
class BatchEvaluation:
    """One batch: size ``b_n``, padding ``L_n``/``I_n``, times in ms, memory in bytes."""

    users: tuple[int, ...]
    size: int
    max_length: int
    max_prefix: int
    verify_ms: float
    ready_ms: float
    memory_bytes: float
    memory_ok: bool


@dataclass(frozen=True)
class Evaluation:
    """Everything section 3 says about a plan."""

    plan: Plan
    expected_tokens: float  # U
    batches: tuple[BatchEvaluation, ...]
    verify_total_ms: float  # sum_n t_v_n
    span_ms: float  # S
    span_term: str  # "verification" or "batch n" (1-based): the term that sets S
    user_ready_ms: tuple[float, ...]
    user_tokens: tuple[float, ...]
    feasible: bool
    reason: str

    @property
    def throughput_tps(self) -> float:
        """``1000 * U / S``: expected tokens per second."""
        return 1000.0 * self.expected_tokens / self.span_ms

    @property
    def ratio(self) -> float:
        """``U / S`` in tokens per ms (the objective of P)."""
        return self.expected_tokens / self.span_ms


def evaluate(scenario: Scenario, plan: Plan) -> Evaluation:
    """Evaluate ``plan`` on ``scenario`` (raises :class:`~dipsd.errors.PlanError` for a malformed plan).

    A plan that is well formed but breaks the memory cap or the batch range is returned
    with ``feasible=False`` and the reason.
    """
    plan.validate(scenario)
    users, target = scenario.users, scenario.target
    tokens = tuple(users[m].expected_tokens(plan.lengths[m]) for m in range(len(users)))
    ready = tuple(users[m].ready_ms(plan.lengths[m]) for m in range(len(users)))
    batches = []
    reasons = []
    for n, members in enumerate(plan.batches):
        b = len(members)
        big_l = max(plan.lengths[m] for m in members)
        big_i = max(users[m].prefix_len for m in members)
        memory = target.parameter_bytes + target.kv_bytes(b, big_i)
        ok = memory <= scenario.memory_cap_bytes
        if not ok:
            reasons.append(f"batch {n + 1} needs {memory:.6g} bytes > cap {scenario.memory_cap_bytes:.6g}")
        batches.append(BatchEvaluation(
            users=tuple(members), size=b, max_length=big_l, max_prefix=big_i,
            verify_ms=target.verify_ms(b, big_l, big_i), ready_ms=max(ready[m] for m in members),
            memory_bytes=memory, memory_ok=ok,
        ))
    if plan.num_batches not in scenario.batch_range:
        reasons.append(f"{plan.num_batches} batches outside {scenario.min_batches}..{scenario.max_batches}")
    verify_total = sum(b.verify_ms for b in batches)
    stage = [b.ready_ms + b.verify_ms for b in batches]
    worst = max(range(len(stage)), key=lambda n: stage[n])
    if verify_total >= stage[worst]:
        span, term = verify_total, "verification"
    else:
        span, term = stage[worst], f"batch {worst + 1}"
    return Evaluation(
        plan=plan, expected_tokens=sum(tokens), batches=tuple(batches), verify_total_ms=verify_total,
        span_ms=span, span_term=term, user_ready_ms=ready, user_tokens=tokens,
        feasible=not reasons, reason="; ".join(reasons) if reasons else "feasible",
    )


def target_only_round_ms(scenario: Scenario, batches: tuple[tuple[int, ...], ...]) -> float:
    """One round of target-only decoding, one token per user: ``sum_n G_v(b_n, F_v(1, I_n))`` in ms."""
    t = scenario.target
    return sum(t.verify_ms(len(b), 1, max(scenario.users[m].prefix_len for m in b)) for b in batches)


def ad_throughput_tps(scenario: Scenario) -> float:
    """Target-only autoregressive decoding, one user per forward pass, round-robin:
    ``R_AD = M / sum_m G_v(1, F_v(1, i_m))`` in tokens/s."""
    singletons = tuple((m,) for m in range(scenario.num_users))
    return 1000.0 * scenario.num_users / target_only_round_ms(scenario, singletons)


def greedy_batches(scenario: Scenario) -> tuple[tuple[int, ...], ...] | None:
    """Users packed into as few memory-feasible batches as possible.

    Users are sorted by prefix length, longest first (ties by index), and filled into
    consecutive batches; a batch's longest prefix is its first user's, so it takes
    ``max_batch_size(prefix)`` users.  Sorting longest first makes this count minimal.
    ``None`` when some user does not fit the cap alone.
    """
    order = sorted(range(scenario.num_users), key=lambda m: (-scenario.users[m].prefix_len, m))
    batches, pos = [], 0
    while pos < len(order):
        cap = scenario.max_batch_size(scenario.users[order[pos]].prefix_len)
        if cap < 1:
            return None
        batches.append(tuple(order[pos:pos + cap]))
        pos += cap
    return tuple(batches)


def ad_batch_throughput_tps(scenario: Scenario) -> float:
    """Target-only decoding with greedy batching: ``R = M / sum_n G_v(b_n, F_v(1, I_n))`` in tokens/s
    (0 when some user does not fit the memory cap)."""
    batches = greedy_batches(scenario)
    if batches is None:
        return 0.0
    return 1000.0 * scenario.num_users / target_only_round_ms(scenario, batches)
