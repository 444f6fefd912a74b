r"""Batches as columns: the set-partitioning view of problem P used by ``certify``.

A *column* is one memory-feasible batch with a draft length for each member.  Its
tokens ``U_c = sum_m u_m(l_m)``, verification time ``tv_c = beta_v + b f(L, I)`` and stage
time ``st_c = max_m r_m(l_m) + tv_c`` (``f(L, I) = c_v F_v(L, I)``, ``r = tau_d + tau_c``, all
in ms from :class:`~dipsd.formulation.tables.Tables`).  A plan is a set of columns that
covers every user once; its span is ``S = max(sum tv_c, max st_c)``.

For a span budget ``S`` let

    G(S) = max sum_c U_c x_c  s.t.  sum_{c ∋ m} x_c = 1 (every m),  sum_c tv_c x_c <= S,
           N_min <= sum_c x_c <= N_max,  x_c in {0, 1},  x_c = 0 unless st_c <= S.

Every feasible ``x`` is a plan of span ``<= S``, and every plan of span ``S`` is feasible
at ``S``; hence ``R* = max_S G(S) / S`` and ``G`` is non-decreasing in ``S``.

Pricing (:func:`price`).  With duals ``pi_m`` (cover rows), ``mu >= 0`` (budget row) and
``nu`` (count row) the reduced cost of a column is
``rc_c = U_c - sum_{m in c} pi_m - mu tv_c - nu``.  The most profitable column is found
exactly by enumerating the padding ``(L, I)`` and the size ``b`` of a batch: then
``tv = beta_v + b f(L, I)`` is fixed, a user ``m`` may join iff its prefix is ``<= I`` and
some length ``l <= L`` has ``r_m(l) <= S - tv``, and since ``u_m`` is non-decreasing and
``r_m`` increasing its best length is the longest such ``l``; the best batch of size
``b`` takes the ``b`` users with the largest ``u_m(l_m) - pi_m``.  The column actually
formed (its true ``L_n <= L``, ``I_n <= I``) is at least as good as the priced one, so the
maximum over all ``(L, I, b)`` is the maximum over all columns.  Memory: ``b <= B(I)``.

Pricing under branching rules (:class:`Rules`, the nodes of ``certify``'s branch-and-price).
A length range ``lo_m..hi_m`` caps a user's longest length at ``hi_m`` and bars it from
``(L, I, b)`` where that length is below ``lo_m`` (its value is then ``-inf``): the argument above
holds unchanged.  With *together* or *apart* pairs the best ``b`` users are no longer the ``b``
best: users bound together form a group taken whole, and groups joined by apart pairs form a
component of which an independent set is taken.  The best batch of each ``(L, I, b)`` is then a
knapsack with exact size ``b`` over the components' choices, solved exactly by dynamic
programming over (size, holds a user of level ``I``) for every ``(L, b)`` at once
(:class:`_Grouped`).  A component with more than :data:`MOST_SETS` independent sets is split at a
group ``g`` (the one that leaves the smallest largest component): its independent sets are those
of the component without ``g`` and those of ``g`` with the component without ``g`` and its
neighbours (:class:`_Union`: the dynamic program runs over both and keeps the better at every
state), recursively, so the knapsack stays exact.  Only a component whose splitting would take more than :data:`MOST_PASSES` passes has its
apart pairs ignored: pricing then over-estimates (a valid bound) and such columns are dropped by
:meth:`Rules.allows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .plan import Plan
from .tables import Tables

STAGE_RTOL = 1e-12
"""Columns whose stage time exceeds a budget by at most this fraction still count as fitting it.

Pricing and the master must agree on which columns fit; comparing ``r + tv <= S`` in one
place and ``r <= S - tv`` in another could differ in the last bit.  Admitting a slightly
larger set of columns only raises ``G``, so every bound stays valid."""


MOST_SETS = 64
"""A component of groups joined by apart pairs with more independent sets than this is split at one group
(:class:`_Union`) instead of enumerated.  Splitting takes fewer passes of the dynamic program than
enumerating (a path of 30 groups: 350 at 64, 2,691 at 1,024; a random tree of 20: 48-64 against
58-147): pricing under random rules of 5-40 apart pairs at heterogeneous M = 30 took 16.8 ms at 64,
19.3 at 16 and 53.2 at 1,024, with the same reduced costs."""
MOST_PASSES = 4096
"""A component whose splitting takes more passes of the dynamic program than this (its items' choices
and its unions' products) is priced without its apart pairs (a relaxation: the bound stays valid,
pricing may over-estimate there).  Enumerated whole, a component takes up to :data:`MOST_SETS`."""


def fits(stage_ms: float, budget: float) -> bool:
    """Whether a column of this stage time may be used under ``budget`` (see :data:`STAGE_RTOL`)."""
    return stage_ms <= budget * (1 + STAGE_RTOL) + 1e-9


@dataclass(frozen=True)
class Column:
    """One batch with its members' draft lengths (members ascending)."""

    users: tuple[int, ...]
    lengths: tuple[int, ...]
    tokens: float
    verify_ms: float
    stage_ms: float

    @property
    def key(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (self.users, self.lengths)


@dataclass(frozen=True)
class Rules:
    """Branching rules of a node of ``certify``'s tree: which batches the node's plans may use.

    ``together``: user pairs in one batch (a column holds both or neither); ``apart``: pairs in
    different batches (no column holds both); ``lengths``: ``(user, lo, hi)``, the user's draft
    length within ``lo..hi``.  A plan obeys the rules iff each of its batches does, so the two
    children of a branch (together / apart, ``<= l`` / ``>= l + 1``) split a node's plans.
    """

    together: frozenset[tuple[int, int]] = frozenset()
    apart: frozenset[tuple[int, int]] = frozenset()
    lengths: tuple[tuple[int, int, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.together or self.apart or self.lengths)

    @property
    def pairs(self) -> bool:
        """Whether pricing needs the grouped dynamic program (together or apart pairs)."""
        return bool(self.together or self.apart)

    def allows(self, c: Column) -> bool:
        """Whether a batch obeys every rule."""
        members = dict(zip(c.users, c.lengths))
        if any((i in members) != (j in members) for i, j in self.together):
            return False
        if any(i in members and j in members for i, j in self.apart):
            return False
        return not any(m in members and not lo <= members[m] <= hi for m, lo, hi in self.lengths)

    def mask(self, member: np.ndarray, length: np.ndarray) -> np.ndarray:
        """:meth:`allows` over many columns: ``member`` (columns x users, bool), ``length`` (their lengths)."""
        ok = np.ones(member.shape[0], dtype=bool)
        for i, j in self.together:
            ok &= member[:, i] == member[:, j]
        for i, j in self.apart:
            ok &= ~(member[:, i] & member[:, j])
        for m, lo, hi in self.lengths:
            ok &= ~member[:, m] | ((length[:, m] >= lo) & (length[:, m] <= hi))
        return ok

    def join(self, i: int, j: int) -> Rules:
        return replace(self, together=self.together | {(min(i, j), max(i, j))})

    def part(self, i: int, j: int) -> Rules:
        return replace(self, apart=self.apart | {(min(i, j), max(i, j))})

    def narrow(self, m: int, lo: int, hi: int) -> Rules:
        """User ``m``'s lengths within ``lo..hi`` as well (an intersection with its current range)."""
        old = [r for r in self.lengths if r[0] == m]
        if old:
            lo, hi = max(lo, old[0][1]), min(hi, old[0][2])
        return replace(self, lengths=tuple(sorted([r for r in self.lengths if r[0] != m] + [(m, lo, hi)])))


NO_RULES = Rules()


def make_column(t: Tables, users: Sequence[int], lengths: Sequence[int]) -> Column:
    """The column of a batch (``users`` and their ``lengths`` in the same order)."""
    order = sorted(range(len(users)), key=lambda i: users[i])
    members = tuple(int(users[i]) for i in order)
    ls = tuple(int(lengths[i]) for i in order)
    big_l = max(ls)
    level = max(t.level_of[m] for m in members)
    tv = t.beta_ms + len(members) * t.seq(big_l, level)
    ready = max(t.ready[m][l - 1] for m, l in zip(members, ls))
    return Column(members, ls, float(sum(t.tokens[m][l - 1] for m, l in zip(members, ls))), tv, ready + tv)


def columns_of(t: Tables, plan: Plan) -> list[Column]:
    """The columns of a plan, one per batch."""
    return [make_column(t, b, [plan.lengths[m] for m in b]) for b in plan.batches]


def plan_of(columns: Iterable[Column]) -> Plan:
    """The plan made of columns that partition the users (batches in the given order)."""
    lengths: dict[int, int] = {}
    for c in columns:
        lengths.update(zip(c.users, c.lengths))
    return Plan(tuple(c.users for c in columns), tuple(lengths[m] for m in range(len(lengths))))


class Classes:
    """Identical users (:attr:`Tables.classes`) as one row of a column master.

    Users of a class have the same tables, so a batch's tokens and times depend only on how
    many members of each class it holds and their lengths.  A column is kept in a *canonical*
    form: the members of class ``k`` it holds are the first users of ``k``, the longest length
    on the first of them.  A master with one cover row per class (``sum_c a_kc x_c = n_k``, ``x``
    integer) has the same plans as the per-user master up to renaming users within classes:
    :meth:`realize` turns a solution into a plan by handing each column's places to distinct
    users of their classes.  With every user in a class of its own, every column is already
    canonical and the master is the per-user one.
    """

    def __init__(self, t: Tables, *, merge: bool = True):
        """``merge=False``: every user a class of its own (the per-user master)."""
        self.t = t
        self.members = t.classes if merge else tuple((m,) for m in range(t.num_users))
        self.index = np.zeros(t.num_users, dtype=np.int64)
        for k, members in enumerate(self.members):
            self.index[list(members)] = k
        self.size = np.array([len(m) for m in self.members], dtype=np.int64)
        self.distinct = len(self.members) == t.num_users  # every class one user: every column is canonical

    def __len__(self) -> int:
        return len(self.members)

    def counts(self, c: Column) -> dict[int, int]:
        """``a_kc``: how many members of each class the column holds."""
        out: dict[int, int] = {}
        for m in c.users:
            k = int(self.index[m])
            out[k] = out.get(k, 0) + 1
        return out

    def most(self, c: Column) -> int:
        """The largest multiplicity of the column in a plan: ``min_k floor(n_k / a_kc)``."""
        return min(int(self.size[k]) // a for k, a in self.counts(c).items())

    def canonical(self, c: Column) -> Column:
        """The same batch with each class's places on that class's first users."""
        if self.distinct:
            return c
        by_class: dict[int, list[int]] = {}
        for m, l in zip(c.users, c.lengths):
            by_class.setdefault(int(self.index[m]), []).append(l)
        users: list[int] = []
        lengths: list[int] = []
        for k, ls in by_class.items():
            for i, l in enumerate(sorted(ls, reverse=True)):
                users.append(self.members[k][i])
                lengths.append(l)
        pairs = sorted(zip(users, lengths))
        if (tuple(u for u, _ in pairs), tuple(l for _, l in pairs)) == c.key:
            return c
        return make_column(self.t, users, lengths)

    def covers(self, chosen: Iterable[tuple[Column, int]]) -> bool:
        """Whether ``(column, multiplicity)`` pairs hold every class's users exactly (what :meth:`realize` needs)."""
        held = np.zeros(len(self.members), dtype=np.int64)
        for c, times in chosen:
            for k, places in self.counts(c).items():
                held[k] += places * times
        return bool(np.array_equal(held, self.size))

    def realize(self, chosen: Iterable[tuple[Column, int]]) -> Plan:
        """The plan of ``(column, multiplicity)`` pairs that cover every class exactly: each
        place of a class-``k`` member goes to the next unused user of ``k``."""
        nxt = [0] * len(self.members)
        batches: list[tuple[int, ...]] = []
        lengths = [0] * self.t.num_users
        for c, times in chosen:
            for _ in range(int(times)):
                batch = []
                for m, l in zip(c.users, c.lengths):
                    k = int(self.index[m])
                    user = self.members[k][nxt[k]]
                    nxt[k] += 1
                    batch.append(user)
                    lengths[user] = l
                batches.append(tuple(sorted(batch)))
        return Plan(tuple(batches), tuple(lengths))


class Pricer:
    """Exact, vectorized pricing of columns for one scenario (see the module docstring)."""

    def __init__(self, t: Tables):
        self.t = t
        M = t.num_users
        self.ready = np.array(t.ready, dtype=float)  # (M, L), increasing in l
        for m in range(M):  # a length above a user's own limit is never ready: no column takes it
            self.ready[m, t.limit(m):] = np.inf
        # tokens with a leading -inf: index 0 means "no feasible length"
        self.tokens = np.concatenate([np.full((M, 1), -np.inf), np.array(t.tokens, dtype=float)], axis=1)
        self.level = np.array(t.level_of)
        self.seq = np.array(t.seq_ms, dtype=float)  # (L, J)
        self.room = [min(r, M) for r in t.room]
        self.eligible = [np.flatnonzero(self.level <= j) for j in range(len(t.levels))]
        self._parts: tuple[Rules, dict[int, tuple[list[_Part], np.ndarray]]] = (NO_RULES, {})

    def parts(self, rules: Rules, j: int) -> tuple[list[_Part], np.ndarray]:
        """The knapsack parts of :class:`_Grouped` at level ``j`` under ``rules`` (:func:`_choices`), each
        choice as indices into the level's users with whether it holds a user of level ``j``, but the
        free users (items of one choice of one user), which are returned apart (their indices); kept
        for the rules of the last call (a node prices many rounds under the same rules)."""
        if self._parts[0] != rules:
            self._parts = (rules, {})
        known = self._parts[1]
        if j not in known:
            users = self.eligible[j]
            at = {int(m): i for i, m in enumerate(users)}
            is_top = self.level[users] == j

            def local(part: _Part) -> _Part:
                if isinstance(part, _Union):
                    return _Union(tuple(tuple(local(p) for p in product) for product in part.products))
                indices = [np.array([at[m] for m in members]) for members in part]
                return [(index, bool(is_top[index].any())) for index in indices]

            rest: list[_Part] = []
            free: list[int] = []
            for part in map(local, _choices(rules, self.t.num_users, at)):
                if not isinstance(part, _Union) and len(part) == 1 and len(part[0][0]) == 1:
                    free.append(int(part[0][0][0]))  # one choice of one user
                else:
                    rest.append(part)
            known[j] = (rest, np.array(free, dtype=np.int64))
        return known[j]

    def price(self, budget: float, pi: np.ndarray, mu: float, nu: float, *, keep: int = 0,
              sigma: np.ndarray | None = None, rules: Rules = NO_RULES, tokens: bool = True) -> tuple[float, list[Column]]:
        """Best reduced cost over every column with stage time ``<= budget``.

        ``sigma[j]`` (>= 0, j >= 1) rewards every column whose longest prefix is at level
        ``>= j`` (the duals of the level rows of ``certify``'s master); without ``tokens`` every column's
        ``U_c`` counts as 0 (phase 1: pricing for feasibility alone).  Each column is priced
        at its true level ``I``: it holds at least one user of that level (the best
        ``b``-subset with one is the ``b`` best, or the ``b - 1`` best and the best user of the
        level).  Returns ``(best, columns)``: ``best`` the largest reduced cost (``-inf`` when
        no column fits the budget) and up to ``keep`` columns of largest reduced cost (one per
        ``(L, I, b)``, best first, duplicates removed).  Under ``rules`` both are over the columns
        the rules allow (module docstring; ``best`` may over-estimate only where a component of
        apart pairs would take more than :data:`MOST_PASSES` passes to split).
        """
        t = self.t
        best = -np.inf
        # candidates (rc, level, L index, b index) in level order, each level's best first; their batches
        # are formed only as needed, best first (a stable sort keeps that order among equal rc)
        found: list[tuple[float, _Level, int, int]] = []
        reward = np.zeros(len(t.levels)) if sigma is None else np.concatenate([[0.0], np.cumsum(np.asarray(sigma)[1:])])
        for j, users in enumerate(self.eligible):
            if min(self.room[j], len(users)) < 1:
                continue
            level = (_Grouped if rules.pairs else _Level)(self, j, users, budget, pi, rules, tokens)
            rc = level.pick - mu * level.tv - nu + reward[j]  # (L, B)
            rc[~np.isfinite(rc)] = -np.inf
            here = float(rc.max())
            best = max(best, here)
            if keep and np.isfinite(here):
                for idx in np.argsort(-rc, axis=None)[:keep]:
                    li, bi = np.unravel_index(idx, rc.shape)
                    if not np.isfinite(rc[li, bi]):
                        break
                    found.append((float(rc[li, bi]), level, int(li), int(bi)))
        if not keep:
            return best, []
        found.sort(key=lambda f: -f[0])
        out: list[Column] = []
        seen: set[tuple] = set()
        for _, level, li, bi in found:
            col = make_column(t, *level.members(li, bi))
            if col.key in seen or (rules and not rules.allows(col)):
                continue
            seen.add(col.key)
            out.append(col)
            if len(out) >= keep:
                break
        return best, out


class _Level:
    """Pricing at one prefix level ``j`` (padding ``I = levels[j]``), for every padded length ``L``
    and batch size ``b`` at once: ``pick[L-1, b-1]`` is the largest ``sum (u_m(l_m) - pi_m)`` over
    ``b`` users of level ``<= j``, at least one of level ``j``, each at its longest length that is
    ready in time, ``<= L`` and within its rule's range (:meth:`Pricer.price`); ``tv`` the
    verification times.  Without pair rules the best ``b`` users are the ``b`` best (or the
    ``b - 1`` best and the best of level ``j``)."""

    def __init__(self, pricer: Pricer, j: int, users: np.ndarray, budget: float, pi: np.ndarray,
                 rules: Rules = NO_RULES, tokens: bool = True):
        t = pricer.t
        L = t.max_length
        self.users, self.rules, self.j = users, rules, j
        bs = np.arange(1, min(pricer.room[j], len(users)) + 1)
        self.tv = t.beta_ms + bs[None, :] * pricer.seq[:, j][:, None]  # (L, B)
        theta = budget * (1 + STAGE_RTOL) - self.tv  # time left for drafting
        ready = pricer.ready[users]  # (m, L)
        # longest l with ready <= theta, capped at the padding L
        count = (ready[:, :, None, None] <= theta[None, None, :, :]).sum(axis=1)  # (m, L, B)
        self.lstar = np.minimum(count, np.arange(1, L + 1)[None, :, None])
        if rules.lengths:  # cap at hi; below lo the user cannot join (index 0: value -inf)
            at = {int(m): i for i, m in enumerate(users)}
            for m, lo, hi in rules.lengths:
                if m in at:
                    row = np.minimum(self.lstar[at[m]], hi)
                    self.lstar[at[m]] = np.where(row >= lo, row, 0)
        value = np.take_along_axis(pricer.tokens[users], self.lstar.reshape(len(users), -1), axis=1).reshape(self.lstar.shape)
        if not tokens:  # phase 1: a user's value is 0 where some length lets it join, -inf where none does
            value = np.where(np.isfinite(value), 0.0, -np.inf)
        self._select(pricer, bs, value - pi[users][:, None, None])

    def _select(self, pricer: Pricer, bs: np.ndarray, value: np.ndarray) -> None:
        self.order = np.argsort(-value, axis=0, kind="stable")
        top = np.take_along_axis(value, self.order, axis=0)  # (m, L, B) descending
        csum = np.cumsum(top, axis=0)
        pick = csum[bs - 1, :, bs - 1].T  # (L, B): for size b, the sum of the b best values
        # at least one member at level j: the first user of level j in the order
        exact = (pricer.level[self.users] == self.j)[self.order]  # (m, L, B)
        self.first = np.argmax(exact, axis=0)  # (L, B); 0 when there is none (checked below)
        has = exact.any(axis=0)
        best_exact = np.take_along_axis(top, self.first[None], axis=0)[0]
        before = np.where(bs[None, :] >= 2, csum[np.maximum(bs - 2, 0), :, bs - 1].T, 0.0)
        self.swap = self.first >= bs[None, :]  # the b best hold no user of level j
        pick = np.where(self.swap, before + best_exact, pick)
        self.pick = np.where(has, pick, -np.inf)

    def chosen(self, li: int, bi: int) -> np.ndarray:
        """Indices into :attr:`users` of the priced batch at padded length ``li + 1`` and size ``bi + 1``."""
        b = bi + 1
        chosen: np.ndarray = self.order[:b, li, bi]
        if self.swap[li, bi]:
            f = self.first[li, bi]
            chosen = np.concatenate([self.order[:b - 1, li, bi], self.order[f:f + 1, li, bi]])
        return chosen

    def members(self, li: int, bi: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The users and lengths of the priced batch at padded length ``li + 1`` and size ``bi + 1``."""
        chosen = self.chosen(li, bi)
        return tuple(int(m) for m in self.users[chosen]), tuple(int(x) for x in self.lstar[chosen, li, bi])


class _Grouped(_Level):
    """:class:`_Level` under together / apart pairs: an exact knapsack of size ``b`` by dynamic
    programming (module docstring).

    The knapsack's *parts* come from :func:`_choices`: an item (a component of the apart graph over
    the groups of users bound together, with its independent sets of groups as its choices; a group
    is usable at level ``j`` iff all its members are) or a :class:`_Union` (a component split at one
    group).  ``best[c, f]`` (for every distinct vector of the users' values over the cells ``(L, b)``
    at once) is the largest value of ``c`` users from the parts so far, ``f`` whether one is of level
    ``j``; an item adds at most one of its choices, a union is the larger of its products' passes;
    ``pick[L, b] = best[b, 1]`` at the cell's values.
    """

    def _select(self, pricer: Pricer, bs: np.ndarray, value: np.ndarray) -> None:
        # neighbouring cells (L, b), (L, b + 1) whose users have the same values share one knapsack (the
        # values depend on b only through each user's longest ready length, which falls as b grows: at
        # heterogeneous M = 50 four cells in five repeat their neighbour)
        new = np.ones(value.shape[1:], dtype=bool)
        new[:, 1:] = (value[:, :, 1:] != value[:, :, :-1]).any(axis=0)
        self.cell = np.cumsum(new).reshape(new.shape) - 1  # (L, B) -> its knapsack
        cells = value.reshape(len(value), -1)[:, new.ravel()]  # (users, knapsacks)
        n = len(bs)
        best = np.full((n + 1, 2, cells.shape[1]), -np.inf)
        best[0, 0] = 0.0
        parts, self.single = pricer.parts(self.rules, self.j)
        best, self.trace = self._run(parts, best, cells, n)
        best = self._singles(best, cells, pricer.level[self.users[self.single]] == self.j, n)
        self.pick = best[bs[None, :], self.cell]  # (L, B): size b at the cell's values

    def _singles(self, best: np.ndarray, value: np.ndarray, top: np.ndarray, n: int) -> np.ndarray:
        """Add the free users (:attr:`single`: each a group of its own in no apart pair, an item with one
        choice of one user) at once, as :class:`_Level` adds everyone: the best ``c`` of them are the
        ``c`` largest values, and the best ``c`` with a user of level ``j`` are those, or the ``c - 1``
        largest and the best user of level ``j`` (``top``).  Returns ``total[b]``, the largest value of
        ``b`` users with one of level ``j``: ``max_c max(best[b - c, 1] + any[c], best[b - c, 0] +
        with_top[c])``, and keeps the maximizer for :meth:`chosen`."""
        v = value[self.single]  # (s, knapsacks)
        s, width = v.shape
        self.order = np.argsort(-v, axis=0, kind="stable")
        if not s:
            self.first, self.mix = np.zeros(width, dtype=np.int64), np.zeros((n + 1, width), dtype=np.int64)
            return best[:, 1]
        ranked = np.take_along_axis(v, self.order, axis=0)
        any_ = np.concatenate([np.zeros((1, width)), np.cumsum(ranked, axis=0)])  # (s + 1, knapsacks)
        is_top = top[self.order]
        self.first = np.argmax(is_top, axis=0)  # the best free user of level j (0 when none: checked below)
        has = np.asarray(is_top.any(axis=0))
        best_top = np.where(has, np.take_along_axis(ranked, self.first[None], axis=0)[0], -np.inf)
        c = np.arange(s + 1)
        with_top = np.where(has[None] & (self.first[None] < c[:, None]), any_, any_[np.maximum(c - 1, 0)] + best_top[None])
        with_top[0] = -np.inf
        size = np.arange(n + 1)[:, None] - np.arange(s + 1)[None, :]  # (b, c) -> b - c
        rest = np.where((size >= 0)[:, :, None, None], best[np.maximum(size, 0)], -np.inf)  # (b, c, f, knapsacks)
        both = np.stack([rest[:, :, 1] + any_[None], rest[:, :, 0] + with_top[None]], axis=2)  # (b, c, way, knapsacks)
        flat = both.reshape(n + 1, 2 * (s + 1), width)
        pick = np.argmax(flat, axis=1)  # (b, knapsacks): c = pick // 2, way = pick % 2 (1: the free users hold the top)
        self.mix = pick
        return np.take_along_axis(flat, pick[:, None], axis=1)[:, 0]

    def _run(self, parts: Sequence[_Part], best: np.ndarray, value: np.ndarray, n: int) -> tuple[np.ndarray, list]:
        """The dynamic program over ``parts`` from ``best``; the new table and its trace for :meth:`chosen`."""
        trace: list = []
        for part in parts:
            if isinstance(part, _Union):
                runs = [self._run(product, best, value, n) for product in part.products]
                new, which = runs[0][0].copy(), np.zeros(best.shape, dtype=np.int8)
                for k, (other, _) in enumerate(runs[1:], start=1):
                    better = other > new
                    new = np.where(better, other, new)
                    which = np.where(better, k, which).astype(np.int8)
                trace.append((part, which, [tr for _, tr in runs]))
            else:
                new = best.copy()
                code = np.zeros(best.shape, dtype=np.int16)  # 0: item not taken; else 2 * choice + previous flag
                for number, (members, top) in enumerate(part, start=1):
                    size = len(members)
                    if size > n:
                        continue
                    src = best[: n + 1 - size] + value[members].sum(axis=0)[None, None]
                    for f_from in (0, 1):
                        f_to = 1 if top else f_from
                        better = src[:, f_from] > new[size:, f_to]
                        new[size:, f_to] = np.where(better, src[:, f_from], new[size:, f_to])
                        code[size:, f_to] = np.where(better, 2 * number + f_from, code[size:, f_to])
                trace.append((part, code, None))
            best = new
        return best, trace

    def chosen(self, li: int, bi: int) -> np.ndarray:
        cell, b = int(self.cell[li, bi]), bi + 1
        c, way = divmod(int(self.mix[b, cell]), 2)
        free = self.order[:c, cell]
        if way and self.first[cell] >= c:  # the c - 1 best free users and the best of level j
            free = np.concatenate([self.order[:c - 1, cell], self.order[self.first[cell]:self.first[cell] + 1, cell]])
        out: list[np.ndarray] = [self.single[free]]
        _back(self.trace, b - c, 0 if way else 1, cell, out)
        return np.concatenate(out)


def _back(trace: list, size: int, flag: int, cell: int, out: list[np.ndarray]) -> tuple[int, int]:
    """Walk a trace of :meth:`_Grouped._run` back from state ``(size, flag)`` of knapsack ``cell``, adding the
    members of each choice taken to ``out``; the state before the trace."""
    for part, code, runs in reversed(trace):
        if runs is not None:  # a union: the product that won this state
            size, flag = _back(runs[int(code[size, flag, cell])], size, flag, cell, out)
            continue
        number, previous = divmod(int(code[size, flag, cell]), 2)
        if number:
            members = part[number - 1][0]
            out.append(members)
            size, flag = size - len(members), previous
    return size, flag


@dataclass(frozen=True)
class _Union:
    """A component of the apart graph split at a group ``g`` (:func:`_choices`): its independent sets
    are those without ``g`` (the first product's parts, the components left without ``g``) and those
    of ``g`` with the groups not next to it (the second: ``g`` as an item of its own and the
    components left without ``g`` and its neighbours).  The second product also holds sets without
    ``g``; they are independent sets too, so the union is exactly the component's."""

    products: tuple[tuple[_Part, ...], ...]


_Part = list | _Union  # an item (a list of choices, each a list of users) or a union of products of parts


class _TooMany(Exception):
    """Splitting a component would take more than :data:`MOST_PASSES` passes."""


def _choices(rules: Rules, num_users: int, at: dict[int, int]) -> list[_Part]:
    """The knapsack parts of :class:`_Grouped`: per component of the apart graph over the groups of
    users bound together (those of users all in ``at``), an item of its non-empty independent sets
    of groups, each as the list of its users, where there are at most :data:`MOST_SETS`; else the
    component split at the group that divides it best (:class:`_Union`, :func:`_balance`,
    recursively).  A group holding an apart pair is never usable.  A component whose splitting
    would take more than :data:`MOST_PASSES` passes of the dynamic program gives one item per group
    (its apart pairs ignored: a relaxation)."""
    root = list(range(num_users))

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    for i, k in sorted(rules.together):
        root[find(i)] = find(k)
    groups: dict[int, list[int]] = {}
    for m in range(num_users):
        groups.setdefault(find(m), []).append(m)
    usable = [g for g in groups.values() if all(m in at for m in g)]
    gid = {m: n for n, g in enumerate(usable) for m in g}
    bad: set[int] = set()
    near: dict[int, set[int]] = {n: set() for n in range(len(usable))}
    for i, k in sorted(rules.apart):
        if i in gid and k in gid:
            if gid[i] == gid[k]:
                bad.add(gid[i])
            else:
                near[gid[i]].add(gid[k])
                near[gid[k]].add(gid[i])
    parts: list[_Part] = []
    for component in _components([n for n in range(len(usable)) if n not in bad], near):
        try:
            parts += _parts(component, near, usable, [0])
        except _TooMany:
            parts += [[usable[g]] for g in component]
    return parts


def _components(nodes: Sequence[int], near: dict[int, set[int]]) -> list[list[int]]:
    """The connected components of the apart graph restricted to ``nodes``, each sorted, in order of
    their least node."""
    inside, seen, out = set(nodes), set(), []
    for n in sorted(inside):
        if n in seen:
            continue
        component, stack = [], [n]
        seen.add(n)
        while stack:
            g = stack.pop()
            component.append(g)
            for h in sorted((near[g] & inside) - seen):
                seen.add(h)
                stack.append(h)
        out.append(sorted(component))
    return out


def _balance(v: int, component: list[int], near: dict[int, set[int]]) -> tuple[int, int, int]:
    """How well splitting at ``v`` divides a component (smaller first): the size of the largest
    component left without ``v``, then more neighbours, then the lower index.  A path is split at its
    middle (halves: a split tree of about ``n^2`` parts where splitting next to an end takes about
    ``1.32^n``), a star at its centre."""
    rest = [u for u in component if u != v]
    largest = max((len(c) for c in _components(rest, near)), default=0)
    return largest, -len(near[v] & set(component)), v


def _parts(component: list[int], near: dict[int, set[int]], usable: list[list[int]], count: list[int]) -> list[_Part]:
    """One component's parts: an item of its independent sets, or a split (:class:`_Union`) at the
    group that divides it best (:func:`_balance`); ``count`` counts the passes of the dynamic
    program so far (:class:`_TooMany` above :data:`MOST_PASSES`)."""
    sets: list[list[int]] = [[]]
    for g in component:
        sets += [chosen + [g] for chosen in sets if not near[g] & set(chosen)]
        if len(sets) > MOST_SETS + 1:
            break
    else:
        count[0] += len(sets) - 1
        if count[0] > MOST_PASSES:
            raise _TooMany
        return [[[m for g in chosen for m in usable[g]] for chosen in sets[1:]]]
    count[0] += 2  # the union's products
    g = min(component, key=lambda v: _balance(v, component, near))
    without = [p for c in _components([v for v in component if v != g], near) for p in _parts(c, near, usable, count)]
    apart = [v for v in component if v != g and v not in near[g]]
    with_g = [[usable[g]]] + [p for c in _components(apart, near) for p in _parts(c, near, usable, count)]
    return [_Union((tuple(without), tuple(with_g)))]
