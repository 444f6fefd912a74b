"""Seeded tiny instances for cross-checking solvers, and an independent feasibility check."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from dipsd import Scenario, User, evaluate, paper_scenario
from dipsd.data.generate import generate
from dipsd.data.scenario import DraftModel
from dipsd.formulation.plan import Plan
from dipsd.solvers import dipsd as D


def with_clones(s: Scenario, rng) -> Scenario:
    """Copy some users so that the scenario has classes of identical users."""
    users = list(s.users)
    for _ in range(int(rng.integers(1, 3))):
        src = users[int(rng.integers(0, len(users)))]
        users.append(dataclasses.replace(src, name=f"{src.name}c{len(users)}"))
    return s.with_(users=tuple(users), max_batches=len(users), name=s.name + "-clones")


def tiny_instances(count: int = 44, seed: int = 20261129) -> list[Scenario]:
    """Scenarios of 2..6 users that brute force finishes quickly, covering every model feature."""
    rng = np.random.default_rng(seed)
    out: list[Scenario] = []
    while len(out) < count:
        m = int(rng.integers(2, 7))
        lub = int(rng.integers(2, 9)) if m <= 4 else int(rng.integers(2, 5))
        kind = len(out) % 4
        if kind == 3:
            s = paper_scenario(m, max_draft_length=lub, alpha=float(rng.uniform(0.5, 0.95)), name=f"paper-{len(out)}")
        else:
            (s,) = generate([m], 1, seed=int(rng.integers(1 << 30)), max_draft_length=lub)
            s = s.with_(name=f"het-{len(out)}")
            if kind == 2 and m <= 4:
                s = with_clones(s, rng)
        if rng.random() < 0.3:
            nmin = int(rng.integers(1, s.num_users + 1))
            s = s.with_(min_batches=nmin, max_batches=int(rng.integers(nmin, s.num_users + 1)))
        out.append(s)
    return out


def assert_feasible(scenario: Scenario, plan: Plan) -> None:
    """Independent check of a plan against P's constraints, written without the evaluator."""
    seen = sorted(i for b in plan.batches for i in b)
    assert seen == list(range(scenario.num_users)), "not a partition"
    assert all(len(b) > 0 for b in plan.batches)
    assert scenario.min_batches <= len(plan.batches) <= scenario.max_batches
    assert all(1 <= l <= scenario.max_draft_length for l in plan.lengths)
    t = scenario.target
    params = t.blocks * (8 * t.hidden**2 + 4 * t.hidden * t.ffn_hidden)
    for b in plan.batches:
        kv = 4 * t.blocks * t.hidden * len(b) * max(scenario.users[i].prefix_len for i in b)
        assert params + kv <= scenario.memory_cap_bytes, "memory cap broken"


def assert_consistent(scenario: Scenario, result) -> None:
    """The reported numbers equal the closed-form evaluation of the reported plan."""
    assert_feasible(scenario, result.plan)
    ev = evaluate(scenario, result.plan)
    assert ev.feasible
    assert abs(ev.throughput_tps - result.throughput_tps) <= 1e-12 * ev.throughput_tps
    if result.upper_bound_tps is not None:
        assert result.upper_bound_tps >= result.throughput_tps * (1 - 1e-12)


def rg_partitions(m, n):
    """Every partition of range(m) into exactly n blocks (test's own generator)."""
    def rec(i, labels, used):
        if i == m:
            if used == n:
                yield tuple(tuple(j for j in range(m) if labels[j] == b) for b in range(n))
            return
        for lab in range(min(used + 1, n)):
            yield from rec(i + 1, labels + [lab], max(used, lab + 1))
    yield from rec(0, [], 0)


def odd_instances(count: int, seed: int) -> list[Scenario]:
    """Tiny scenarios at the corners the workbook ranges allow (docs/model.md, the contract):
    alpha 0 and 1, flat and steep measured tables, clones, prefixes 1 to 51,200, latencies
    0.01 ms to 600,000 ms, slopes 1e-15 to 1e-9 ms/FLOP, memory caps at exactly b users or one
    byte below, every batch range; L_ub 1..8 (M <= 4) or 1..3 (M = 5)."""
    from dipsd.data.scenario import DraftModel, TargetModel

    rng = np.random.default_rng(seed)
    out: list[Scenario] = []
    for i in range(count):
        m = int(rng.integers(1, 6))
        lub = int(rng.choice([1, 1, 2, 3, 4, 8])) if m <= 4 else int(rng.choice([1, 2, 3]))

        def latency():
            return float(rng.choice([0.01, 1.0, 5.0, 33.8151, 600000.0, rng.uniform(0.01, 200)]))

        users = []
        for k in range(m):
            table = None
            if rng.random() < 0.2:
                step = rng.choice([0.0, 1.0, 0.5]) if rng.random() < 0.5 else None
                values, v = [], 1.0
                for kk in range(1, lub + 1):
                    v = min(v + (float(step) if step is not None else float(rng.uniform(0, 1))), kk + 1)
                    values.append(v)
                table = tuple(values)
            draft = DraftModel(beta_ms=latency() if rng.random() < 0.5 else 33.8151,
                               c_ms_per_flop=float(rng.choice([4.0305e-11, 4.0305e-11, 1e-15, 1e-9])))
            users.append(User(name=f"u{k}", alpha=float(rng.choice([0.0, 1.0, 0.5, 0.78, rng.uniform(0, 1)])),
                              prefix_len=int(rng.choice([1, 16, 512, 512, 51200])),
                              comm_latency_ms=latency() if rng.random() < 0.4 else 3.0, draft=draft, acceptance=table))
        if rng.random() < 0.3 and m >= 2:
            users[-1] = dataclasses.replace(users[0], name=users[-1].name)
        target = TargetModel(beta_ms=float(rng.choice([95.1074, 95.1074, 5.0, 0.01, 600000.0])),
                             c_ms_per_flop=float(rng.choice([1.2077e-11, 1.2077e-11, 1e-14, 1e-9])))
        s = Scenario(name=f"odd-{seed}-{i}", users=tuple(users), target=target, max_draft_length=lub)
        if rng.random() < 0.4:
            b = int(rng.integers(1, m + 1))
            cap = target.parameter_bytes + target.kv_bytes(b, max(u.prefix_len for u in users)) - float(rng.choice([0, 1]))
            s = s.with_(memory_cap_bytes=cap)
        low = int(rng.integers(1, m + 1))
        out.append(s.with_(min_batches=low, max_batches=int(rng.integers(low, m + 1))))
    return out


def far_scaled_instances(count: int, seed: int) -> list[Scenario]:
    """:func:`odd_instances` pushed to the far ends of the time scale the ranges allow: device
    intercepts, slopes and communication latencies down to the smallest positive float, the
    server's intercept at its floor (``VERIFY_BETA_FLOOR_MS``) and its slope down to 5e-324, so
    that HiGHS would drop every time coefficient were they not rescaled (formulation.milp, "Units")."""
    from dipsd.data import defaults as D

    rng = np.random.default_rng(seed)
    tiny = (1e-6, 1e-9, 1e-12, 1e-30, 1e-300, 5e-324)
    out = []
    for s in odd_instances(count, seed):
        pick = lambda value: float(rng.choice(tiny)) if rng.random() < 0.6 else value  # noqa: E731
        users = tuple(dataclasses.replace(u, comm_latency_ms=pick(u.comm_latency_ms),
                                          draft=dataclasses.replace(u.draft, beta_ms=pick(u.draft.beta_ms),
                                                                    c_ms_per_flop=pick(u.draft.c_ms_per_flop)))
                      for u in s.users)
        target = dataclasses.replace(s.target, beta_ms=D.VERIFY_BETA_FLOOR_MS if rng.random() < 0.6 else s.target.beta_ms,
                                     c_ms_per_flop=pick(s.target.c_ms_per_flop))
        out.append(dataclasses.replace(s, name=f"far-{s.name}", users=users, target=target))
    return out


def limited_instances(count: int, seed: int) -> list[Scenario]:
    """:func:`odd_instances` where some users have their own, shorter draft limit (sheet 'users',
    column max_draft_length), their measured tables (if any) cut to it."""
    rng = np.random.default_rng(seed)
    out = []
    for s in odd_instances(count, seed):
        users = []
        for u in s.users:
            if s.max_draft_length > 1 and rng.random() < 0.6:
                limit = int(rng.integers(1, s.max_draft_length))
                table = None if u.acceptance is None else u.acceptance[:limit]
                u = dataclasses.replace(u, max_draft_length=limit, acceptance=table)
            users.append(u)
        out.append(dataclasses.replace(s, name=f"lim-{s.name}", users=tuple(users)))
    return out


def nested_room_instances(count: int, seed: int) -> list[Scenario]:
    """Scenarios of 4-5 users with prefixes 128, 512 and 2048 (two users at 2048, one at 512, one at 128) and a memory
    cap that holds 1-2 users at 2048 (so 4-8 at 512 and 16-32 at 128): the fewest batches padded to
    ``>= 512`` (the greedy packing, :meth:`Tables.fewest_batches`) then exceed ``ceil(h_j / B_j)``."""
    rng = np.random.default_rng(seed)
    out: list[Scenario] = []
    while len(out) < count:
        m = int(rng.integers(4, 6))
        (s,) = generate([m], 1, seed=int(rng.integers(1 << 30)), max_draft_length=int(rng.integers(1, 4)))
        prefixes = [2048, 2048, 512, 128] + [int(rng.choice([128, 512, 2048])) for _ in range(m - 4)]
        users = tuple(dataclasses.replace(u, prefix_len=p) for u, p in zip(s.users, prefixes))
        s = s.with_(users=users, name=f"nested-{seed}-{len(out)}", min_batches=1, max_batches=m)
        b = int(rng.integers(1, 3))  # room b at 2048: the cap holds exactly b users, or b + 1 less one byte
        cap = s.target.parameter_bytes + (s.target.kv_bytes(b, 2048) if rng.random() < 0.5 else s.target.kv_bytes(b + 1, 2048) - 1.0)
        out.append(s.with_(memory_cap_bytes=cap))
    return out


class Tie(Exception):
    pass


def best_of(candidates, key):
    """The unique best candidate by key (max); raises Tie if the best is not unique."""
    ranked = sorted(candidates, key=key, reverse=True)
    if len(ranked) > 1 and key(ranked[1]) >= key(ranked[0]) * (1 - 1e-12):
        raise Tie
    return ranked[0]


def reference_dipsd(s: Scenario, fixed: bool = False) -> float | None:
    """DiP-SD written from its definition, both steps by exhaustive search."""
    best = None
    for n in s.batch_range:
        lengths = (s.start_length,) * s.num_users
        current = None
        for _ in range(D.MAX_ROUNDS):
            xs = [evaluate(s, Plan(p, lengths)) for p in rg_partitions(s.num_users, n)]
            xs = [e for e in xs if e.feasible]
            if not xs:
                break
            x = best_of(xs, key=lambda e: -e.span_ms)
            if current is not None and x.ratio <= current.ratio * (1 + 1e-12) and current.plan.lengths == lengths:
                x = current
            if fixed:
                new = x
            else:
                cands = [evaluate(s, Plan(x.plan.batches, l)) for l in itertools.product(range(1, s.max_draft_length + 1),
                                                                                         repeat=s.num_users)]
                top = max(c.ratio for c in cands)
                new = x if x.ratio >= top * (1 - 1e-12) else best_of(cands, key=lambda e: e.ratio)
            previous = current
            if current is None or new.ratio > current.ratio:
                current = new
            if fixed or (new.plan.lengths == lengths and previous is not None and new.ratio - previous.ratio < D.REL_TOL * new.ratio):
                break
            lengths = new.plan.lengths
        if current is not None and (best is None or current.ratio > best * (1 + 1e-12)):
            best = current.ratio
    return best


def tie_free_instances(count=18, seed=3):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        m = int(rng.integers(2, 5))
        users = tuple(
            User(f"u{i}", alpha=float(rng.uniform(0.5, 0.95)), prefix_len=int(rng.integers(100, 3000)),
                 comm_latency_ms=float(rng.uniform(1, 15)),
                 draft=DraftModel(c_ms_per_flop=float(rng.uniform(2e-11, 8e-11)), beta_ms=float(rng.uniform(20, 55))))
            for i in range(m))
        s = Scenario(f"tf{len(out)}", users, max_draft_length=int(rng.integers(2, 5)), min_batches=1,
                     initial_draft_length=int(rng.integers(1, 8)))
        try:
            out.append((s, reference_dipsd(s), reference_dipsd(s, fixed=True)))
        except Tie:
            continue
    return out


