r"""DiP-SD's l-step solved by its structure: the integer draft lengths maximizing U/S for fixed batches.

Notation (docs/model.md 3): batches ``B_1..B_N`` are fixed, ``b_n = |B_n|``, ``J_n`` its longest
prefix, ``w_n(L) = beta_v + b_n f(L, J_n)`` the verification time of batch n padded to length L
(increasing in L), ``r_m(k)`` user m's ready time and ``u_m(k)`` its expected tokens at length k
(both nondecreasing in k), ``lim_m`` its longest allowed length.

**The cap problem.**  For a span cap ``sigma``, batch n and a padded length ``L`` (at most the
longest limit in ``B_n``) let ``k_m(L, sigma)`` be the longest ``k <= min(L, lim_m)`` with
``r_m(k) + w_n(L) <= sigma`` (the option ``(n, L)`` is infeasible when a member has none) and
``v_n(L, sigma) = sum_{m in B_n} u_m(k_m(L, sigma))``.  One option per batch is a *choice*; its
weight is ``W = sum_n w_n(L_n)`` and its value ``V = sum_n v_n(L_n, sigma)``.

**Claim.**  Let ``E`` be the finite set of stage values ``r_m(k) + w_n(L)`` (``m in B_n``,
``k <= min(L, lim_m)``), ``e_0 < e_1 < ...`` its points, and ``Q_i`` the largest
``V / max(e_i, W)`` over the choices feasible at ``sigma = e_i``.  Then ``R* = max_i Q_i``, and
the lengths ``k_m(L_n, e_i)`` of a maximizing choice are an optimal plan.

*Proof.*  (achievable) A choice feasible at ``e_i`` with lengths ``l_m = k_m(L_n, e_i)`` is a plan
whose batch n pads to ``L'_n <= L_n``, so ``t_v_n <= w_n(L_n)`` (f increases in L) and
``t_d_n + t_v_n <= max_m r_m(l_m) + w_n(L_n) <= e_i``; its span is ``S <= max(e_i, W)`` and its
tokens are ``V``, so ``Q_i <= U/S <= R*``.  (attained) Let an optimal plan ``l*`` pad batch n to
``L*_n`` with span ``S*``.  Every stage term ``r_m(l*_m) + w_n(L*_n)`` is a point of E at most
``S*``; let ``e_i`` be the largest point of E at most ``S*`` (it exists: the stage terms are
points).  Each ``L*_n`` is feasible at ``e_i`` with ``k_m(L*_n, e_i) >= l*_m`` (its stage terms are
points ``<= S*``, hence ``<= e_i``), so that choice has ``V >= U*`` and ``W = sum_n t_v_n <= S*``;
and ``e_i <= S*``.  So ``Q_i >= U* / S* = R*``.  []

**Search.**  ``v_n(L, sigma)`` is nondecreasing in ``sigma`` and feasibility only grows.  So a
choice feasible at ``e_t`` (t >= 1) that uses no option whose value changed between ``e_{t-1}``
and ``e_t`` was feasible at ``e_{t-1}`` with the same V and a smaller ``max(e, W)``: ``Q_t`` is
either ``<= Q_{t-1}`` or attained by a choice that uses an option changed at t.  For a range of
points ``lo..hi`` (lo >= 1) such options are among those whose value at ``e_hi`` differs from
the one at ``e_{lo-1}`` (values are monotone); at ``lo = 0`` every option counts.  An option
``(n, L)`` of that set is dropped when the Lagrangian bound with batch n held at L proves that no
choice using it beats the incumbent ratio ``q`` (:func:`_survivors`): for any ``lam in [0, 1]``,
``max(e_t, W) >= lam max(e_lo, W_min) + (1 - lam) W``, so ``V - q max(e_t, W) <=
sum_{n' != n} max_L' (v_n'(L', e_hi) - q (1 - lam) w_n'(L')) + v_n(L, e_hi) - q (1 - lam) w_n(L)
- q lam max(e_lo, W_min)``; the option goes when this is <= 0 for some ``lam`` of a grid.
Ranges with no option left are dropped; the others are halved, best first (by the bound
``sum_n max_L v_n(L, e_hi) / max(e_lo, W_min)``, which also ends the search once it is <= q).  At a
single point each surviving option is held and the rest solved exactly by a dynamic program over
batches (:func:`_best_choice`) that keeps the Pareto frontier of ``(W, V)`` and drops every
partial choice the same bound proves cannot beat ``q``.

The MILP l-step (:func:`dipsd.solvers.steps.l_step_milp`) computes the same optimum; the tests
hold both to brute force on tiny instances and to each other on seeded ones.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

from ..formulation.tables import Tables
from .tolerances import IMPROVE_RTOL

_LAMBDAS = np.linspace(0.0, 1.0, 11)
"""Multipliers of the Lagrangian bound (any values in [0, 1] are valid; more prune more)."""


class _Arrays:
    """The step's numbers as arrays, users in batch order: ``ready``/``tokens`` (users x lengths,
    ``ready`` +inf above a user's limit), ``w`` (batches x lengths, +inf above a batch's longest
    limit), ``batch_of`` (each user's batch) and ``wu`` (each user's batch row of ``w``)."""

    def __init__(self, tables: Tables, batches: tuple[tuple[int, ...], ...]) -> None:
        t, k = tables, tables.max_length
        self.users = [m for b in batches for m in b]
        sizes = [len(b) for b in batches]
        self.starts = np.cumsum([0] + sizes[:-1])
        lengths = np.arange(1, k + 1)
        limits = np.array([t.limit(m) for m in self.users])
        ready = np.array([t.ready[m] for m in self.users], dtype=float).reshape(len(self.users), k)
        self.ready = np.where(lengths[None, :] <= limits[:, None], ready, np.inf)
        self.tokens = np.array([t.tokens[m] for m in self.users], dtype=float).reshape(len(self.users), k)
        self.w = np.full((len(batches), k), np.inf)
        for n, b in enumerate(batches):
            level, top = max(t.level_of[m] for m in b), max(t.limit(m) for m in b)
            for length in range(1, top + 1):
                self.w[n, length - 1] = t.beta_ms + len(b) * t.seq(length, level)
        self.batch_of = np.repeat(np.arange(len(batches)), sizes)  # each row's batch
        self.wu = self.w[self.batch_of]
        self.below = lengths[None, :] <= lengths[:, None]  # [L, k]: k <= L
        self.lengths = lengths

    def points(self) -> np.ndarray:
        """E: every stage value ``r_m(k) + w_n(L)``, ``k <= min(L, lim_m)``, sorted, unique."""
        stage = self.ready[:, None, :] + self.wu[:, :, None]  # [m, L, k]
        return np.unique(stage[np.broadcast_to(self.below, stage.shape) & np.isfinite(stage)])

    def at(self, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """``(v, k)`` at cap ``sigma``: ``v[n, L-1] = v_n(L, sigma)`` (-inf where infeasible) and
        ``k[m, L-1] = k_m(L, sigma)`` (0 where none)."""
        # r + w <= sigma computed as in points(), not r <= sigma - w: a point must admit its own option
        fits = (self.ready[:, None, :] + self.wu[:, :, None] <= sigma) & self.below[None]
        k = (fits * self.lengths).max(axis=2)
        got = np.take_along_axis(self.tokens, np.maximum(k - 1, 0), axis=1)
        v = np.add.reduceat(np.where(k > 0, got, -np.inf), self.starts, axis=0)
        return v, k


def _terms(v: np.ndarray, w: np.ndarray, q: float) -> np.ndarray:
    """``[lam, n, L] -> v[n, L] - q (1 - lam) w[n, L]``, -inf where the option is infeasible: the
    Lagrangian relaxation's value of each option (module docstring, "Search")."""
    with np.errstate(invalid="ignore"):
        terms = v[None] - q * (1.0 - _LAMBDAS)[:, None, None] * w[None]
    return np.where(np.isfinite(terms), terms, -np.inf)


def _margins(v: np.ndarray, w: np.ndarray, q: float) -> np.ndarray:
    """``[lam, n] -> max_L (v[n, L] - q (1 - lam) w[n, L])`` over the feasible options."""
    return _terms(v, w, q).max(axis=2)


def _survivors(v: np.ndarray, w: np.ndarray, new: np.ndarray, low: float, q: float) -> np.ndarray:
    """The options ``(n, L)`` among ``new`` (a boolean mask) that some choice using them might beat
    ratio ``q`` with, at values ``v`` and caps ``>= low`` (module docstring, "Search"): the
    Lagrangian bound with batch n held at L, ``sum_{n' != n} max_L' (v - q (1 - lam) w) +
    (v[n, L] - q (1 - lam) w[n, L]) - q lam low``, is positive for every ``lam`` of the grid."""
    if not np.isfinite(v.max(axis=1)).all():
        return np.zeros_like(new)  # some batch has no feasible option
    terms = _terms(v, w, q)  # [lam, n, L]
    best = terms.max(axis=2)  # [lam, n]
    held = best.sum(axis=1)[:, None, None] - best[:, :, None] + terms - (q * _LAMBDAS * low)[:, None, None]
    return new & (held > 0).all(axis=0)


def _good_choice(v: np.ndarray, w: np.ndarray, sigma: float, q: float) -> tuple[float, np.ndarray] | None:
    """A choice with ratio ``V / max(sigma, W)`` above ``q``, found fast (None if this finds none):
    Dinkelbach on the Lagrangian relaxation, each batch at its best ``v - q (1 - lam) w`` for every
    ``lam`` of the grid.  It only raises the incumbent before :func:`_best_choice` proves the point."""
    found = None
    rows = np.arange(v.shape[0])
    for _ in range(20):
        picks = _terms(v, w, q).argmax(axis=2)  # [lam, n]
        value, weight = v[rows, picks].sum(axis=1), w[rows, picks].sum(axis=1)
        ratio = value / np.maximum(sigma, weight)
        i = int(np.argmax(ratio))
        if not ratio[i] > q * (1 + IMPROVE_RTOL):
            break
        q, found = float(ratio[i]), (float(ratio[i]), picks[i] + 1)
    return found


def _best_choice(v: np.ndarray, w: np.ndarray, sigma: float, q: float) -> tuple[float, np.ndarray] | None:
    """The choice maximizing ``V / max(sigma, W)`` if its ratio is above ``q``: (ratio, lengths
    per batch), else None.  Dynamic program over batches on the Pareto frontier of ``(W, V)``
    (a partial choice with less weight and no more value is never needed, as the ratio falls in W
    and rises in V); partial choices that the Lagrangian bound of the rest proves below ``q`` go."""
    margins = _margins(v, w, q)  # [lam, n]
    rest = np.concatenate([np.cumsum(margins[:, ::-1], axis=1)[:, ::-1], np.zeros((len(_LAMBDAS), 1))], axis=1)
    weight, value = np.zeros(1), np.zeros(1)
    trail: list[tuple[np.ndarray, np.ndarray]] = []  # per batch: (parent state, length) of each state
    for n in range(v.shape[0]):
        ok = np.isfinite(v[n])
        opt_w, opt_v, opt_l = w[n][ok], v[n][ok], np.nonzero(ok)[0] + 1
        parent = np.repeat(np.arange(len(weight)), len(opt_l))
        length = np.tile(opt_l, len(weight))
        weight = (weight[:, None] + opt_w[None, :]).ravel()
        value = (value[:, None] + opt_v[None, :]).ravel()
        bound = value[:, None] - q * (1.0 - _LAMBDAS)[None, :] * weight[:, None] + rest[:, n + 1][None, :] \
            - q * _LAMBDAS[None, :] * sigma
        alive = np.nonzero((bound > 0).all(axis=1))[0]
        alive = alive[np.lexsort((-value[alive], weight[alive]))]
        if not len(alive):
            return None
        front = value[alive] > np.concatenate([[-np.inf], np.maximum.accumulate(value[alive])[:-1]])
        keep = alive[front]
        weight, value = weight[keep], value[keep]
        trail.append((parent[keep], length[keep]))
    ratio = value / np.maximum(sigma, weight)
    i = int(np.argmax(ratio))
    best = float(ratio[i])
    if not best > q:
        return None
    picks = np.zeros(len(trail), dtype=int)
    for n in range(len(trail) - 1, -1, -1):
        parents, lengths = trail[n]
        picks[n], i = lengths[i], int(parents[i])
    return best, picks


def best_lengths(tables: Tables, batches: tuple[tuple[int, ...], ...], incumbent: float,
                 expired: Callable[[], bool] = lambda: False) -> tuple[tuple[int, ...] | None, bool]:
    """``(lengths, proven)``: lengths (indexed by user) of an optimal plan for ``batches`` if its U/S
    (tokens/ms) beats ``incumbent`` by more than a relative :data:`IMPROVE_RTOL`, else None (module
    docstring); ``proven`` is False when ``expired`` (the caller's deadline) stopped the search, which
    then returns the best lengths it found.

    Each user gets the shortest length with its chosen expected tokens (never a longer S)."""
    arrays = _Arrays(tables, batches)
    points = arrays.points()
    if not len(points):
        return None, True
    q = incumbent * (1 + IMPROVE_RTOL)
    w_min = float(arrays.w[:, 0].sum())
    cache: dict[int, np.ndarray] = {}

    def values(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = arrays.at(float(points[i]))[0]
        return cache[i]

    def priority(lo: int, hi: int) -> float:
        return float(values(hi).max(axis=1).sum()) / max(float(points[lo]), w_min)

    def candidates(lo: int, hi: int) -> np.ndarray:
        """Options a choice must use to beat q at a point of lo..hi: those whose value at hi
        differs from the one before lo (all at point 0), that the held-option bound keeps."""
        now = values(hi)
        new = np.isfinite(now) if lo == 0 else now != values(lo - 1)
        return _survivors(now, arrays.w, new, max(float(points[lo]), w_min), q)

    found: tuple[int, np.ndarray] | None = None
    heap = [(-priority(0, len(points) - 1), 0, len(points) - 1)]
    proven = True
    while heap:
        if expired():
            proven = False
            break
        top, lo, hi = heapq.heappop(heap)
        if -top <= q:
            break
        keep = candidates(lo, hi)
        if not keep.any():
            continue
        if lo < hi:
            mid = (lo + hi) // 2
            for a, b in ((lo, mid), (mid + 1, hi)):
                heapq.heappush(heap, (-priority(a, b), a, b))
            continue
        for n, length in zip(*np.nonzero(keep)):
            held = values(lo).copy()
            held[n, :] = -np.inf
            held[n, length] = values(lo)[n, length]
            for solve in (_good_choice, _best_choice):
                got = solve(held, arrays.w, float(points[lo]), q)
                if got is not None:
                    q, found = got[0], (lo, got[1])
    if found is None:
        return None, proven
    lo, pads = found
    k = arrays.at(float(points[lo]))[1]
    lengths = [0] * tables.num_users
    for row, m in enumerate(arrays.users):
        chosen = int(k[row, pads[arrays.batch_of[row]] - 1])
        tokens = tables.tokens[m]
        lengths[m] = min(j for j in range(1, chosen + 1) if tokens[j - 1] >= tokens[chosen - 1])
    return tuple(lengths), proven
