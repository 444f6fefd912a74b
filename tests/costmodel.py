"""An independent cost model of docs/model.md section 3, and a brute-force optimum built on it.

Nothing here imports dipsd: the formulas are written again from the model text, in plain Python,
from the raw input numbers of a scenario (read by attribute name, as a workbook gives them).  The
package's evaluator, brute force and MILP tables all reach the formulas through the same
``Scenario`` methods; this module is the second, separate reading that the tests hold them to.

Formulas (docs/model.md section 3), every time in ms:

* ``u_m(l) = (1 - alpha^(l+1)) / (1 - alpha)`` (``l + 1`` at alpha 1), or the measured table;
* ``F_d(i) = 4 J_d h1_d (2 h1_d + i + 1 + h2_d)``, ``tau_d(l) = l (c_m F_d(i_m) + beta_m)``,
  ready ``= tau_d(l) + tau_c``;
* ``F_v(L, I) = 4 J_v h1_v L (2 h1_v + I + L + h2_v)``, ``t_v = c_v b F_v(L_n, I_n) + beta_v``;
* ``S = max(sum_n t_v_n, max_n (t_d_n + t_v_n))``, ``R = 1000 U / S`` tokens/s;
* memory: ``J_v (8 h1_v^2 + 4 h1_v h2_v) + 4 J_v h1_v b_n I_n <= Gamma_max``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Device:
    """One user's raw inputs."""

    alpha: float
    prefix: int
    comm_ms: float
    blocks: int
    hidden: int
    ffn: int
    c_ms: float
    beta_ms: float
    table: tuple[float, ...] | None
    limit: int


@dataclass(frozen=True)
class Server:
    """The target model, the server's latency model, the memory cap and the batch range."""

    blocks: int
    hidden: int
    ffn: int
    c_ms: float
    beta_ms: float
    cap: float
    min_batches: int
    max_batches: int


def read(scenario) -> tuple[Server, tuple[Device, ...]]:
    """The raw numbers of a scenario object, by attribute name only (no dipsd method is called)."""
    t = scenario.target
    server = Server(t.blocks, t.hidden, t.ffn_hidden, t.c_ms_per_flop, t.beta_ms, scenario.memory_cap_bytes,
                    scenario.min_batches, scenario.max_batches)
    devices = tuple(
        Device(u.alpha, u.prefix_len, u.comm_latency_ms, u.draft.blocks, u.draft.hidden, u.draft.ffn_hidden,
               u.draft.c_ms_per_flop, u.draft.beta_ms, u.acceptance,
               scenario.max_draft_length if u.max_draft_length is None else u.max_draft_length)
        for u in scenario.users)
    return server, devices


def tokens(d: Device, l: int) -> float:
    """Expected tokens per round at draft length l: the measured table, else the geometric sum."""
    if d.table is not None:
        return float(d.table[l - 1])
    if d.alpha == 1.0:
        return float(l + 1)
    # 1 + alpha + ... + alpha^l, in closed form
    return (1.0 - d.alpha ** (l + 1)) / (1.0 - d.alpha)


def ready(d: Device, l: int) -> float:
    """Drafting l tokens on the device plus the communication latency (ms)."""
    flops_per_token = 4.0 * d.blocks * d.hidden * (2 * d.hidden + d.prefix + 1 + d.ffn)
    return l * (d.c_ms * flops_per_token + d.beta_ms) + d.comm_ms


def verify(s: Server, size: int, longest: int, prefix: int) -> float:
    """Verifying a batch of ``size`` sequences padded to ``longest`` tokens and ``prefix`` (ms)."""
    flops = 4.0 * s.blocks * s.hidden * longest * (2 * s.hidden + prefix + longest + s.ffn)
    return s.c_ms * size * flops + s.beta_ms


def fits(s: Server, size: int, prefix: int) -> bool:
    """The memory cap holds the target's parameters and the batch's KV cache."""
    params = s.blocks * (8.0 * s.hidden * s.hidden + 4.0 * s.hidden * s.ffn)
    return params + 4.0 * s.blocks * s.hidden * size * prefix <= s.cap


@dataclass(frozen=True)
class Value:
    """What the model says of a plan."""

    tokens: float
    verify_sum_ms: float
    span_ms: float
    feasible: bool

    @property
    def tps(self) -> float:
        return 1000.0 * self.tokens / self.span_ms


def value(server: Server, devices: tuple[Device, ...], batches, lengths) -> Value:
    """The closed-form value of a plan (batches of user indices, one length per user)."""
    total = sum(tokens(devices[m], lengths[m]) for m in range(len(devices)))
    verify_sum, worst_stage, ok = 0.0, 0.0, server.min_batches <= len(batches) <= server.max_batches
    for batch in batches:
        prefix = max(devices[m].prefix for m in batch)
        t_v = verify(server, len(batch), max(lengths[m] for m in batch), prefix)
        verify_sum += t_v
        worst_stage = max(worst_stage, max(ready(devices[m], lengths[m]) for m in batch) + t_v)
        ok = ok and fits(server, len(batch), prefix)
    ok = ok and all(1 <= lengths[m] <= devices[m].limit for m in range(len(devices)))
    return Value(total, verify_sum, max(verify_sum, worst_stage), ok)


def set_partitions(m: int):
    """Every partition of range(m) into non-empty blocks (restricted growth strings)."""
    def rec(i, labels, used):
        if i == m:
            yield tuple(tuple(j for j in range(m) if labels[j] == b) for b in range(used))
            return
        for lab in range(used + 1):
            yield from rec(i + 1, labels + [lab], max(used, lab + 1))
    yield from rec(0, [], 0)


def brute_optimum(scenario) -> tuple[float, tuple | None]:
    """``(R* in tokens/s, one optimal (batches, lengths))`` by enumeration, or ``(0.0, None)`` when no
    plan is feasible.  Every partition into the allowed number of batches that fits the memory cap,
    times every length vector, valued at once per partition on a numpy grid (axis m: user m's length
    minus 1); the best plan is valued again by :func:`value`.  Only for tiny instances."""
    server, devices = read(scenario)
    m = len(devices)
    top = max(d.limit for d in devices)
    shape = (top,) * m

    def on_axis(row: list[float], i: int) -> np.ndarray:
        out = np.full(top, -np.inf)
        out[: len(row)] = row  # lengths above the user's limit: -inf tokens, never best
        return out.reshape([top if j == i else 1 for j in range(m)])

    gained = sum(on_axis([tokens(d, l) for l in range(1, d.limit + 1)], i) for i, d in enumerate(devices))
    drafted = [on_axis([ready(d, l) for l in range(1, d.limit + 1)], i) for i, d in enumerate(devices)]
    index = [np.arange(top).reshape([top if j == i else 1 for j in range(m)]) for i in range(m)]
    best, arg = 0.0, None
    for batches in set_partitions(m):
        if not server.min_batches <= len(batches) <= server.max_batches:
            continue
        if not all(fits(server, len(b), max(devices[i].prefix for i in b)) for b in batches):
            continue
        verify_sum, worst = np.zeros(()), np.zeros(())
        for b in batches:
            per_length = np.array([verify(server, len(b), l, max(devices[i].prefix for i in b)) for l in range(1, top + 1)])
            t_v = per_length[functools.reduce(np.maximum, (index[i] for i in b))]
            verify_sum = verify_sum + t_v
            worst = np.maximum(worst, functools.reduce(np.maximum, (drafted[i] for i in b)) + t_v)
        rate = np.broadcast_to(1000.0 * gained / np.maximum(verify_sum, worst), shape)
        at = int(np.argmax(rate))
        if rate.flat[at] > best:
            best, arg = float(rate.flat[at]), (batches, tuple(int(k) + 1 for k in np.unravel_index(at, shape)))
    if arg is None:
        return 0.0, None
    return value(server, devices, *arg).tps, arg
