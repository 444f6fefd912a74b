"""Closed-form local search around a plan: the last word on a solver's tolerance-level misses.

A MILP solved "with gap 0" is exact only up to HiGHS's tolerances (:mod:`dipsd.solvers.tolerances`):
its incumbent can miss a plan that is better by a tolerance-sized amount.  :func:`polish` looks
for such a plan with the closed-form evaluator alone (nothing from a solver): first-improvement
moves that change one user's draft length, or (unless ``lengths_only``) move one user to another
batch or into a batch of its own, accepted only when the plan stays feasible and its ratio grows
by more than a relative :data:`~dipsd.solvers.tolerances.IMPROVE_RTOL`.  Every accepted move
strictly raises U/S over a finite set of plans, so the search ends.  :func:`exchange` is the same
kind of search over swaps of two users between batches (what changes batches that the memory cap
fills), used by ``certify`` to improve the plans it finds.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..data.scenario import Scenario
from ..formulation.evaluate import Evaluation, evaluate
from ..formulation.plan import Plan
from .deadline import Deadline
from .tolerances import IMPROVE_RTOL


def _neighbours(scenario: Scenario, plan: Plan, lengths_only: bool, steps: tuple[int, ...] | None) -> Iterator[Plan]:
    for m, length in enumerate(plan.lengths):
        top = scenario.limits[m]
        options = range(1, top + 1) if steps is None else (length + d for d in steps)
        for new in options:
            if 1 <= new <= top and new != length:
                yield Plan(plan.batches, plan.lengths[:m] + (new,) + plan.lengths[m + 1:])
    if lengths_only:
        return
    batches = [list(b) for b in plan.batches]
    for src, members in enumerate(batches):
        for m in members:
            rest = [u for u in members if u != m]
            for dst in range(len(batches) + 1):
                if dst == src or (dst == len(batches) and not rest):
                    continue
                moved = [list(b) for b in batches]
                moved[src] = rest
                if dst == len(batches):
                    moved.append([m])
                else:
                    moved[dst] = sorted(moved[dst] + [m])
                yield Plan(tuple(tuple(b) for b in moved if b), plan.lengths)


def exchange(scenario: Scenario, start: Evaluation, *, clock: Deadline | None = None) -> Evaluation:
    """The plan a local search of *swaps* from ``start`` reaches: two users of different batches
    trade places, keeping their lengths or trading them too (where each user's own length limit
    allows), accepted when the plan stays feasible and its ratio grows by more than a relative
    :data:`IMPROVE_RTOL` (closed form only).

    Where the memory cap fills every batch, moving one user (:func:`polish`) breaks the cap, and only
    a swap changes the batches.  The scan goes on after an accepted swap (over the new plan) and
    passes repeat until one accepts nothing; every accepted swap strictly raises U/S over a finite
    set of plans, so the search ends.  ``clock`` stops it when time is up."""
    best = start
    improved = True
    while improved:
        improved = False
        for i in range(scenario.num_users):
            for j in range(i + 1, scenario.num_users):
                if clock is not None and clock.expired():
                    return best
                swapped = _swap(scenario, best, i, j)
                if swapped is not None:
                    best, improved = swapped, True
    return best


def _swap(scenario: Scenario, current: Evaluation, i: int, j: int) -> Evaluation | None:
    """The better plan in which users ``i`` and ``j`` trade batches (lengths kept, else traded too), or None."""
    plan = current.plan
    a = next(n for n, batch in enumerate(plan.batches) if i in batch)
    if j in plan.batches[a]:
        return None
    b = next(n for n, batch in enumerate(plan.batches) if j in batch)
    batches = list(plan.batches)
    batches[a] = tuple(sorted([m for m in plan.batches[a] if m != i] + [j]))
    batches[b] = tuple(sorted([m for m in plan.batches[b] if m != j] + [i]))
    traded = list(plan.lengths)
    traded[i], traded[j] = plan.lengths[j], plan.lengths[i]
    options = [plan.lengths]
    if traded[i] != traded[j] and traded[i] <= scenario.limits[i] and traded[j] <= scenario.limits[j]:
        options.append(tuple(traded))  # (each user's own length limit holds)
    for lengths in options:
        ev = evaluate(scenario, Plan(tuple(batches), lengths))
        if ev.feasible and ev.ratio > current.ratio * (1 + IMPROVE_RTOL):
            return ev
    return None


def polish(scenario: Scenario, start: Evaluation, *, lengths_only: bool = False, steps: tuple[int, ...] | None = None,
           clock: Deadline | None = None, max_moves: int = 1000) -> Evaluation:
    """The best plan a first-improvement local search from ``start`` reaches (``start`` itself if
    no move improves it).  ``steps`` limits length changes to those offsets (e.g. ``(-1, 1)``);
    ``clock`` stops the search when time is up."""
    best = start
    for _ in range(max_moves):
        for plan in _neighbours(scenario, best.plan, lengths_only, steps):
            ev = evaluate(scenario, plan)
            if ev.feasible and ev.ratio > best.ratio * (1 + IMPROVE_RTOL):
                best = ev
                break
            if clock is not None and clock.expired():
                return best
        else:
            return best
    return best
