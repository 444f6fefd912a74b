"""The independent oracle: the optimum of P by exhaustive enumeration (method ``enumerate``).

Every set partition of the users into ``N_min..N_max`` batches (generated as restricted
growth strings, so each partition once) that meets the memory cap, times every vector of
draft lengths in ``{1..L_ub}^M``.  For one partition all ``L_ub^M`` length vectors are
evaluated at once with numpy broadcasting, straight from the section-3 formulas through
the scenario's own methods; nothing is shared with the MILP path.  The batch order does
not change S, so one order per partition suffices.

Instances whose enumeration would not finish in about a minute are refused with
:class:`~dipsd.errors.TooLargeError` before any work is done.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import NoReturn

import numpy as np

from ..data.scenario import Scenario
from ..data.text import plural
from ..errors import TooLargeError
from ..formulation.evaluate import evaluate
from ..formulation.plan import Plan
from .results import SolveResult, Status

MAX_GRID = 4_000_000
"""Most length vectors per partition (``L_ub^M``) held in memory at once."""
MAX_CELLS = 2_000_000_000
"""Most (partition, length vector) pairs: about 25 s on one core here (80-100 million pairs/s)."""


def partitions(m: int, n_min: int, n_max: int) -> Iterator[list[int]]:
    """Restricted growth strings of length m with between n_min and n_max blocks."""
    labels = [0] * m

    def rec(i: int, used: int) -> Iterator[list[int]]:
        if i == m:
            if n_min <= used <= n_max:
                yield list(labels)
            return
        if used + (m - i) < n_min:  # even one new block per remaining user is too few
            return
        for lab in range(min(used + 1, n_max)):
            labels[i] = lab
            yield from rec(i + 1, max(used, lab + 1))

    if m >= 1:
        yield from rec(0, 0)


def _count_partitions(m: int, n_min: int, n_max: int, cap: int) -> int:
    """Partitions of m users into n_min..n_max blocks (Stirling numbers of the second kind),
    counted row by row with every value capped at ``cap + 1``: memory O(n_max), and no number
    larger than the cap is ever built (3,000 users: no gigabytes of big integers)."""
    row = [1] + [0] * n_max  # S(0, k)
    for i in range(1, m + 1):
        new = [0] * (n_max + 1)
        for k in range(1, min(i, n_max) + 1):
            new[k] = min(k * row[k] + row[k - 1], cap + 1)
        row = new
    return min(sum(row[k] for k in range(n_min, n_max + 1)), cap + 1)


def check_size(scenario: Scenario) -> int:
    """The number of (partition, lengths) pairs to evaluate; raises if too large (before anything
    proportional to the size is built)."""
    m, lub = scenario.num_users, scenario.max_draft_length

    def refuse(what: str) -> NoReturn:
        raise TooLargeError(
            f"scenario {scenario.name!r}: enumeration needs {what} evaluations ({plural(m, 'user')}, L_ub {lub}); "
            f"'enumerate' handles at most {MAX_CELLS:.0e} (and L_ub^M <= {MAX_GRID:.0e}); use method 'exact'")

    if m * math.log10(lub) > math.log10(MAX_GRID):  # L_ub^M, judged by its logarithm
        refuse(f"more than {MAX_GRID:.0e} length vectors per partition, about 1e{m * math.log10(lub):.0f}" if lub > 1 else "")
    grid = lub ** m
    cells = _count_partitions(m, scenario.min_batches, scenario.max_batches, MAX_CELLS) * grid
    if grid > MAX_GRID or cells > MAX_CELLS:
        refuse(f"more than {MAX_CELLS:.0e}")
    return cells


def solve_enumerate(scenario: Scenario) -> SolveResult:
    """The optimum of P by exhaustive enumeration (raises :class:`TooLargeError` when too large)."""
    t0 = time.perf_counter()
    check_size(scenario)
    users, target = scenario.users, scenario.target
    m, lub = scenario.num_users, scenario.max_draft_length
    ks = np.arange(1, lub + 1)
    # per-user tables straight from the section-3 formulas
    # a length above the user's own limit is not allowed: -inf tokens, so no such plan is ever best
    tokens = [np.array([u.expected_tokens(int(k)) if k <= limit else -np.inf for k in ks])
              for u, limit in zip(users, scenario.limits)]
    ready = [np.array([u.ready_ms(int(k)) for k in ks]) for u in users]

    def axis(values: np.ndarray, i: int) -> np.ndarray:
        shape = [1] * m
        shape[i] = lub
        return values.reshape(shape)

    total_tokens = sum(axis(tokens[i], i) for i in range(m))
    best_ratio, best = -1.0, None
    for labels in partitions(m, scenario.min_batches, scenario.max_batches):
        groups: dict[int, list[int]] = {}
        for i, lab in enumerate(labels):
            groups.setdefault(lab, []).append(i)
        batches = [groups[k] for k in sorted(groups)]
        if not all(scenario.memory_ok(len(b), max(users[i].prefix_len for i in b)) for b in batches):
            continue
        verify_sum, stages = 0.0, []
        for b in batches:
            prefix = max(users[i].prefix_len for i in b)
            per_length = np.array([target.verify_ms(len(b), int(k), prefix) for k in ks])
            longest = axis(np.arange(lub), b[0])
            drafted = axis(ready[b[0]], b[0])
            for i in b[1:]:
                longest = np.maximum(longest, axis(np.arange(lub), i))
                drafted = np.maximum(drafted, axis(ready[i], i))
            t_v = per_length[longest]
            verify_sum = verify_sum + t_v
            stages.append(drafted + t_v)
        span = np.maximum(verify_sum, np.maximum.reduce(np.broadcast_arrays(*stages)))
        ratio = np.broadcast_to(total_tokens, (lub,) * m) / np.broadcast_to(span, (lub,) * m)
        flat = int(np.argmax(ratio))
        if ratio.flat[flat] > best_ratio:
            best_ratio = float(ratio.flat[flat])
            idx = np.unravel_index(flat, (lub,) * m)
            best = Plan(tuple(tuple(b) for b in batches), tuple(int(i) + 1 for i in idx))
    runtime = time.perf_counter() - t0
    if best is None:
        return SolveResult(scenario.name, "enumerate", Status.INFEASIBLE, None, None, None, runtime,
                           message="no partition meets the memory cap within the batch range")
    ev = evaluate(scenario, best)
    return SolveResult(scenario.name, "enumerate", Status.OPTIMAL, best, ev, ev.throughput_tps, runtime,
                       message="exhaustive enumeration")
