r"""DiP-SD's x-step by branch and bound: the memory-feasible partition into exactly N non-empty
batches with the least span S, for fixed draft lengths.

Notation (docs/model.md 3): user m has length ``l_m``, prefix level ``j_m``, ready time
``r_m = r_m(l_m)``; ``f(L, J)`` is the verification time of one sequence padded to ``(L, J)``
(increasing in both); a batch with members B pads to ``L = max l``, ``J = max j``, waits
``R = max r`` and verifies in ``w = beta_v + |B| f(L, J)``; it fits memory iff
``|B| <= room(J)``; ``S = max(sum_n w_n, max_n (R_n + w_n))``.

A *fast* user (``r_m <= (N - 1)(beta_v + min_i f(l_i, j_i))``,
:func:`dipsd.formulation.steps.ready_threshold`) never sets the span, so its ready time is taken
as ``-inf`` (the span is then computed exactly, as the MILP's ``untimed`` classes are).

**Search.**  Users are placed one at a time, each into an open batch or a new one (at most N,
and only while enough users are left to open the rest); batches are labelled by their first
member, so a partition is reached once per order of its batches' first members.  Two orders:
costliest own sequence first (``c_i = f(l_i, j_i)`` descending: an open batch's pads then cost
at least ``c_i`` for every user still to place), or slowest first (a batch's ready time is its
first member's).  A node is a *state*: the users placed so far (a prefix of the order) and the
multiset of open batches ``(b_n, L_n, J_n, R_n)``; its completions depend on nothing else, so a
state met again is not searched again (identical users, and fast users of one length and prefix,
lead to the same states: this is where their permutations vanish).  Children are tried in
order of their bound.

**Bound.**  At a node with users ``i >= k`` still to place, every completion has

* ``S >= sum_open w_n + (N - open) beta_v + C``, with ``C`` a lower bound on what the users to
  place add to the verification sum: a member joining batch n raises ``w_n`` by
  ``(b + 1) f(L', J') - b f(L, J) >= f(L', J') >= f(L_n, J_n)`` (pads only grow), and a member of a
  new batch pays that batch's pads, at least its costliest member's own sequence.  Once all N
  batches are open, ``C = sum_i min_{open n with room} f(max(L_n, l_i), max(J_n, j_i))``.  Before,
  in the costliest-first order, ``C = min_{p >= k} ((p - k) P + D[p][u])`` with ``u`` batches still
  to open, ``P`` the least ``f(L_n, J_n)`` of an open batch with room, and ``D[p][u]`` the least
  cost of cutting users ``p..`` into u contiguous segments, each member paying its segment's first
  own sequence (:func:`_segments`).  Proof: let the new batches' first members be ``f_1 <
  ... < f_u``; users ``k..f_1 - 1`` all join open batches (a new batch's members come after its
  first), each paying ``>= P``; for ``t >= 1`` the users in ``[f_t, f_{t+1})`` pay at least
  ``c_{f_t}``: a new batch's member pays its first member's own sequence, which is ``>= c_{f_t}``
  (that first member is some ``f_s``, s <= t), and a joiner pays ``>= P >= c_k >= c_{f_t}``; so the
  cost is at least ``(f_1 - k) P + D[f_1][u]``.  In the slowest-first order ``C = sum_i c_i``.
* ``S >= R_n + w_n`` for every open batch and ``S >= r_i + beta_v + c_i`` for every user to place.
* water-filling: the stage levels ``h_n = R_n + w_n`` of the open batches and ``beta_v`` for each
  batch to open rise by ``C`` in all, so the highest final level is at least the ``lam`` with
  ``sum_n max(0, lam - h_n) = C``.
* capacity: against an incumbent span ``B``, an open batch can take at most ``min(room(J_n) - b_n,
  (B - R_n - w_n) / f(L_n, J_n))`` more users and a batch still to open at most ``(B - r_min -
  beta_v) / c_min`` (least ready time and own sequence among users to place); fewer places than
  users left prunes the node.

A node whose bound reaches the incumbent's span (relative :data:`IMPROVE_RTOL` below the
incumbent the search starts from) is dropped, so the search returns a least-span partition, or
says it stopped at its node budget (the caller then finishes with the MILP from its incumbent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..formulation.columns import columns_of
from ..formulation.plan import Plan
from ..formulation.steps import ready_threshold
from ..formulation.tables import Tables
from .tolerances import COUNT_ATOL, COUNT_RTOL, IMPROVE_RTOL

NODE_BUDGET = 200_000
"""Nodes the search may visit before it hands its incumbent to the MILP."""


@dataclass(frozen=True)
class Found:
    """The search's answer: the best partition it saw (None if none beat the incumbent) and
    whether it proved that nothing better exists (False: stopped at the node budget)."""

    batches: tuple[tuple[int, ...], ...] | None
    span_ms: float
    proven: bool
    nodes: int
    timed_out: bool = False
    """Whether ``expired`` (the caller's deadline) stopped it, rather than the node budget."""


def span_of(tables: Tables, lengths: tuple[int, ...], batches: tuple[tuple[int, ...], ...]) -> float:
    """S of ``batches`` at ``lengths`` in the search's arithmetic (the tables' batch columns)."""
    columns = columns_of(tables, Plan(batches, tuple(lengths)))
    return max(sum(c.verify_ms for c in columns), max(c.stage_ms for c in columns))


def best_partition(tables: Tables, lengths: tuple[int, ...], num_batches: int, incumbent: float,
                   node_budget: int = NODE_BUDGET, by_ready: bool = False,
                   expired: Callable[[], bool] = lambda: False) -> Found:
    """The least-span memory-feasible partition into ``num_batches`` batches if it beats
    ``incumbent`` (ms) by a relative :data:`IMPROVE_RTOL` (module docstring); users placed
    costliest sequence first, or with ``by_ready`` slowest first (fast users last).  Where every
    user is fast and all share one length or one prefix, :func:`sorted_segments` solves it exactly."""
    exact = sorted_segments(tables, lengths, num_batches)
    if exact is not None:
        batches, span = exact
        better = batches is not None and span < incumbent / (1 + IMPROVE_RTOL)
        return Found(batches if better else None, span if better else float("inf"), True, 0)
    return _Search(tables, lengths, num_batches, incumbent, node_budget, by_ready, expired).run()


def sorted_segments(tables: Tables, lengths: tuple[int, ...], num_batches: int
                    ) -> tuple[tuple[tuple[int, ...], ...] | None, float] | None:
    """The x-step in one dimension: ``(partition or None if none fits memory, its span)`` when every
    user is fast and the users share one length or one prefix level, else None (not applicable).

    Then ``S = sum_n w_n = N beta_v + sum_n b_n f(L_n, J_n)`` (no stage term can exceed the sum,
    :func:`~dipsd.formulation.steps.ready_threshold`), and a batch's cost per member and its room
    depend on one attribute (the level, or the length, with the room the same for all), increasing
    in cost and non-increasing in room.  Sort users by own sequence, costliest first.  Some least
    partition is contiguous in that order: if user a (costlier) sits in batch X and user b in batch
    Y with Y's pad above X's, swapping them leaves Y's pad, room and size as they are and lowers or
    keeps X's pad (so its cost, and raises or keeps its room); repeating sorts the batches.  So
    ``D[p][u] = min_{p < q <= p + room(p)} (q - p) c_p + D[q][u - 1]``, ``D[M][0] = 0``, is exact."""
    t, users = tables, tables.num_users
    if users == 0 or ready_threshold(t, lengths, num_batches) < max(t.ready[m][lengths[m] - 1] for m in range(users)):
        return None
    if len({lengths[m] for m in range(users)}) > 1 and len({t.level_of[m] for m in range(users)}) > 1:
        return None
    # costliest first; among equal costs the higher level first, so a segment's first member has its
    # highest level (with one length the cost orders the levels; with one level the room is common)
    order = sorted(range(users), key=lambda m: (-t.seq(lengths[m], t.level_of[m]), -t.level_of[m], -lengths[m], m))
    cost = [t.seq(lengths[m], t.level_of[m]) for m in order]
    room = [t.room[t.level_of[m]] for m in order]
    best, cut = _segments(cost, num_batches, room)
    if best[0][num_batches] == float("inf"):
        return None, float("inf")
    batches, p = [], 0
    for u in range(num_batches, 0, -1):
        q = cut[p][u]
        batches.append(tuple(sorted(order[p:q])))
        p = q
    return tuple(batches), span_of(t, lengths, tuple(batches))


def _how_many(slack: float, per: float, cap: int) -> int:
    """At least the number of members of cost ``per`` (> 0) that fit in ``slack``, at most ``cap``:
    rounded up by :data:`COUNT_RTOL` and :data:`COUNT_ATOL` so that floating point never undercounts."""
    fit = slack / per
    if not fit == fit or fit >= cap:  # nan (inf / inf) or more than the cap
        return max(cap, 0)
    return max(0, min(cap, int(fit * (1 + COUNT_RTOL) + COUNT_ATOL)))


def _segments(cost: list[float], most: int, room: list[int] | None = None) -> tuple[list[list[float]], list[list[int]]]:
    """``(D, cut)``: ``D[p][u]`` the least cost of cutting users ``p..`` (``cost`` non-increasing) into
    exactly ``u`` contiguous segments of at most ``room[p]`` users (no cap without ``room``), each
    member paying its segment's first (largest) cost, +inf where impossible; ``cut[p][u]`` where the
    first of those segments ends (the first least).  Exact for :func:`sorted_segments`, the bound's
    relaxation of the batches still to open in the search."""
    size, inf = len(cost), float("inf")
    best = [[inf] * (most + 1) for _ in range(size + 1)]
    cut = [[0] * (most + 1) for _ in range(size + 1)]
    best[size][0] = 0.0
    for p in range(size - 1, -1, -1):
        last = size if room is None else min(size, p + room[p])
        for u in range(1, most + 1):
            for q in range(p + 1, last + 1):
                got = (q - p) * cost[p] + best[q][u - 1]
                if got < best[p][u]:
                    best[p][u], cut[p][u] = got, q
    return best, cut


class _Search:
    def __init__(self, tables: Tables, lengths: tuple[int, ...], num_batches: int, incumbent: float,
                 node_budget: int, by_ready: bool, expired: Callable[[], bool]) -> None:
        t, n_users = tables, tables.num_users
        self.t, self.n, self.budget, self.expired = t, num_batches, node_budget, expired
        self.timed_out = False
        fast = ready_threshold(t, lengths, num_batches)
        own = [t.seq(lengths[m], t.level_of[m]) for m in range(n_users)]
        ready = [t.ready[m][lengths[m] - 1] for m in range(n_users)]
        if by_ready:  # slowest first: a batch's ready time is its first member's
            self.order = sorted(range(n_users), key=lambda m: (-(ready[m] if ready[m] > fast else -1e300), -own[m], m))
        else:  # costliest first: a batch's pads are set early
            self.order = sorted(range(n_users), key=lambda m: (-own[m], -ready[m], m))
        self.l = [lengths[m] for m in self.order]
        self.j = [t.level_of[m] for m in self.order]
        self.r = [ready[m] if ready[m] > fast else -float("inf") for m in self.order]
        self.own = [own[m] for m in self.order]
        # suffix sums of own costs and suffix maxima of own stage terms
        self.rest_own = [0.0] * (n_users + 1)
        self.rest_stage = [-float("inf")] * (n_users + 1)
        self.rest_ready = [float("inf")] * (n_users + 1)  # the least ready time among users k..
        self.rest_cheap = [float("inf")] * (n_users + 1)  # the least own sequence among users k..
        for k in range(n_users - 1, -1, -1):
            self.rest_own[k] = self.rest_own[k + 1] + self.own[k]
            self.rest_ready[k] = min(self.rest_ready[k + 1], self.r[k])
            self.rest_cheap[k] = min(self.rest_cheap[k + 1], self.own[k])
            self.rest_stage[k] = max(self.rest_stage[k + 1], self.r[k] + t.beta_ms + self.own[k])
        self.rest_ready = [max(r, 0.0) for r in self.rest_ready]  # ready times are >= 0
        # the segment bound needs own sequences non-increasing in the order (costliest first)
        self.segments = None if by_ready else _segments(self.own, num_batches)[0]
        self.best = incumbent / (1 + IMPROVE_RTOL)
        self.found: list[int] | None = None
        self.nodes = 0
        self.seen: set[tuple] = set()
        self.label = [0] * n_users
        self.size: list[int] = []
        self.pad_l: list[int] = []
        self.pad_j: list[int] = []
        self.wait: list[float] = []
        self.per: list[float] = []  # f(L_n, J_n) of each open batch

    def run(self) -> Found:
        """Search from the root; the best partition found, mapped back to user indices."""
        complete = self._place(0, 0.0, -float("inf"))
        batches = None
        if self.found is not None:
            groups: dict[int, list[int]] = {}
            for k, lab in enumerate(self.found):
                groups.setdefault(lab, []).append(self.order[k])
            batches = tuple(tuple(sorted(g)) for _, g in sorted(groups.items()))
        return Found(batches, self.best if self.found is not None else float("inf"), complete, self.nodes,
                     self.timed_out)

    def _w(self, n: int) -> float:
        return self.t.beta_ms + self.size[n] * self.per[n]

    def _place(self, k: int, total: float, stage: float) -> bool:
        """Place users k.. given the open batches (``total`` = sum of their w, ``stage`` = their
        largest R + w).  False when the node budget ran out."""
        self.nodes += 1
        if self.nodes > self.budget:
            return False
        if self.nodes % 256 == 0 and self.expired():
            self.timed_out = True
            return False
        t, n_open, n_users = self.t, len(self.size), len(self.l)
        if k == n_users:
            if n_open == self.n and max(total, stage) < self.best:
                self.best, self.found = max(total, stage), list(self.label)
            return True
        if k > 0 and self._strong_bound(k, total, stage) >= self.best:
            return True
        state = (k, tuple(sorted(zip(self.size, self.pad_l, self.pad_j, self.wait))))
        if state in self.seen:
            return True  # the same open batches with the same users left: searched already
        self.seen.add(state)
        lk, jk, rk = self.l[k], self.j[k], self.r[k]
        children: list[tuple[float, int, float, float]] = []
        joinable = n_users - k - 1 >= self.n - n_open  # enough users left to open the other batches
        for n in range(n_open if joinable else 0):
            pj = max(self.pad_j[n], jk)
            if self.size[n] + 1 > t.room[pj]:
                continue
            w_old = self._w(n)
            w_new = t.beta_ms + (self.size[n] + 1) * t.seq(max(self.pad_l[n], lk), pj)
            new_total = total - w_old + w_new
            new_stage = max(stage, max(self.wait[n], rk) + w_new)
            children.append((self._bound(k + 1, new_total, new_stage, n_open), n, new_total, new_stage))
        if n_open < self.n and n_users - k - 1 >= self.n - n_open - 1 and t.room[jk] >= 1:
            w_new = t.beta_ms + t.seq(lk, jk)
            new_total, new_stage = total + w_new, max(stage, rk + w_new)
            children.append((self._bound(k + 1, new_total, new_stage, n_open + 1), n_open, new_total, new_stage))
        children.sort()
        for bound, n, new_total, new_stage in children:
            if bound >= self.best:
                break
            self.label[k] = n
            if n == n_open:
                self.size.append(1)
                self.pad_l.append(lk)
                self.pad_j.append(jk)
                self.wait.append(rk)
                self.per.append(t.seq(lk, jk))
                ok = self._place(k + 1, new_total, new_stage)
                self.size.pop()
                self.pad_l.pop()
                self.pad_j.pop()
                self.wait.pop()
                self.per.pop()
            else:
                saved = (self.pad_l[n], self.pad_j[n], self.wait[n], self.per[n])
                self.size[n] += 1
                self.pad_l[n], self.pad_j[n], self.wait[n] = max(saved[0], lk), max(saved[1], jk), max(saved[2], rk)
                self.per[n] = t.seq(self.pad_l[n], self.pad_j[n])
                ok = self._place(k + 1, new_total, new_stage)
                self.size[n] -= 1
                self.pad_l[n], self.pad_j[n], self.wait[n], self.per[n] = saved
            if not ok:
                return False
        return True

    def _strong_bound(self, k: int, total: float, stage: float) -> float:
        """The node's bound with each user to place charged its cheapest admissible cost ``c_i``
        (module docstring), and the stage terms water-filled: with levels ``h_n = R_n + w_n`` of the
        open batches and ``beta_v`` for each batch still to open, the users' costs raise the levels
        by ``sum_i c_i`` in all, so the highest final level is at least the ``lam`` with
        ``sum_n max(0, lam - h_n) = sum_i c_i``."""
        t, n_open = self.t, len(self.size)
        costs = self._rest_cost(k)
        if costs == float("inf"):
            return costs
        if not self._room_left(k):
            return float("inf")
        levels = sorted([max(self.wait[n], 0.0) + self._w(n) for n in range(n_open)] + [t.beta_ms] * (self.n - n_open))
        fill, lam = costs, levels[0]
        for count in range(1, len(levels) + 1):
            nxt = levels[count] if count < len(levels) else float("inf")
            if lam + fill / count <= nxt:
                lam += fill / count
                break
            fill -= (nxt - lam) * count
            lam = nxt
        return max(total + (self.n - n_open) * t.beta_ms + costs, stage, self.rest_stage[k], lam)

    def _rest_cost(self, k: int) -> float:
        """A lower bound on what users k.. add to ``sum_n w_n`` (module docstring, "Bound")."""
        t, n_open, inf = self.t, len(self.size), float("inf")
        if n_open == self.n:
            costs = 0.0
            for i in range(k, len(self.l)):
                li, ji = self.l[i], self.j[i]
                cheapest = min((t.seq(max(self.pad_l[n], li), max(self.pad_j[n], ji)) for n in range(n_open)
                                if self.size[n] < t.room[max(self.pad_j[n], ji)]), default=inf)
                if cheapest == inf:
                    return inf
                costs += cheapest
            return costs
        if self.segments is None:
            return self.rest_own[k]
        seg, unopened = self.segments, self.n - n_open
        joins = [self.per[n] for n in range(n_open) if self.size[n] < t.room[self.pad_j[n]]]
        if not joins:
            return seg[k][unopened]
        cheapest = min(joins)
        return min(((p - k) * cheapest + seg[p][unopened] for p in range(k, len(self.l) - unopened + 1)), default=inf)

    def _room_left(self, k: int) -> bool:
        """Whether users k.. can still fit with every stage term below the incumbent: an open batch
        n holds at most ``room(J_n) - b_n`` more users and, as each member raises its w by at least
        ``f(L_n, J_n)`` (its pads only grow), at most ``(best - R_n - w_n) / f(L_n, J_n)``; a batch
        still to open waits at least the least ready time to place and each member adds at least
        the least own sequence."""
        t, best, need = self.t, self.best, len(self.l) - k
        if best == float("inf"):
            return True
        free = 0
        for n in range(len(self.size)):
            per = self.per[n]
            by_memory = t.room[self.pad_j[n]] - self.size[n]
            if per <= 0:
                free += by_memory
            else:
                slack = best - max(self.wait[n], 0.0) - self._w(n)  # a fast-only batch: R >= 0 bounds it
                free += _how_many(slack, per, by_memory)
            if free >= need:
                return True
        unopened = self.n - len(self.size)
        if unopened:
            per = self.rest_cheap[k]
            if per <= 0:
                return True
            free += unopened * _how_many(best - self.rest_ready[k] - t.beta_ms, per, max(t.room))
        return free >= need

    def _bound(self, k: int, total: float, stage: float, n_open: int) -> float:
        """A lower bound on S of every completion of a node (module docstring, "Bound"); the open
        batches' pads are those of the parent except the one batch the child changed, which the
        caller accounts for through ``total`` and ``stage``."""
        rest = self.rest_own[k]
        return max(total + (self.n - n_open) * self.t.beta_ms + rest, stage, self.rest_stage[k])
