"""Gaps and summary statistics of a study (pure Python; the Excel writer only lays them out).

Gap % of a method on a scenario, with R its throughput:

* the exact method proved ``R*`` optimal: ``gap = 100 (R* - R) / R*``;
* the exact method stopped early with incumbent ``R_inc`` and certified bound ``R_ub``:
  ``gap_to_incumbent = 100 (R_inc - R) / R_inc`` (may be negative: the method beat the
  incumbent) and ``gap_bound = 100 (R_ub - R) / R_ub``, an upper bound on the true gap
  (``R_ub >= R*``).  Such scenarios are counted separately and left out of the gap
  statistics of proven scenarios.

A method hit the optimum when its gap is at most :data:`HIT_TOL` (relative).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

HIT_TOL = 1e-6


@dataclass(frozen=True)
class Gap:
    """A method's distance to the exact result on one scenario, in percent."""

    proven: float | None  # to a proven optimum
    to_incumbent: float | None  # exact stopped early
    bound: float | None  # upper bound on the true gap when exact stopped early


def gap(record: dict, exact: dict | None) -> Gap:
    r = record.get("throughput_tps")
    if r is None or exact is None or exact.get("throughput_tps") is None:
        return Gap(None, None, None)
    best = exact["throughput_tps"]
    if exact["status"] == "optimal":
        return Gap(100.0 * (best - r) / best, None, None)
    ub = exact.get("upper_bound_tps")
    return Gap(None, 100.0 * (best - r) / best, None if ub is None else 100.0 * (ub - r) / ub)


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolation percentile (the 'inclusive' method, like Excel's PERCENTILE.INC)."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * p / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class MethodSummary:
    """One method over one group of scenarios."""

    group: str
    method: str
    scenarios: int
    with_result: int
    proven: int  # scenarios whose optimum is proven (gap statistics are over these)
    early: int  # scenarios where exact stopped early
    gap_mean: float | None
    gap_median: float | None
    gap_p95: float | None
    gap_max: float | None
    hits: int
    early_gap_bound_mean: float | None
    runtime_mean: float | None
    iterations_mean: float | None


def summarize(records: list[dict], num_users: dict[str, int], methods: list[str]) -> list[MethodSummary]:
    """Per number of users and overall (group ``"all"``), one row per method."""
    by_key = {(r["scenario"], r["method"]): r for r in records}
    scenarios = list(dict.fromkeys(r["scenario"] for r in records))
    groups = [(str(m), [s for s in scenarios if num_users[s] == m]) for m in sorted({num_users[s] for s in scenarios})]
    groups.append(("all", scenarios))
    out = []
    for label, names in groups:
        for method in methods:
            rows = [by_key.get((s, method)) for s in names]
            rows = [r for r in rows if r is not None]
            gaps = [gap(r, by_key.get((r["scenario"], "exact"))) for r in rows]
            proven = [g.proven for g in gaps if g.proven is not None]
            early = [g for g in gaps if g.to_incumbent is not None]
            times = [r["runtime_s"] for r in rows if r.get("runtime_s") is not None]
            iters = [r["iterations"] for r in rows if r.get("iterations")]
            exact_rows = [by_key.get((s, "exact")) for s in names]
            out.append(MethodSummary(
                group=label, method=method, scenarios=len(names),
                with_result=sum(r.get("throughput_tps") is not None for r in rows),
                proven=sum(1 for r in exact_rows if r and r["status"] == "optimal"),
                early=sum(1 for r in exact_rows if r and r["status"] == "time_limit" and r.get("throughput_tps") is not None),
                gap_mean=statistics.fmean(proven) if proven else None,
                gap_median=statistics.median(proven) if proven else None,
                gap_p95=percentile(proven, 95) if proven else None,
                gap_max=max(proven) if proven else None,
                hits=sum(1 for g in proven if g <= 100.0 * HIT_TOL),
                early_gap_bound_mean=statistics.fmean([g.bound for g in early if g.bound is not None]) if any(g.bound is not None for g in early) else None,
                runtime_mean=statistics.fmean(times) if times else None,
                iterations_mean=statistics.fmean(iters) if iters else None,
            ))
    return out
