"""Seeded random scenarios for studies (``dipsd generate``).

``paper``: the paper's homogeneous setting; the first scenario of each size uses the
paper's alpha = 0.78, further ones draw one alpha in [0.6, 0.9] shared by all users.

``heterogeneous``: per user alpha in [0.5, 0.95], device speed (c_m x [0.5, 2], beta_m x
[0.6, 1.6]), communication latency in [1, 15] ms and prefix length in {128, ..., 2048};
about one user in four brings a measured acceptance table; about two scenarios in five
get a memory cap that admits only 2 or 3 users at the longest prefix (so it binds); the
draft-length cap is one of 10, 15, 20 and N_min is 1 or 2.

The same arguments always give the same scenarios (numpy's PCG64 with the given seed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import defaults as D
from .scenario import DraftModel, Scenario, TargetModel, User

PROFILES = ("paper", "heterogeneous")
PREFIXES = (128, 256, 512, 1024, 2048)


def generate(sizes: Sequence[int], per_size: int, seed: int, profile: str = "heterogeneous",
             max_draft_length: int | None = None) -> list[Scenario]:
    """``per_size`` scenarios for every number of users in ``sizes``.

    ``max_draft_length`` fixes L_ub instead of drawing it (small values keep brute force cheap).
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    rng = np.random.default_rng(seed)
    out = []
    for m in sizes:
        for k in range(per_size):
            name = f"{'paper' if profile == 'paper' else 'het'}-M{m}-{k + 1}"
            out.append(_paper(rng, name, m, k) if profile == "paper" else _heterogeneous(rng, name, m, max_draft_length))
    return out


def _paper(rng: np.random.Generator, name: str, m: int, k: int) -> Scenario:
    alpha = D.ALPHA if k == 0 else round(float(rng.uniform(0.6, 0.9)), 4)
    return Scenario(name=name, users=tuple(User(name=f"u{i + 1}", alpha=alpha) for i in range(m)))


def _sig(x: float, digits: int = 6) -> float:
    """``x`` to a few significant digits: workbooks store 16, so written values load back exactly."""
    return float(f"{x:.{digits}g}")


def _acceptance(rng: np.random.Generator, alpha: float, lub: int) -> tuple[float, ...]:
    """A plausible measured table: per-position acceptance that decays slowly with position."""
    decay = float(rng.uniform(0.93, 1.0))
    table, run, prob = [], 1.0, 1.0
    for j in range(1, lub + 1):
        prob *= min(1.0, alpha * decay ** (j - 1))
        run += prob
        table.append(round(min(run, j + 1.0), 6))
    for j in range(1, lub):  # rounding must not break monotonicity
        table[j] = max(table[j], table[j - 1])
    return tuple(table)


def _heterogeneous(rng: np.random.Generator, name: str, m: int, lub: int | None = None) -> Scenario:
    drawn = int(rng.choice([10, 15, 20]))
    lub = drawn if lub is None else lub
    users = []
    for i in range(m):
        alpha = round(float(rng.uniform(0.5, 0.95)), 4)
        draft = DraftModel(
            c_ms_per_flop=_sig(D.DRAFT_C_MS_PER_FLOP * float(rng.uniform(0.5, 2.0))),
            beta_ms=round(D.DRAFT_BETA_MS * float(rng.uniform(0.6, 1.6)), 4),
        )
        table = _acceptance(rng, alpha, lub) if rng.random() < 0.25 else None
        users.append(User(
            name=f"u{i + 1}", alpha=alpha, prefix_len=int(rng.choice(PREFIXES)),
            comm_latency_ms=round(float(rng.uniform(1.0, 15.0)), 3), draft=draft, acceptance=table,
        ))
    target = TargetModel()
    cap = D.MEMORY_CAP_BYTES
    if rng.random() < 0.4:
        longest = max(u.prefix_len for u in users)
        fit = int(rng.integers(2, 4))
        cap = float(target.parameter_bytes + target.kv_bytes(fit, longest) + 1e6)
    nmin = 1 if m == 1 else int(rng.integers(1, 3))
    return Scenario(name=name, users=tuple(users), target=target, memory_cap_bytes=cap,
                    max_draft_length=lub, min_batches=nmin, max_batches=m)
