r"""Problem P as a Pyomo MILP for Dinkelbach's subproblem ``F(q) = max U - q S``.

Notation (latencies in ms, precomputed by :class:`~dipsd.formulation.tables.Tables`).
Identical users (same alpha or acceptance table, prefix, communication latency and
device) form *classes* ``c = 0..C-1`` of ``n_c`` users, ordered by their first member;
heterogeneous users are classes of one.  Batch slots ``n = 0..N_max-1``, draft lengths
``k = 1..L`` (``L = L_ub``), prefix levels ``j = 0..J-1`` (the distinct prefix lengths
``P_0 < ... < P_{J-1}``).  Per class: ``u_ck`` expected tokens, ``r_ck = tau_d(k) + tau_c``
ready time; ``f_kj = c_v F_v(k, P_j)`` is the verification time of one sequence padded
to ``(k, P_j)``; ``B_j`` the largest memory-feasible batch whose longest prefix is ``P_j``.
``Delta v_k = v_k - v_{k-1}`` (``v_0 = 0``) turns a value of the length into a sum over
cumulative indicators: ``v_l = sum_{k <= l} Delta v_k``.

Variables
---------
* ``A[c,n,k] in {0..n_c}``: how many class-c users are in batch n with draft length
  ``>= k``; ``a_cn = A_cn1`` is how many class-c users batch n holds.  (Counting identical
  users instead of naming them removes their permutations from the search.)
* ``E[c,n,k] in {0,1}``: ``[A_cnk >= 1]``; for a class of one user it *is* ``A``.
* ``w[n] in {0,1}``: slot n is used; ``b[n]``: its size ``sum_c a_cn``.
* ``Z[n,k] in [0,1]`` (k >= 2): ``[L_n >= k]`` (``Z[n,1]`` is ``w_n``);
  ``P[n,j] in [0,1]`` (j >= 1): ``[I_n >= P_j]`` (``P[n,0]`` is ``w_n``).
* ``H[n,k,j] >= 0``: ``b_n [L_n >= k] [I_n >= P_j]``; ``tv[n]``: ``t_v_n``; ``T[n]``:
  ``t_d_n``; ``S``: the span.

Constraints
-----------
* counts: ``A_cn,k+1 <= A_cnk``, ``E_cn,k+1 <= E_cnk``, ``E_cnk <= A_cnk <= n_c E_cnk``;
  ``sum_n a_cn = n_c``; ``b_n = sum_c a_cn``; ``E_cn1 <= w_n``; ``b_n >= w_n``;
  ``max(N_min, N_mem) <= sum_n w_n <= N_max``, where ``N_mem`` is the fewest
  memory-feasible batches (packing users longest prefix first, each batch up to the cap
  of its first user, is optimal: an exchange argument moves the longest prefixes into the
  first batch without raising any other batch's prefix); valid for every plan, and it
  tells the LP relaxation how many times it pays ``beta_v``.
* batch maxima: ``Z_nk >= E_cnk`` (``L_n`` reaches every member's length),
  ``w_n >= Z_n2 >= Z_n3 >= ...``; ``P_nj >= E_cn1`` for classes with prefix ``>= P_j``,
  ``w_n >= P_n1 >= ...``.  Z and P may be continuous: once A and E are integral, their 0/1
  indicator values satisfy every row they enter, and any larger value only raises a cost
  (through H) or lowers a memory cap, so the model admits exactly the plans of P and an
  optimum may take the indicator values.
* memory (docs/model.md 3.6): with ``C_j = min(B_j, Bbar_n)`` (non-increasing in j),
  ``b_n <= C_0 w_n - sum_{j >= 1} (C_{j-1} - C_j) P_nj``: exact because ``I_n`` is the
  largest ``P_j`` with ``P_nj = 1`` and the sum telescopes to ``b_n <= C_{j*}``; plus the
  implied ``sum_{c: prefix_c >= P_j} a_cn <= C_j P_nj`` and
  ``sum_n P_nj >= r_j``, the fewest memory-feasible batches that hold the users with prefix
  ``>= P_j`` (:meth:`Tables.fewest_batches`: the greedy packing of those users, proven minimal
  there; at least ``ceil(#users with prefix >= P_j / B_j)`` and more where higher prefixes leave
  smaller rooms).
* verification (3.3): with ``D_kj = f_kj - f_{k-1,j} - f_{k,j-1} + f_{k-1,j-1}``
  (``f_0j = f_{k,-1} = 0``), telescoping gives
  ``b_n f(L_n, I_n) = sum_{k,j} D_kj b_n [L_n >= k][I_n >= P_j]``, so
  ``t_v_n >= beta_v w_n + sum_{k,j} D_kj H_nkj`` (``H_n10 = b_n``; equality at an optimum,
  ``t_v_n`` lies only on the small side of the span rows).  Every ``D_kj >= 0``
  (F_v increases in L and its mixed difference is ``4 J_v h1_v (P_j - P_{j-1}) > 0``), so
  the objective pushes each H down onto the largest of its lower bounds:

  - ``H_nkj >= b_n - Bbar_n (1 - Z_nk) - Bbar_n (1 - P_nj)`` (terms for ``Z_n1 = P_n0 = w_n``
    dropped, as ``b_n = 0`` when ``w_n = 0``).  The big-M (here, and the cap of the
    memory rows) is ``Bbar_n = min(max_j B_j, M - N_min + 1, M - n)``, the most users
    slot n can hold (memory at the shortest prefix; every other used batch holds at least
    one user; symmetry breaking leaves slot n at most ``M - n`` users).  With both indicators 1 the bound is ``b_n``; otherwise it is
    ``<= 0``: valid,
    and the smallest constant that is.
  - ``H_nkj >= sum_{c: prefix_c >= P_j} A_cnk``: members whose own length and prefix reach
    (k, P_j) pay for it.  Implied at integral points, it makes the LP relaxation charge
    every user at least its own verification cost.
* ready time (3.4): ``T_n >= sum_k Delta r_ck E_cnk`` for every class.
* span (3.5): ``S >= sum_n tv_n``, ``S >= T_n + tv_n``, ``S >= S_min``
  (:meth:`Tables.span_lower_bound`, valid for every plan), and, implied at integral
  points, ``S >= (1/n_c) sum_{n,k} Delta(r + beta_v + f)_ck A_cnk``: on average over the
  class, a user's own batch waits for its draft and verifies at least its own sequence.

Objective: ``max W (sum_{c,n,k} Delta u_ck A_cnk - q S)`` with ``q`` (tokens/ms) and the
positive scale ``W`` mutable Params; ``W`` does not change the maximizers, it sets the units in
which the solver's absolute tolerances act (:mod:`dipsd.solvers.tolerances`).

Symmetry breaking
-----------------
Batch slots are interchangeable (S does not depend on the verification order), and so are
the users of a class.  Expand the classes into a user order (class 0's users, then class
1's, ...) and keep, among all representations of a plan, the lexicographically smallest
vector of batch labels.  It assigns each class's users to batches in non-decreasing order
(swapping two that violate this gives a smaller vector) and is a *restricted growth*
string: a user may open batch n only if an earlier user sits in batch n-1.  For the first
class-c user in batch n the earlier users are all of classes ``c' < c`` and the class-c
users in batches ``< n``, hence

* ``E_cn1 <= sum_{c' <= c} E_c',n-1,1`` and ``w_n <= w_{n-1}``;
* class c exists in slot n only if ``n <= (users of classes <= c) - 1``;
* counts carry no order within a class, so the rest of the user symmetry is gone;
* with a single class, batches are also ordered by size: ``b_n <= b_{n-1}``.

One optimality-preserving reduction (some optimal plan of ``F(q)`` satisfies it): users
of one class in one batch share a length, ``A_cnk >= a_cn - n_c (1 - E_cnk)``,
because raising each to the longest among them leaves ``L_n``, ``I_n`` and ``t_d_n`` as
they are and does not lower U.

Three uses, one set of rows
---------------------------
A :class:`Layout` says which cells a model has; every row above is built by one ``_add_*``
helper from the layout, so the full model and DiP-SD's two step models
(:mod:`dipsd.formulation.steps`) are the same formulation on different cells:

* the full model (:func:`full_layout`): the classes, every length free, slots
  ``0..N_max-1`` in restricted growth, ``max(N_min, N_mem) <= sum_n w_n <= N_max``;
* the x-step: lengths fixed, classes split by length (a class with a fixed length ``l_c``
  has only ``A_cn1``, and ``A_cnk`` *is* ``A_cn1`` for ``k <= l_c`` and 0 above), exactly N
  slots, all used;
* the l-step: batches fixed, so each class lives in one given slot whose size ``b_n`` and
  level ``I_n`` are constants (no P, no memory rows, and ``b_n F_v(L_n, I_n)`` is linear in Z
  without H), no symmetry breaking (slots are not interchangeable once fixed), lengths free.

Units
-----
Every time coefficient is divided by the layout's span lower bound ``S_min`` (ms), so the
model's ``S >= 1`` and its coefficients are of the order of one however the latencies are
scaled (1e-6 ms or 6e5 ms, slopes of 1e-30 ms/FLOP).  A coefficient HiGHS still drops (below
1e-9 of ``S_min``) sits on the larger side of a ``>=`` row or in a verification time, so
dropping it only relaxes the model: a dual bound stays valid, and every plan is re-valued in
closed form anyway (every time row is a ``>=`` whose small side is a time variable).  ``q`` is
given to the model in tokens per unit.

A builder returns the model and a :class:`Decoder`, which maps a loaded solution to a
:class:`~dipsd.formulation.plan.Plan` and a plan to MIP-start values; nothing else is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap

from ..data.scenario import Scenario
from .evaluate import greedy_batches
from .plan import Plan
from .tables import Tables


@dataclass(frozen=True)
class Layout:
    """The cells of one use of the formulation (module docstring, "Three uses").

    ``classes[c]`` are the user indices of class c (interchangeable users), ``lengths[c]``
    their fixed draft length or None (free, ``1..max_length``); slot n may hold class c only
    if ``(c, n)`` is in ``pairs``; ``min_count <= sum_n w_n <= max_count``; ``bbar[n]`` is the
    most users slot n can hold; ``symmetric`` says the slots are interchangeable (restricted
    growth applies); ``min_span`` is a lower bound on S valid for every plan of the layout.
    """

    classes: tuple[tuple[int, ...], ...]
    lengths: tuple[int | None, ...]
    max_length: int
    slots: int
    pairs: tuple[tuple[int, int], ...]
    min_count: int
    max_count: int
    bbar: tuple[int, ...]
    symmetric: bool
    min_span: float
    fixed: tuple[tuple[int, int], ...] | None = None
    """Where each slot holds a given batch (the l-step): its size and prefix level."""
    tops: tuple[int, ...] = ()
    """Per class, the longest length its users may draft (their own limit; empty: ``max_length``
    for every class).  A free-length class's counts above it are bounded to 0."""
    untimed: frozenset[int] = frozenset()
    """Classes whose ready times never set the span (no ready rows, no per-class span cut): such
    a class may join users who differ only in ready time or acceptance (see
    :func:`dipsd.formulation.steps.assignment_layout`)."""

    @property
    def stage_free(self) -> bool:
        """No class's ready time can set the span: ``S = sum_n t_v_n``."""
        return len(self.untimed) == len(self.classes)

    def size(self, c: int) -> int:
        return len(self.classes[c])

    def top(self, c: int) -> int:
        """The longest length class c can have (its fixed length, else its users' limit)."""
        fixed = self.lengths[c]
        if fixed is not None:
            return fixed
        return min(self.max_length, self.tops[c]) if self.tops else self.max_length

    def own_ks(self, c: int) -> range:
        """The k with a variable ``A_cnk`` of its own (k = 1 only when the length is fixed)."""
        return range(1, self.max_length + 1) if self.lengths[c] is None else range(1, 2)


def growth_pairs(classes, slots: int) -> tuple[tuple[int, int], ...]:
    """(class, slot) pairs restricted growth allows: class c reaches at most slot
    ``(users of classes <= c) - 1``."""
    last, pairs = 0, []
    for c, members in enumerate(classes):
        last += len(members)
        pairs += [(c, n) for n in range(min(last, slots))]
    return tuple(pairs)


def slot_room(t: Tables, min_batches: int, slots: int) -> tuple[int, ...]:
    """``Bbar_n`` for slots ``0..slots-1``: memory at the shortest prefix, every other of at least
    ``min_batches`` batches holds a user, and restricted growth leaves slot n at most ``M - n``."""
    M = t.num_users
    return tuple(max(1, min(max(t.room), M - min_batches + 1, M - n)) for n in range(slots))


def full_layout(scenario: Scenario, t: Tables) -> Layout:
    """Problem P: every class free, ``N_min..N_max`` slots in restricted growth (module docstring)."""
    slots = scenario.max_batches
    packed = greedy_batches(scenario)
    fewest = max(scenario.min_batches, len(packed) if packed is not None else slots + 1)
    return Layout(
        classes=t.classes, lengths=(None,) * len(t.classes), max_length=t.max_length, slots=slots,
        tops=tuple(t.limit(members[0]) for members in t.classes),
        pairs=growth_pairs(t.classes, slots), min_count=fewest, max_count=slots,
        bbar=slot_room(t, scenario.min_batches, slots), symmetric=True, min_span=t.span_lower_bound(scenario.min_batches),
    )


def build(t: Tables, layout: Layout, *, q: float = 0.0, name: str = "dipsd") -> tuple[pyo.ConcreteModel, Decoder]:
    """The MILP of ``max U - q S`` over the layout's cells (q a mutable Param), and its decoder.

    Times are in units of ``layout.min_span`` ms (module docstring, "Units"): the model's ``S``
    is ``span_ms / unit`` and its ``q`` is ``q_per_ms * unit`` (:attr:`Decoder.unit_ms`), so
    ``q S`` and the objective are the same numbers as in ms."""
    unit = layout.min_span
    t, layout_ms, layout = t.in_units(unit), layout, replace(layout, min_span=1.0)
    model = pyo.ConcreteModel(name=name)
    model.q = pyo.Param(mutable=True, initialize=float(q) * unit, within=pyo.NonNegativeReals)
    model.scale = pyo.Param(mutable=True, initialize=1.0, within=pyo.PositiveReals)
    _add_sets(model, layout)
    _add_counts(model, layout)
    _add_symmetry_breaking(model, layout)
    _add_batch_maxima(model, layout, t)
    _add_memory(model, layout, t)
    _add_verification(model, layout, t)
    _add_batch_counts(model, layout, t)
    _add_ready_times(model, layout, t)
    _add_span(model, layout, t)
    _add_objective(model, layout, t)
    return model, Decoder(layout_ms, t.num_users, model.A, model.E, model.w, unit)


def build_model(scenario: Scenario, *, q: float = 0.0, tables: Tables | None = None) -> tuple[pyo.ConcreteModel, Decoder]:
    """The MILP of ``F(q)`` for ``scenario`` (see the module docstring for the math) and its decoder."""
    t = tables or Tables.of(scenario)
    return build(t, full_layout(scenario, t), q=q, name=f"dipsd-{scenario.name}")


def model_size(scenario: Scenario, t: Tables) -> int:
    """The number of (class, slot, length) and (slot, length, prefix level) index cells of the model:
    its variables and rows grow in proportion, and so does the time to build it."""
    pairs = len(growth_pairs(t.classes, scenario.max_batches))
    return (pairs + scenario.max_batches * len(t.levels)) * t.max_length


def _increments(values):
    """``v_k - v_{k-1}`` with ``v_0 = 0``: coefficients of the cumulative indicators."""
    return [values[0]] + [values[i] - values[i - 1] for i in range(1, len(values))]


def _count(model, lay: Layout, c: int, n: int, k: int):
    """``A_cnk``: its own variable for a free length; ``A_cn1`` up to a fixed length, None above."""
    fixed = lay.lengths[c]
    if fixed is None:
        return model.A[c, n, k]
    return model.A[c, n, 1] if k <= fixed else None


def _ind(model, lay: Layout, c: int, n: int, k: int):
    """``E_cnk`` (None where ``A_cnk`` is 0): the count itself for a class of one user."""
    fixed = lay.lengths[c]
    if fixed is not None:
        if k > fixed:
            return None
        k = 1
    return model.A[c, n, k] if lay.size(c) == 1 else model.E[c, n, k]


def _classes_in(lay: Layout, n: int):
    return [c for (c, nn) in lay.pairs if nn == n]


def _level(lay: Layout, t: Tables, c: int) -> int:
    return t.level_of[lay.classes[c][0]]


def _add_sets(model, lay: Layout) -> None:
    """Index sets; ``CN`` holds the (class, slot) pairs of the layout, ``CNK`` the counts' cells."""
    model.C = pyo.RangeSet(0, len(lay.classes) - 1)
    model.N = pyo.RangeSet(0, lay.slots - 1)
    model.K = pyo.RangeSet(1, lay.max_length)
    model.CN = pyo.Set(dimen=2, initialize=list(lay.pairs))
    model.CNK = pyo.Set(dimen=3, initialize=[(c, n, k) for (c, n) in lay.pairs for k in lay.own_ks(c)])


def _add_counts(model, lay: Layout) -> None:
    """Counts, their indicators, batch sizes, slot use and the range of N."""
    # a length above the class's limit (its users' own max_draft_length) is not allowed: count 0
    model.A = pyo.Var(model.CNK, domain=pyo.NonNegativeIntegers,
                      bounds=lambda mdl, c, n, k: (0, lay.size(c) if k <= lay.top(c) or lay.lengths[c] is not None else 0))
    model.EIDX = pyo.Set(dimen=3, initialize=[(c, n, k) for (c, n, k) in model.CNK if lay.size(c) > 1])
    model.E = pyo.Var(model.EIDX, domain=pyo.Binary)
    model.w = pyo.Var(model.N, domain=pyo.Binary)
    model.b = pyo.Var(model.N, bounds=lambda mdl, n: (0, lay.bbar[n]))
    steps = [(c, n, k) for (c, n, k) in model.CNK if k >= 2]
    model.a_chain = pyo.Constraint(steps, rule=lambda mdl, c, n, k: mdl.A[c, n, k] <= mdl.A[c, n, k - 1])
    model.e_chain = pyo.Constraint([i for i in steps if i in model.EIDX], rule=lambda mdl, c, n, k: mdl.E[c, n, k] <= mdl.E[c, n, k - 1])
    model.e_low = pyo.Constraint(model.EIDX, rule=lambda mdl, c, n, k: mdl.E[c, n, k] <= mdl.A[c, n, k])
    model.e_high = pyo.Constraint(model.EIDX, rule=lambda mdl, c, n, k: mdl.A[c, n, k] <= lay.size(c) * mdl.E[c, n, k])
    model.same_length = pyo.Constraint(
        [i for i in steps if i in model.EIDX],
        rule=lambda mdl, c, n, k: mdl.A[c, n, k] >= mdl.A[c, n, 1] - lay.size(c) * (1 - mdl.E[c, n, k]),
    )
    model.assign = pyo.Constraint(model.C, rule=lambda mdl, c: sum(mdl.A[c, n, 1] for (cc, n) in lay.pairs if cc == c) == lay.size(c))
    model.size = pyo.Constraint(model.N, rule=lambda mdl, n: mdl.b[n] == sum(mdl.A[c, n, 1] for c in _classes_in(lay, n)))
    model.use = pyo.Constraint(model.CN, rule=lambda mdl, c, n: _ind(mdl, lay, c, n, 1) <= mdl.w[n])
    model.nonempty = pyo.Constraint(model.N, rule=lambda mdl, n: mdl.b[n] >= mdl.w[n])
    # two rows, not one ranged row: min_count > max_count must give an infeasible model, not an error
    model.count_low = pyo.Constraint(expr=sum(model.w[n] for n in model.N) >= lay.min_count)
    model.count_high = pyo.Constraint(expr=sum(model.w[n] for n in model.N) <= lay.max_count)


def _add_symmetry_breaking(model, lay: Layout) -> None:
    """Restricted growth over slots (generalized to classes); size order for a single class.
    None when the slots are fixed (the l-step)."""
    if not lay.symmetric:
        return
    model.growth = pyo.Constraint(
        [(c, n) for (c, n) in model.CN if n >= 1],
        rule=lambda mdl, c, n: _ind(mdl, lay, c, n, 1) <= sum(
            _ind(mdl, lay, cc, n - 1, 1) for (cc, nn) in lay.pairs if nn == n - 1 and cc <= c),
    )
    model.slots = pyo.Constraint([n for n in model.N if n >= 1], rule=lambda mdl, n: mdl.w[n] <= mdl.w[n - 1])
    if len(lay.classes) == 1:
        model.size_order = pyo.Constraint([n for n in model.N if n >= 1], rule=lambda mdl, n: mdl.b[n] <= mdl.b[n - 1])


def _add_batch_maxima(model, lay: Layout, t: Tables) -> None:
    """``Z_nk = [L_n >= k]`` and ``P_nj = [I_n >= P_j]`` as cumulative indicators."""
    model.J = pyo.RangeSet(0, len(t.levels) - 1)
    model.KZ = pyo.Set(initialize=[k for k in model.K if k >= 2])
    model.JP = pyo.Set(initialize=[j for j in model.J if j >= 1])
    model.Z = pyo.Var(model.N, model.KZ, bounds=(0, 1))
    model.z_member = pyo.Constraint(
        [(c, n, k) for (c, n) in lay.pairs for k in range(2, lay.top(c) + 1)],
        rule=lambda mdl, c, n, k: mdl.Z[n, k] >= _ind(mdl, lay, c, n, k),
    )
    model.z_chain = pyo.Constraint(model.N, model.KZ, rule=lambda mdl, n, k: mdl.Z[n, k] <= _zed(mdl, n, k - 1))
    if lay.fixed is not None:
        return  # every slot's level is known: no P
    model.P = pyo.Var(model.N, model.JP, bounds=(0, 1))
    model.p_member = pyo.Constraint(
        [(c, n, j) for (c, n) in lay.pairs for j in model.JP if _level(lay, t, c) >= j],
        rule=lambda mdl, c, n, j: mdl.P[n, j] >= _ind(mdl, lay, c, n, 1),
    )
    model.p_chain = pyo.Constraint(model.N, model.JP, rule=lambda mdl, n, j: mdl.P[n, j] <= _pee(mdl, n, j - 1))


def _zed(model, n, k):
    return model.w[n] if k == 1 else model.Z[n, k]


def _pee(model, n, j):
    return model.w[n] if j == 0 else model.P[n, j]


def _add_memory(model, lay: Layout, t: Tables) -> None:
    """``Gamma_p + 4 J_v h1_v b_n I_n <= Gamma_max``: ``b_n <= C_j`` whenever ``I_n = P_j``.

    With ``C_j = min(B_j, Bbar_n)`` (non-increasing in j) the telescoped row
    ``b_n <= C_0 w_n - sum_{j>=1} (C_{j-1} - C_j) P_nj`` is exact at integral P (it reads
    ``b_n <= C_{j*}`` for the longest prefix level ``j*`` present) and, unlike a big-M row per
    level, interpolates the caps in the LP relaxation.  The implied
    ``sum_{c: prefix_c >= P_j} a_cn <= C_j P_nj`` bounds the users that force level j, and
    ``sum_n P_nj >= ceil(#users with prefix >= P_j / B_j)`` counts the batches they need.
    None where the slots hold given batches (their layout checks them).
    """
    if lay.fixed is not None:
        return

    def caps(n):
        return [min(room, lay.bbar[n]) for room in t.room]

    def rule(mdl, n):
        cap = caps(n)
        if cap[-1] >= lay.bbar[n]:
            return pyo.Constraint.Skip
        return mdl.b[n] <= cap[0] * mdl.w[n] - sum((cap[j - 1] - cap[j]) * mdl.P[n, j] for j in mdl.JP)

    def forcing(mdl, n, j):
        cap = caps(n)[j]
        terms = [mdl.A[c, n, 1] for c in _classes_in(lay, n) if _level(lay, t, c) >= j]
        if cap >= lay.bbar[n] or not terms:
            return pyo.Constraint.Skip
        return sum(terms) <= cap * mdl.P[n, j]

    model.memory = pyo.Constraint(model.N, rule=rule)
    model.memory_level = pyo.Constraint(model.N, model.JP, rule=forcing)
    # users of level >= j only sit in batches with P_nj = 1, and need at least the greedy packing's count
    fewest = {j: t.fewest_batches(j) for j in model.JP}
    model.memory_batches = pyo.Constraint(
        [j for j in model.JP if fewest[j] >= 1], rule=lambda mdl, j: sum(mdl.P[n, j] for n in mdl.N) >= fewest[j]
    )


def _add_verification(model, lay: Layout, t: Tables) -> None:
    """``t_v_n >= beta_v w_n + sum_{k,j} D_kj H_nkj`` with ``H_nkj = b_n [L_n >= k][I_n >= P_j]``.

    Where the slots hold given batches, ``b_n`` and ``I_n`` are constants and the product is
    linear as it stands: ``t_v_n >= beta_v w_n + b_n sum_{k, j: P_j <= I_n} D_kj Z_nk``
    (``Z_n1 = w_n``), no H.

    ``>=``, not ``=``: ``t_v_n`` only appears on the small side of the span rows, so an optimum
    has equality anyway, and a time coefficient HiGHS drops (below 1e-9) only relaxes the row
    (an equality with a dropped term could contradict the ``w_cost`` row: "Units").
    """
    if lay.fixed is not None:
        model.tv = pyo.Var(model.N, domain=pyo.NonNegativeReals)
        model.verify = pyo.Constraint(model.N, rule=lambda mdl, n: mdl.tv[n] >= t.beta_ms * mdl.w[n] + lay.fixed[n][0] * sum(
            t.increment(k, j) * _zed(mdl, n, k) for k in mdl.K for j in range(lay.fixed[n][1] + 1)))
        return
    cells = [(n, k, j) for n in model.N for k in model.K for j in model.J if (k, j) != (1, 0)]
    model.H = pyo.Var(cells, domain=pyo.NonNegativeReals)

    def big_m(mdl, n, k, j):
        slack = 0
        if k >= 2:
            slack += 1 - mdl.Z[n, k]
        if j >= 1:
            slack += 1 - mdl.P[n, j]
        return mdl.H[n, k, j] >= mdl.b[n] - lay.bbar[n] * slack

    def members(mdl, n, k, j):
        terms = [_count(mdl, lay, c, n, k) for c in _classes_in(lay, n) if _level(lay, t, c) >= j]
        terms = [v for v in terms if v is not None]
        if not terms:
            return pyo.Constraint.Skip
        return mdl.H[n, k, j] >= sum(terms)

    model.h_big_m = pyo.Constraint(cells, rule=big_m)
    model.h_members = pyo.Constraint(cells, rule=members)
    model.tv = pyo.Var(model.N, domain=pyo.NonNegativeReals)
    model.verify = pyo.Constraint(model.N, rule=lambda mdl, n: mdl.tv[n] >= t.beta_ms * mdl.w[n] + t.increment(1, 0) * mdl.b[n]
                                  + sum(t.increment(k, j) * mdl.H[n, k, j] for (nn, k, j) in cells if nn == n))


def _add_batch_counts(model, lay: Layout, t: Tables) -> None:
    """How many batches pad to each (draft length, prefix level) corner, as integers, and the
    least verification they imply (only where slots are interchangeable).

    A batch pads to the corner ``(L_n, I_n)``.  ``R_nkj = [L_n >= k][I_n >= P_j]`` (McCormick:
    ``R <= Z_nk``, ``R <= P_nj``, ``R >= Z_nk + P_nj - w_n``; ``R_n10 = w_n``) and
    ``NR_kj = sum_n R_nkj`` batches reach the corner (k, j); ``X_kj = NR_kj - NR_k+,j -
    NR_k,j+1 + NR_k+,j+1 >= 0`` pad to it exactly (k+ is the next corner length; corner
    lengths are the fixed lengths where all are fixed, as ``L_n`` is one of them, else 1..L).
    At integral points the NR are integers (the indicators are), so declaring them integer
    removes no plan, and HiGHS may branch on them: a branch fixes how many batches each corner
    gets, which no slot variable does under the slots' symmetry.  ``W_ckj >= 0`` counts the
    class-c users in batches of exact corner (k, j), ``k >= l_c`` where the length is fixed,
    ``j >= j_c``: ``sum_kj W_ckj = n_c``; a free-length class's users of length ``>= k`` sit in
    corners ``>= k``: ``sum_{k' >= k, j} W_ck'j >= sum_n A_cnk``; a corner's batches hold
    ``sum_c W_ckj <= min(B_j, max_n Bbar_n) X_kj`` users and at least ``X_kj``.  Every member
    of a batch pays its corner, so for every plan (with R, W, X read off it)

      ``sum_n t_v_n = beta_v sum_n w_n + sum_{c,k,j} f(k, P_j) W_ckj``,

    and the model keeps it as ``>=``.  The model's plans are unchanged; its LP relaxation, once
    the corner counts are branched to integers, charges the padding that too few batches force
    (the fractional slot variables alone charge each user only its own sequence).

    Built where every length is fixed (the x-step), whose sum-of-verification term is what binds
    on heterogeneous instances.  The rows are valid for free lengths too (corner lengths 1..L,
    ``W`` tied to the lengths by ``sum_{k' >= k, j} W_ck'j >= sum_n A_cnk``), but there they
    made HiGHS slower, so the full model goes without them (both measured in
    docs/benchmarks.md).
    """
    if not lay.symmetric or any(length is None for length in lay.lengths):
        return
    J, C = len(t.levels), range(len(lay.classes))
    lo = [length for length in lay.lengths if length is not None]  # every length is fixed here
    corners_k = sorted(set(lo))
    following = {k: (corners_k[i + 1] if i + 1 < len(corners_k) else None) for i, k in enumerate(corners_k)}
    level = [_level(lay, t, c) for c in C]
    biggest = max(lay.bbar)
    cells = [(n, k, j) for n in model.N for k in corners_k for j in model.J if (k, j) != (1, 0)]
    model.R = pyo.Var(cells, bounds=(0, 1))

    def reach(mdl, n, k, j):
        return mdl.w[n] if (k, j) == (1, 0) else mdl.R[n, k, j]

    model.r_z = pyo.Constraint([i for i in cells if i[1] >= 2], rule=lambda mdl, n, k, j: mdl.R[n, k, j] <= mdl.Z[n, k])
    model.r_p = pyo.Constraint([i for i in cells if i[2] >= 1], rule=lambda mdl, n, k, j: mdl.R[n, k, j] <= mdl.P[n, j])
    model.r_both = pyo.Constraint(cells, rule=lambda mdl, n, k, j: mdl.R[n, k, j] >= _zed(mdl, n, k) + _pee(mdl, n, j) - mdl.w[n])
    KJ = [(k, j) for k in corners_k for j in model.J]
    model.NR = pyo.Var(KJ, domain=pyo.NonNegativeIntegers, bounds=(0, lay.slots))
    model.nr_sum = pyo.Constraint(KJ, rule=lambda mdl, k, j: mdl.NR[k, j] == sum(reach(mdl, n, k, j) for n in mdl.N))

    def exact(mdl, k, j):
        nxt, up = following[k], j + 1 < J
        return (mdl.NR[k, j] - (mdl.NR[nxt, j] if nxt else 0) - (mdl.NR[k, j + 1] if up else 0)
                + (mdl.NR[nxt, j + 1] if nxt and up else 0))

    model.corner = pyo.Constraint(KJ, rule=lambda mdl, k, j: exact(mdl, k, j) >= 0)
    model.W = pyo.Var([(c, k, j) for c in C for (k, j) in KJ if k >= lo[c] and j >= level[c]], domain=pyo.NonNegativeReals)
    members = {(k, j): [c for c in C if k >= lo[c] and j >= level[c]] for (k, j) in KJ}
    model.w_all = pyo.Constraint(C, rule=lambda mdl, c: sum(mdl.W[c, k, j] for (k, j) in KJ if c in members[k, j]) == lay.size(c))
    model.w_room = pyo.Constraint(KJ, rule=lambda mdl, k, j: sum(mdl.W[c, k, j] for c in members[k, j])
                                  <= min(t.room[j], biggest) * exact(mdl, k, j))
    model.w_some = pyo.Constraint(KJ, rule=lambda mdl, k, j: sum(mdl.W[c, k, j] for c in members[k, j]) >= exact(mdl, k, j))
    model.w_cost = pyo.Constraint(expr=sum(model.tv[n] for n in model.N) >= t.beta_ms * sum(model.w[n] for n in model.N)
                                  + sum(t.seq(k, j) * model.W[c, k, j] for (c, k, j) in model.W))


def _own_terms(model, lay: Layout, c: int, n: int, coef, kind):
    """``sum_k coef[k-1] X_cnk`` over the lengths class c can have (X = counts or indicators)."""
    terms = []
    for k in range(1, lay.top(c) + 1):
        v = kind(model, lay, c, n, k)
        if v is not None and coef[k - 1] != 0:
            terms.append(coef[k - 1] * v)
    return sum(terms)


def _add_ready_times(model, lay: Layout, t: Tables) -> None:
    """``T_n >= r_c(l)`` for every timed class c present in batch n with length l (none where
    the layout is stage-free)."""
    if lay.stage_free:
        return
    model.T = pyo.Var(model.N, domain=pyo.NonNegativeReals)
    inc = {c: _increments(t.ready[lay.classes[c][0]]) for c in model.C}
    model.ready = pyo.Constraint([(c, n) for (c, n) in lay.pairs if c not in lay.untimed],
                                 rule=lambda mdl, c, n: mdl.T[n] >= _own_terms(mdl, lay, c, n, inc[c], _ind))


def _add_span(model, lay: Layout, t: Tables) -> None:
    """``S >= sum_n t_v_n``, ``S >= T_n + t_v_n``, ``S >= S_min`` and the per-class cut (the
    sum alone where the layout is stage-free)."""
    model.S = pyo.Var(domain=pyo.NonNegativeReals, bounds=(lay.min_span, None))
    model.span_total = pyo.Constraint(expr=model.S >= sum(model.tv[n] for n in model.N))
    if lay.stage_free:
        return
    model.span_stage = pyo.Constraint(model.N, rule=lambda mdl, n: mdl.S >= mdl.T[n] + mdl.tv[n])

    def own(c):
        m = lay.classes[c][0]
        return _increments([t.ready[m][k - 1] + t.beta_ms + t.seq(k, t.level_of[m]) for k in range(1, lay.max_length + 1)])

    coef = {c: own(c) for c in model.C if c not in lay.untimed}
    model.span_user = pyo.Constraint(list(coef), rule=lambda mdl, c: lay.size(c) * mdl.S >= sum(
        _own_terms(mdl, lay, c, n, coef[c], _count) for (cc, n) in lay.pairs if cc == c))


def _add_objective(model, lay: Layout, t: Tables) -> None:
    """``max U - q S``; a count's tokens are its class's mean (the members' own where a class is
    identical users; where a stage-free class joins users of one fixed length, the counts of a
    class sum to its size, so U is still exactly the sum over its users)."""
    def tokens(c):
        rows = {t.tokens[m] for m in lay.classes[c]}
        if len(rows) == 1:
            return list(rows.pop())
        return [sum(t.tokens[m][k] for m in lay.classes[c]) / lay.size(c) for k in range(t.max_length)]

    inc = {c: _increments(tokens(c)) for c in model.C}
    model.U_expr = pyo.Expression(expr=sum(_own_terms(model, lay, c, n, inc[c], _count) for (c, n) in lay.pairs))
    model.obj = pyo.Objective(expr=model.scale * (model.U_expr - model.q * model.S), sense=pyo.maximize)


@dataclass(frozen=True)
class Decoder:
    """Maps a solution of a built model to a plan, and a plan to start values (cvxpy's
    ``inverse_data``): the layout and the model's integer variables, nothing else."""

    layout: Layout
    num_users: int
    A: Any
    E: Any
    w: Any
    unit_ms: float = 1.0
    """The model's time unit in ms (:func:`build`): set the model's ``q`` to ``q * unit_ms``."""

    def plan(self) -> Plan:
        """The plan encoded by the (loaded) counts; batches keep their slot order.

        Class members are handed out in index order, slot by slot; inside a batch the
        ``A_cnk`` members with length ``>= k`` are the first ones.
        """
        lay = self.layout
        batches: dict[int, list[int]] = {}
        lengths = [0] * self.num_users
        for c, members in enumerate(lay.classes):
            queue = list(members)
            for (cc, n) in lay.pairs:
                if cc != c:
                    continue
                counts = [int(round(self.A[c, n, k].value or 0.0)) for k in lay.own_ks(c)]
                taken, queue = queue[: counts[0]], queue[counts[0]:]
                for i, m in enumerate(taken):
                    fixed = lay.lengths[c]
                    lengths[m] = fixed if fixed is not None else sum(1 for v in counts if v > i)
                if taken:
                    batches.setdefault(n, []).extend(taken)
        ordered = tuple(tuple(sorted(batches[n])) for n in sorted(batches))
        return Plan(ordered, tuple(lengths))

    def start(self, plan: Plan) -> ComponentMap:
        """Values of the integer variables (A, E, w) that encode ``plan`` (a MIP start).

        The plan is first brought into the layout's canonical form: identical users in one
        batch are raised to their longest length (never worse: ``L_n``, ``I_n``, ``t_d_n``
        unchanged, U not lower), and, where slots are interchangeable, batches are relabelled in
        restricted-growth order over the class order (by size, largest first, for a single
        class), so that every symmetry-breaking row holds; where slots are fixed (the l-step)
        each batch goes to its classes' slot.  ``ValueError`` if the plan does not fit the
        layout (another partition than a fixed one, or other lengths than fixed ones).
        """
        lay = self.layout
        cls_of = {m: c for c, members in enumerate(lay.classes) for m in members}
        counts: list[dict[int, int]] = [dict() for _ in lay.classes]
        longest: list[dict[int, int]] = [dict() for _ in lay.classes]
        for i, batch in enumerate(plan.batches):
            for m in batch:
                c = cls_of[m]
                if lay.lengths[c] is not None and plan.lengths[m] != lay.lengths[c]:
                    raise ValueError(f"user {m} has length {plan.lengths[m]}, the layout fixes {lay.lengths[c]}")
                counts[c][i] = counts[c].get(i, 0) + 1
                longest[c][i] = max(longest[c].get(i, 0), plan.lengths[m])
        label = self._labels(plan, counts, cls_of)
        allowed = set(lay.pairs)
        values = ComponentMap()
        for (c, n, k) in self.A:
            values[self.A[c, n, k]] = 0.0
            if (c, n, k) in self.E:
                values[self.E[c, n, k]] = 0.0
        for c in range(len(lay.classes)):
            for i, cnt in counts[c].items():
                n = label[i]
                if (c, n) not in allowed:
                    raise ValueError(f"class {c} cannot sit in slot {n} of this layout")
                for k in range(1, (longest[c][i] if lay.lengths[c] is None else 1) + 1):
                    values[self.A[c, n, k]] = float(cnt)
                    if (c, n, k) in self.E:
                        values[self.E[c, n, k]] = 1.0
        used = set(label.values())
        for n in self.w:
            values[self.w[n]] = 1.0 if n in used else 0.0
        return values

    def _labels(self, plan: Plan, counts, cls_of) -> dict[int, int]:
        lay = self.layout
        label: dict[int, int] = {}
        if not lay.symmetric:
            slot_of = {c: n for (c, n) in lay.pairs}
            for i, batch in enumerate(plan.batches):
                slots = {slot_of[cls_of[m]] for m in batch}
                if len(slots) != 1:
                    raise ValueError(f"batch {i} is not one of the layout's fixed batches")
                label[i] = slots.pop()
        elif len(lay.classes) == 1:
            for i in sorted(range(len(plan.batches)), key=lambda i: (-len(plan.batches[i]), i)):
                label[i] = len(label)
        else:
            for c in range(len(lay.classes)):
                for i in sorted(counts[c], key=lambda i: (label.get(i, len(plan.batches) + i))):
                    if i not in label:
                        label[i] = len(label)
        return label
