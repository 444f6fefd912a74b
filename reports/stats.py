"""Gaps and summary statistics of a study (pure Python; the Excel writer only lays them out).

What a study knows about a scenario's optimum (:class:`Reference`) comes from every method
that ran on it: the proven optimum ``R*`` (a record with status ``optimal``: exact,
certify or enumerate), the lowest certified upper bound ``R_ub`` any method reported
(exact's or certify's; ``R_ub >= R*``), and the best plan ``R_best`` any method found.

Gap % of a method on a scenario, with R its throughput:

* ``proven = 100 (R* - R) / R*`` when the optimum is proven;
* ``certified = 100 (R_ub - R) / R_ub``: an upper bound on the true gap, at any size;
* ``to_best = 100 (R_best - R) / R_best`` when the optimum is open (0 for the best method).

A method hit the optimum when its proven gap is at most :data:`HIT_TOL` (relative).

A run that *stopped* (:func:`stopped`: a method that proves no bound, ended by its time or work
limit) is counted apart in every statistic: its gap measures the time budget as much as the
method, so it never enters a mean, a median, a worst gap or a hit count of finished runs; every
sentence and table says how many stopped, and the worst gap among them, beside the others.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from ..solvers.results import Record, Status

HIT_TOL = 1e-6
CERTIFIED_LEVELS = (0.1, 1.0)
"""Certified gaps (%) counted per method in the summary."""


LIMITS = (Status.TIME_LIMIT, Status.WORK_LIMIT)


def stopped(record: Record) -> bool:
    """A run of a method that proves no bound, stopped by its time or work limit with a plan (a
    heuristic cut short; also ``exact`` stopped before its first bound): counted apart."""
    return record.status in LIMITS and record.upper_bound_tps is None and record.throughput_tps is not None


def ended(record: Record) -> str:
    """Why a run ended, in words (the ``ended`` column of the Results frame)."""
    if record.status in LIMITS:
        limit = "time" if record.status is Status.TIME_LIMIT else "work"
        if stopped(record):
            return f"stopped at its {limit} limit (its gap is not counted with finished runs)"
        return f"stopped at its {limit} limit" + ("" if record.upper_bound_tps is None else ", its bound certified")
    return {Status.OPTIMAL: "finished: optimal", Status.FEASIBLE: "finished", Status.INFEASIBLE: "finished: infeasible",
            Status.NO_PLAN: "stopped at its limit before any plan", Status.ERROR: "failed"}[record.status]


@dataclass(frozen=True)
class Reference:
    """The best a study knows about one scenario: proven optimum, best bound, best plan (tokens/s)."""

    optimum: float | None = None
    optimum_by: str | None = None
    bound: float | None = None
    bound_by: str | None = None
    best: float | None = None
    best_by: str | None = None


def reference(records: list[Record]) -> Reference:
    """The reference of one scenario from all its records."""
    optimum = optimum_by = bound = bound_by = best = best_by = None
    for r in records:
        tps, ub = r.throughput_tps, r.upper_bound_tps
        if tps is not None and r.batches and (best is None or tps > best):
            best, best_by = tps, r.method
        if r.status is Status.OPTIMAL and tps is not None and r.has_plan and (optimum is None or tps > optimum):
            optimum, optimum_by = tps, r.method
        if ub is not None and math.isfinite(ub) and (bound is None or ub < bound):
            bound, bound_by = ub, r.method
    if optimum is not None and (bound is None or optimum < bound):
        bound, bound_by = optimum, optimum_by
    if bound is not None and best is not None and bound < best:  # rounding: a bound is never below a plan
        bound = best
    return Reference(optimum, optimum_by, bound, bound_by, best, best_by)


def references(records: list[Record]) -> dict[str, Reference]:
    """:func:`reference` of every scenario in ``records``."""
    by_scenario: dict[str, list[Record]] = {}
    for r in records:
        by_scenario.setdefault(r.scenario, []).append(r)
    return {name: reference(rs) for name, rs in by_scenario.items()}


def heuristics(records: list[Record], methods: list[str]) -> list[str]:
    """The methods judged against the reference: those that return plans and never a bound
    (methods that prove bounds, exact and certify, are the reference)."""
    proves = {r.method for r in records if r.upper_bound_tps is not None}
    return [m for m in methods if m not in proves and any(r.method == m and r.has_plan for r in records)]


@dataclass(frozen=True)
class Gap:
    """A method's distance to what is known about the optimum of one scenario, in percent."""

    proven: float | None  # to a proven optimum
    to_best: float | None  # to the best plan found, when the optimum is open
    certified: float | None  # to the best certified bound: an upper bound on the true gap


def gap(record: Record | None, ref: Reference | None) -> Gap:
    r = None if record is None else record.throughput_tps
    if r is None or ref is None:
        return Gap(None, None, None)
    proven = None if ref.optimum is None else 100.0 * (ref.optimum - r) / ref.optimum
    to_best = None if ref.optimum is not None or ref.best is None else 100.0 * (ref.best - r) / ref.best
    certified = None if ref.bound is None else 100.0 * (ref.bound - r) / ref.bound
    return Gap(proven, to_best, certified)


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
    open: int  # scenarios with a plan whose optimum no method proved
    gap_mean: float | None
    gap_median: float | None
    gap_p95: float | None
    gap_max: float | None
    hits: int
    gaps_proven: int  # this method's results on scenarios with a proven optimum
    certified: tuple[int, ...]  # this method's results with a certified gap <= each of CERTIFIED_LEVELS
    certified_max: float | None  # its worst certified gap
    open_certified_mean: float | None  # mean certified gap over the open scenarios
    runtime_mean: float | None
    iterations_mean: float | None
    stopped: int = 0  # results of runs stopped at a limit (:func:`stopped`), not in any gap above


def summarize(records: list[Record], num_users: dict[str, int], methods: list[str]) -> list[MethodSummary]:
    """Per number of users and overall (group ``"all"``), one row per method."""
    by_key = {(r.scenario, r.method): r for r in records}
    refs = references(records)
    scenarios = list(dict.fromkeys(r.scenario for r in records))
    groups = [(str(m), [s for s in scenarios if num_users[s] == m]) for m in sorted({num_users[s] for s in scenarios})]
    groups.append(("all", scenarios))
    out = []
    for label, names in groups:
        proven_here = sum(1 for s in names if refs[s].optimum is not None)
        open_here = sum(1 for s in names if refs[s].optimum is None and refs[s].best is not None)
        for method in methods:
            rows = [r for r in (by_key.get((s, method)) for s in names) if r is not None]
            gaps = [gap(r, refs[r.scenario]) for r in rows if r.throughput_tps is not None and not stopped(r)]
            proven = [g.proven for g in gaps if g.proven is not None]
            certified = [max(g.certified, 0.0) for g in gaps if g.certified is not None]
            open_cert = [max(g.certified, 0.0) for g in gaps if g.proven is None and g.certified is not None]
            times = [r.runtime_s for r in rows]
            iters = [r.iterations for r in rows if r.iterations]
            out.append(MethodSummary(
                group=label, method=method, scenarios=len(names),
                with_result=sum(r.throughput_tps is not None for r in rows),
                proven=proven_here, open=open_here,
                gap_mean=statistics.fmean(proven) if proven else None,
                gap_median=statistics.median(proven) if proven else None,
                gap_p95=percentile(proven, 95) if proven else None,
                gap_max=max(proven) if proven else None,
                hits=sum(1 for g in proven if g <= 100.0 * HIT_TOL),
                gaps_proven=len(proven),
                certified=tuple(sum(1 for c in certified if c <= level) for level in CERTIFIED_LEVELS),
                certified_max=max(certified) if certified else None,
                open_certified_mean=statistics.fmean(open_cert) if open_cert else None,
                runtime_mean=statistics.fmean(times) if times else None,
                iterations_mean=statistics.fmean(iters) if iters else None,
                stopped=sum(stopped(r) for r in rows),
            ))
    return out


@dataclass(frozen=True)
class Headline:
    """One method in a few numbers: how close it came to what the study knows about the optimum."""

    method: str
    scenarios: int  # scenarios it ran on
    results: int  # with a plan or a value
    proven: int  # of those, scenarios whose optimum is proven
    hits: int  # proven scenarios where it found the optimum (gap <= HIT_TOL)
    gap_mean: float | None  # mean gap % over proven scenarios
    worst_gap: float | None  # its largest gap %: proven where the optimum is, else certified
    worst_kind: str | None  # "proven" or "certified"
    worst_scenario: str | None
    stopped: int = 0  # results of runs stopped at a limit: in none of the numbers above


def headline(records: list[Record], methods: list[str]) -> list[Headline]:
    """One :class:`Headline` per method, in the given order."""
    refs = references(records)
    out = []
    for method in methods:
        rows = [r for r in records if r.method == method]
        worst: tuple[float | None, str | None, str | None] = (None, None, None)
        proven: list[float] = []
        hits = 0
        for r in rows:
            if stopped(r):
                continue
            g = gap(r, refs.get(r.scenario))
            value, kind = (g.proven, "proven") if g.proven is not None else (g.certified, "certified")
            if g.proven is not None:
                proven.append(g.proven)
                hits += g.proven <= 100.0 * HIT_TOL
            if value is not None and (worst[0] is None or value > worst[0]):
                worst = (max(value, 0.0), kind, r.scenario)
        if worst[0] is not None and worst[0] <= 100.0 * HIT_TOL:
            worst = (worst[0], worst[1], None)  # at the optimum everywhere: no scenario is the worst
        out.append(Headline(method, len(rows), sum(r.throughput_tps is not None for r in rows), len(proven), hits,
                            statistics.fmean(proven) if proven else None, *worst, stopped=sum(stopped(r) for r in rows)))
    return out


def headline_text(rows: list[Headline]) -> str:
    """The headline as a small fixed-width table (stdout of ``study`` and ``solve --method all``)."""
    w = max([12] + [len(h.method) for h in rows])  # a long name (plan:one-per-user) keeps the columns in line
    lines = [f"{'method':<{w}} {'results':>9} {'stopped':>7} {'optimal':>13} {'mean gap %':>10} {'worst gap %':>12}  "
             f"worst scenario"]
    for h in rows:
        mean = "-" if h.gap_mean is None else f"{h.gap_mean:.4f}"
        worst = "-" if h.worst_gap is None else f"{h.worst_gap:.4f}" + ("" if h.worst_kind == "proven" else " (<=)")
        optimal = f"{h.hits} of {h.proven}" if h.proven else "-"
        lines.append(f"{h.method:<{w}} {h.results:>4} of {h.scenarios:<3} {h.stopped:>7} {optimal:>13} {mean:>10} {worst:>12}  "
                     f"{h.worst_scenario or '-'}")
    lines.append("optimal: hits of the scenarios whose optimum is proven; a worst gap marked (<=) is certified: "
                 "the true gap is at most that; stopped: results of runs cut short by their time or work limit, "
                 "in none of the gaps")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the answer, stated
@dataclass(frozen=True)
class GapStatement:
    """How far one method is from optimal over a set of scenarios, proven and certified kept apart.

    Proven gaps are to a proven optimum (``proven_n`` scenarios, users ``proven_users``);
    certified gaps are to the best bound any method proved, on the scenarios whose optimum is
    open (``open_n``, users ``open_users``): the true gap is at most that.
    """

    method: str
    group: str  # a number of users, or "all"
    proven_n: int
    hits: int
    proven_mean: float | None
    proven_median: float | None
    proven_max: float | None
    proven_users: tuple[int, ...]
    open_n: int
    open_mean: float | None
    open_max: float | None
    open_users: tuple[int, ...]
    without: tuple[tuple[str, int], ...] = ()
    """Scenarios where the method gave no throughput, by status (e.g. ``(("infeasible", 1),)``)."""
    stopped_by: tuple[tuple[str, int], ...] = ()
    """Runs stopped at a limit with a plan (:func:`stopped`), by status; none of their gaps is above."""
    stopped_max: float | None = None
    """The worst gap % among the stopped runs (proven where the optimum is, else certified: at most)."""
    stopped_kind: str | None = None
    """``"proven"`` or ``"certified"``: the kind of :attr:`stopped_max`."""

    @property
    def stopped_n(self) -> int:
        return sum(k for _, k in self.stopped_by)


def gap_statements(records: list[Record], num_users: dict[str, int], methods: list[str]) -> list[GapStatement]:
    """Per method, per number of users and overall (group ``"all"``), in that order."""
    refs = references(records)
    out = []
    for method in methods:
        mine = [r for r in records if r.method == method]
        rows = [r for r in mine if r.throughput_tps is not None]
        sizes = sorted({num_users[r.scenario] for r in rows if r.scenario in num_users})
        missing: dict[str, int] = {}
        for r in mine:
            if r.throughput_tps is None:
                missing[r.status.value] = missing.get(r.status.value, 0) + 1
        for label, chosen in [(str(m), [r for r in rows if num_users.get(r.scenario) == m]) for m in sizes] + [("all", rows)]:
            proven, open_ = [], []
            cut: dict[str, int] = {}
            cut_worst: tuple[float | None, str | None] = (None, None)
            for r in chosen:
                g = gap(r, refs.get(r.scenario))
                if stopped(r):
                    cut[r.status.value] = cut.get(r.status.value, 0) + 1
                    value, kind = (g.proven, "proven") if g.proven is not None else (g.certified, "certified")
                    if value is not None and (cut_worst[0] is None or max(value, 0.0) > cut_worst[0]):
                        cut_worst = (max(value, 0.0), kind)
                elif g.proven is not None:
                    proven.append((max(g.proven, 0.0), num_users.get(r.scenario, 0)))
                elif g.certified is not None:
                    open_.append((max(g.certified, 0.0), num_users.get(r.scenario, 0)))
            p, o = [v for v, _ in proven], [v for v, _ in open_]
            out.append(GapStatement(
                method, label, len(p), sum(v <= 100.0 * HIT_TOL for v in p),
                statistics.fmean(p) if p else None, statistics.median(p) if p else None, max(p) if p else None,
                tuple(sorted({m for _, m in proven})), len(o), statistics.fmean(o) if o else None,
                max(o) if o else None, tuple(sorted({m for _, m in open_})),
                tuple(sorted(missing.items())) if label == "all" else (), tuple(sorted(cut.items())), *cut_worst))
    return out


def _users(ms: tuple[int, ...]) -> str:
    if not ms:
        return ""
    return f"M {ms[0]}" if ms[0] == ms[-1] else f"M {ms[0]}-{ms[-1]}"


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g} %" if 0 < value < 0.01 else f"{value:.2f} %"


def sentence(st: GapStatement) -> str:
    """One plain sentence: e.g. "dipsd: optimal on 39 of 46; mean gap 0.31 %, worst 5.90 % (proven,
    46 scenarios, M 2-12); elsewhere at most 0.70 % from optimal (certified: mean 0.35 %, 10
    scenarios, M 20-50)"."""
    parts = []
    if st.proven_n:
        parts.append(f"optimal (within 1e-6) on {st.hits} of {st.proven_n}; mean gap {_pct(st.proven_mean)}, worst "
                     f"{_pct(st.proven_max)} (proven, {st.proven_n} scenario{'s' * (st.proven_n != 1)}, "
                     f"{_users(st.proven_users)})")
    if st.open_n:
        where = "elsewhere" if st.proven_n else "where no optimum is proven"
        parts.append(f"{where} at most {_pct(st.open_max)} from optimal (certified: mean {_pct(st.open_mean)}, "
                     f"{st.open_n} scenario{'s' * (st.open_n != 1)}, {_users(st.open_users)})")
    if st.stopped_n:
        limits = " or ".join(sorted({status.replace("_limit", "") for status, _ in st.stopped_by}))
        worst = "" if st.stopped_max is None else (
            f", gap there {'up to ' + _pct(st.stopped_max) if st.stopped_kind == 'proven' else 'at most ' + _pct(st.stopped_max)}"
            f" ({st.stopped_kind})")
        parts.append(f"stopped at its {limits} limit on {st.stopped_n} scenario{'s' * (st.stopped_n != 1)} "
                     f"(not counted in the gaps{'' if not (st.proven_n or st.open_n) else ' above'}{worst})")
    if not parts and not st.without:
        parts.append("no gap known (no proven optimum and no certified bound on its scenarios)")
    if st.without:
        n = sum(k for _, k in st.without)
        parts.append(f"no plan on {n} scenario{'s' * (n != 1)} ({', '.join(f'{status}: {k}' for status, k in st.without)})")
    return f"{st.method}: " + "; ".join(parts)


def statement_text(statements: list[GapStatement], *, done: int | None = None, total: int | None = None,
                   interrupted: bool = False) -> str:
    """The answer for the console: a sentence per method, then the gap per number of users with
    proven and certified (<=) columns apart; a partial study says how far it got."""
    lines = []
    if total is not None and done is not None and (done < total or interrupted):
        lines.append(f"{done} of {total} scenarios done{' (interrupted)' if interrupted else ''}: the numbers below "
                     f"cover those")
    lines += [sentence(st) for st in statements if st.group == "all"]
    lines.append("")
    w = max([12] + [len(st.method) for st in statements])
    lines.append(f"{'method':<{w}} {'M':>5}  {'proven: n':>9} {'optimal':>7} {'mean %':>9} {'median %':>9} {'max %':>9}"
                 f"   {'certified <=: n':>15} {'mean %':>9} {'max %':>9}   {'stopped':>7}")

    def num(v: float | None) -> str:
        return f"{'-':>9}" if v is None else f"{v:>9.4f}"

    for st in statements:
        lines.append(f"{st.method:<{w}} {st.group:>5}  {st.proven_n:>9} {st.hits:>7} {num(st.proven_mean)} "
                     f"{num(st.proven_median)} {num(st.proven_max)}   {st.open_n:>15} {num(st.open_mean)} {num(st.open_max)}"
                     f"   {st.stopped_n:>7}")
    lines.append("proven: gap to a proven optimum; certified <=: where the optimum is open, the gap to the best "
                 "certified bound (the true gap is at most that); stopped: runs cut short by their time or work limit, "
                 "counted apart (in no gap column)")
    return "\n".join(lines)
