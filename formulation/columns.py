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
(:class:`_Grouped`).  A component with more than :data:`MOST_SETS` independent sets has its apart
pairs ignored: pricing then over-estimates (a valid bound) and such columns are dropped by
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


MOST_SETS = 1024
"""A component of groups joined by apart pairs with more independent sets than this is priced without
its apart pairs (a relaxation: the bound stays valid, pricing may over-estimate there)."""


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
        apart pairs is too large to enumerate).
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

    Items are the components of the apart graph over the groups of users bound together (a group
    is usable at level ``j`` iff all its members are); an item's choices are its independent sets
    of groups.  ``best[c, f]`` (for every ``(L, b)`` at once) is the largest value of ``c`` users
    from the items so far, ``f`` whether one is of level ``j``; ``pick[L, b] = best[b, 1]``.
    """

    def _select(self, pricer: Pricer, bs: np.ndarray, value: np.ndarray) -> None:
        at = {int(m): i for i, m in enumerate(self.users)}
        is_top = pricer.level[self.users] == self.j
        self.items = [[(np.array([at[m] for m in members]), bool(is_top[[at[m] for m in members]].any()))
                       for members in choice] for choice in _choices(self.rules, pricer.t.num_users, at)]
        n = len(bs)
        best = np.full((n + 1, 2) + value.shape[1:], -np.inf)
        best[0, 0] = 0.0
        self.codes: list[np.ndarray] = []
        for item in self.items:
            new = best.copy()
            code = np.zeros(best.shape, dtype=np.int16)  # 0: item not taken; else 2 * choice + previous flag
            for number, (local, top) in enumerate(item, start=1):
                size = len(local)
                if size > n:
                    continue
                src = best[: n + 1 - size] + value[local].sum(axis=0)[None, None]
                for f_from in (0, 1):
                    f_to = 1 if top else f_from
                    better = src[:, f_from] > new[size:, f_to]
                    new[size:, f_to] = np.where(better, src[:, f_from], new[size:, f_to])
                    code[size:, f_to] = np.where(better, 2 * number + f_from, code[size:, f_to])
            best = new
            self.codes.append(code)
        self.pick = best[bs, 1, :, bs - 1].T  # (L, B)

    def chosen(self, li: int, bi: int) -> np.ndarray:
        size, flag, out = bi + 1, 1, []
        for item, code in zip(reversed(self.items), reversed(self.codes)):
            number, previous = divmod(int(code[size, flag, li, bi]), 2)
            if number:
                local = item[number - 1][0]
                out.append(local)
                size, flag = size - len(local), previous
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _choices(rules: Rules, num_users: int, at: dict[int, int]) -> list[list[list[int]]]:
    """The knapsack items of :class:`_Grouped`: per component of the apart graph over the groups of
    users bound together (those of users all in ``at``), its non-empty independent sets of groups,
    each as the list of its users.  A group holding an apart pair is never usable; a component of
    more than :data:`MOST_SETS` independent sets gives one item per group (its apart pairs ignored)."""
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
    items: list[list[list[int]]] = []
    seen: set[int] = set(bad)
    for n in range(len(usable)):
        if n in seen:
            continue
        component, stack = [], [n]
        seen.add(n)
        while stack:
            g = stack.pop()
            component.append(g)
            for h in sorted(near[g] - seen):
                seen.add(h)
                stack.append(h)
        component.sort()
        sets: list[list[int]] = [[]]
        for g in component:
            sets += [chosen + [g] for chosen in sets if not near[g] & set(chosen)]
            if len(sets) > MOST_SETS + 1:
                break
        if len(sets) > MOST_SETS + 1:
            items += [[usable[g]] for g in component]
        else:
            items.append([[m for g in chosen for m in usable[g]] for chosen in sets[1:]])
    return items
