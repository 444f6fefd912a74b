r"""The two exact steps of DiP-SD (docs/model.md 5.2): the model of
:mod:`dipsd.formulation.milp` on the cells of a step (its "Three uses").

x-step, :func:`build_assignment_model`: draft lengths fixed, exactly N batches; minimize
the span S.  Users with identical parameters *and* the same fixed length form the classes
(in order of first member), and so do "fast" users of one prefix and one length, whose ready
times can never set the span (:func:`ready_threshold`); every row of the full model applies unchanged (telescoped
memory caps and the batch count each prefix level needs, the exact linearization of
``b_n F_v(L_n, I_n)``, ready times, span rows and cuts, restricted growth over the slots).
U is a constant, so ``max U - q S`` with any ``q > 0`` (1 here) minimizes S, which
maximizes U/S.

l-step, :func:`build_length_model`: batches fixed, so each class (identical users of one
batch) lives in its batch's slot, whose size and prefix level are constants (the
verification time is then linear in the length indicators as it stands); lengths free; ``max U - q S`` is Dinkelbach's subproblem (q a
mutable Param).  Identical
users of one batch share a length at some optimum (the full model's same-length reduction),
so the step's optimum value is unchanged by the counting.
"""

from __future__ import annotations

import pyomo.environ as pyo

from .milp import Decoder, Layout, build, growth_pairs, slot_room
from .tables import Tables


def ready_threshold(tables: Tables, lengths: tuple[int, ...], num_batches: int) -> float:
    """A ready time no batch's span term can exceed the verification sum with: ``(N - 1)(beta_v +
    min_m f(l_m, i_m))`` (-inf for N = 1).

    ``S = max(sum_n t_v_n, max_n (t_d_n + t_v_n))`` and ``t_d_n + t_v_n <= sum_n' t_v_n'`` iff
    ``t_d_n <= sum_{n' != n} t_v_n'``; every other batch verifies at least one user, so
    ``t_v_n' >= beta_v + min_m f(l_m, i_m)``.  A user whose ``ready_m(l_m)`` is at most this
    threshold ("fast") therefore never sets the span: a batch of fast users only has its stage
    term below the sum, and in a batch with a slower member ``t_d_n`` is that member's.  So the
    span is the sum and the stage terms over the slow members only, and fast users enter it only
    through their length and prefix."""
    if num_batches < 2:
        return -float("inf")
    cheapest = min(tables.seq(lengths[m], tables.level_of[m]) for m in range(tables.num_users))
    return (num_batches - 1) * (tables.beta_ms + cheapest)


def assignment_layout(tables: Tables, lengths: tuple[int, ...], num_batches: int) -> Layout:
    """x-step cells: classes split by their fixed length, exactly ``num_batches`` slots, all used.

    Fast users (:func:`ready_threshold`) of one prefix level and one length are interchangeable
    for the span, so they form one class (their permutations vanish from the search) however
    else they differ, and their ready times get no rows; slow users keep classes of identical
    users of one length."""
    t, N = tables, num_batches
    limit = ready_threshold(t, lengths, N)
    cls_of = t.class_of()
    slow: dict[tuple[int, int], list[int]] = {}  # (class, length) -> users
    fast: dict[tuple[int, int], list[int]] = {}  # (length, prefix level) -> users
    for m in range(t.num_users):
        ready = t.ready[m][lengths[m] - 1]
        if ready <= limit:
            fast.setdefault((lengths[m], t.level_of[m]), []).append(m)
        else:
            slow.setdefault((cls_of[m], lengths[m]), []).append(m)
    # slow classes first, slowest first: restricted growth then puts the slowest user in slot 0,
    # whose ready time the LP relaxation sees in full (any class order is a valid symmetry break);
    # then fast classes, longest and highest prefix first
    groups = tuple(tuple(g) for g in sorted(slow.values(), key=lambda g: -t.ready[g[0]][lengths[g[0]] - 1]))
    groups += tuple(tuple(fast[key]) for key in sorted(fast, reverse=True))
    return Layout(
        classes=groups, lengths=tuple(lengths[g[0]] for g in groups), max_length=max(lengths), slots=N,
        pairs=growth_pairs(groups, N), min_count=N, max_count=N, bbar=slot_room(t, N, N),
        symmetric=True, min_span=t.span_lower_bound(N, tuple(lengths)),
        untimed=frozenset(range(len(slow), len(groups))),
    )


def length_layout(tables: Tables, batches: tuple[tuple[int, ...], ...]) -> Layout:
    """l-step cells: per batch, its identical users form a class that lives in the batch's slot."""
    t, N = tables, len(batches)
    cls_of = t.class_of()
    classes: list[tuple[int, ...]] = []
    pairs: list[tuple[int, int]] = []
    for n, batch in enumerate(batches):
        found: dict[int, list[int]] = {}
        for m in sorted(batch):
            found.setdefault(cls_of[m], []).append(m)
        for members in found.values():
            pairs.append((len(classes), n))
            classes.append(tuple(members))
    fixed = tuple((len(b), max(t.level_of[m] for m in b)) for b in batches)
    for n, (size, level) in enumerate(fixed):
        if size > t.room[level]:
            raise ValueError(f"batch {n} holds {size} users, the memory cap allows {t.room[level]} at its prefix")
    return Layout(
        classes=tuple(classes), lengths=(None,) * len(classes), max_length=t.max_length, slots=N,
        tops=tuple(t.limit(members[0]) for members in classes),
        pairs=tuple(pairs), min_count=N, max_count=N, bbar=tuple(len(b) for b in batches),
        symmetric=False, min_span=t.span_lower_bound(N), fixed=fixed,
    )


def build_assignment_model(tables: Tables, lengths: tuple[int, ...], num_batches: int) -> tuple[pyo.ConcreteModel, Decoder]:
    """x-step: the memory-feasible partition into ``num_batches`` non-empty batches minimizing S."""
    return build(tables, assignment_layout(tables, lengths, num_batches), q=1.0, name="dipsd-x-step")


def build_length_model(tables: Tables, batches: tuple[tuple[int, ...], ...], q: float = 0.0) -> tuple[pyo.ConcreteModel, Decoder]:
    """l-step: lengths maximizing ``U - q S`` for fixed batches (q a mutable Param)."""
    return build(tables, length_layout(tables, batches), q=q, name="dipsd-l-step")
