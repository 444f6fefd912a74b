r"""``certify``: a good plan and a certified upper bound on the optimum, at any size.

Why this design.  ``exact`` proves optima up to M of about 16 heterogeneous users; beyond,
its MILP's dual bound stays loose.  Problem P has a set-partitioning structure (users into
batches) that a column formulation captures much more tightly than the assignment MILP,
and whose pricing problem is solved *exactly* by a small enumeration
(:mod:`dipsd.formulation.columns`).  So the bound comes from the LP relaxation of the
column formulation, parametrized by the span, and the plan from integer programs over the
generated columns (price-and-branch), improved by a local search (the exact l-step of DiP-SD,
swaps of users between batches, and rebatching: two batches' users batched again by a small
column generation and IP of their own, :meth:`_Search.improve`).

Notation: ``G(S)`` as in :mod:`dipsd.formulation.columns` (the most tokens of a plan of
span ``<= S``), ``R* = max_S G(S)/S``; the LP relaxation has value ``G_LP(S) >= G(S)``.

The bound (proof).  Every plan satisfies, besides the rows of ``G(S)``, the *level rows*
``sum_{c: I_c >= P_j} x_c >= r_j`` (``r_j`` the fewest batches that hold the users of prefix
``>= P_j``, see :class:`_Master`) and has at least ``N_mem`` batches (the fewest the memory cap
allows; the greedy packing is minimal, proven in :meth:`Tables.fewest_batches`).  A *box* is a
span range ``[a, b]`` and a range ``low..high`` of batch counts (``N_mem <= low``).  Fix duals ``pi`` (free),
``mu >= 0``, ``nu`` (free), ``sigma_j >= 0`` and let ``rc_c = U_c - sum_{m in c} pi_m -
mu tv_c - nu + sum_{j <= level(c)} sigma_j`` and ``rc* = max rc_c`` over columns with
``st_c <= b`` (exact pricing, :meth:`Pricer.price`).  For any plan ``x`` of the box (span
``S <= b``, so its columns have ``st_c <= b``)

    sum_c U_c x_c = sum_c x_c (rc_c + sum_{m in c} pi_m + mu tv_c + nu - sum_{j <= level(c)} sigma_j)
                  <= sum_m pi_m + mu S + (nu + rc*) n(x) - sum_j sigma_j r_j,     n(x) = sum_c x_c,

using the cover rows, ``sum tv_c x_c <= S`` with ``mu >= 0``, the level rows with
``sigma >= 0``, and ``rc_c <= rc*``.  With ``low <= n(x) <= high`` the terms in ``n(x)`` are at
most ``h(nu) + h(rc*)``, where ``h(v) = v high`` for ``v >= 0`` and ``v low`` otherwise.  So

    G(S) <= K + mu S   for every S <= b,   K = sum_m pi_m + h(nu) + h(rc*) - sum_j sigma_j r_j,

and on the box: ``G(S)/S <= mu + K/a`` if ``K >= 0``, else ``mu + K/b``.  Also
``G(S)/S <= U_max/a`` (``U_max = sum_m max_l u_m(l)``), no plan with ``N >= low`` batches
has a span below ``S_min(low)`` (:meth:`Tables.span_lower_bound`), and no plan with
``S > U_max / R_best`` beats the best plan.  Boxes covering ``[S_min, U_max/R_best] x
N_mem..N_max`` give ``R* <= max(R_best, max over boxes of their bounds)``: valid whatever
the duals (converged or not, so also at a time limit).

Which duals (Dinkelbach over a span range).  For a box, column generation solves the master
with the span as a variable: ``max sum U_c x_c - q S`` with ``sum tv_c x_c <= S``, ``a <= S <=
b``, columns ``st_c <= b`` and ``q = R_best`` (a relaxation of Dinkelbach's parametric problem
over the box: a plan's ``S >= st_c`` is only held to ``st_c <= b``).  Its duals are duals as
above (the span column's reduced cost is ``q - mu``), and at convergence ``K + max_{S in [a,b]}
(mu - q) S`` is the LP's value (at least ``max_S G_LP(S) - q S``): where that is ``<= 0`` the line is below
``q S`` on all of ``[a, b]`` and the box is proven, however wide.  (Duals of the master at the
budget ``b`` give the tangent at ``b``, which proves a box only once it is narrow: every narrow
box near the optimum then needed its own tree of branches.)  Among the duals of the rounds,
those with the smallest bound on the box are kept.

The worst box is refined first: if its LP uses a fractional number of batches ``n`` it is
branched on the count (``N <= floor(n)`` / ``N >= floor(n) + 1``, each with a new column
generation); if its LP's solution beats the best plan it is branched on a pair or a length
(below); otherwise its span range is split at the geometric middle; until the worst box is
proven no better than the best plan, is narrower than :data:`MIN_WIDTH`, or time is up.
Column generation uses Wentges smoothing (any duals give a valid bound, the smoothed ones
just converge in fewer rounds).

Branch-and-price.  A box also carries *rules* ``R`` (:class:`~dipsd.formulation.columns.Rules`):
user pairs together (in one batch) or apart, and per user a range of lengths; its plans are
the plans of the box whose every batch obeys ``R``.  The proof above holds word for word with
``rc*`` the largest reduced cost over the columns that obey ``R``, because such plans use no
other column, and pricing under rules is exact (:mod:`dipsd.formulation.columns`); the master
fixes every column that breaks a rule at 0.  A box is refined by one of four branchings whose
children's plans together are the box's plans: on the batch count (above), on a pair ``i, j``
(together / apart: every plan has them in one batch or not), on a length (``l_m <= l`` /
``l_m >= l + 1``) and by halving the span range.  A child's plans are among its parent's, so
its bound is also capped by the parent's.  Hence ``R* <= max(R_best, max over open boxes)``
at any moment, and when every open box is at most ``R_best (1 + 1e-9)`` the best plan is
optimal.  Choice (:meth:`_Search.children`, :func:`_branch`): a pair or length branch when
the LP's own solution, at the ratio ``sum U_c x_c / max(S, max st_c)`` of its support, beats
the best plan by at least the part of the box's bound that comes from the width ``[a, b]``
(no span split cuts that solution off); otherwise the box is priced again if the best plan
improved since (``q`` below ``R_best``), and its span range is halved if not (the upper half
keeps the box's LP when the LP's span lies in it: the same columns, and the optimum lies in it).
Ryan-Foster's pair is a fractional one (``0 < w_ij < 1``, ``w_ij`` its share of the LP solution)
with the most tokens at stake, ``min(w_ij, 1 - w_ij) (u_i + u_j)`` (:data:`BRANCH_WEIGHTED`).  For users
in classes of their own, an LP solution whose every ``w_ij`` and every length share is
integral is integral (a fractional column ``c`` holding ``i`` has a second column holding ``i``
in the support; some ``j`` is in one and not the other, so ``0 < w_ij < 1``; with the sets fixed,
two columns differ in a length), so the tree ends in integral leaves, which are plans of span
``<= b`` and are offered as such.  Each branch adds a pair not yet ruled or narrows a range, so
a box has finitely many descendants at one span range.

Identical users.  Users with the same tables form a class (:class:`~dipsd.formulation.columns.Classes`);
the master has one cover row per class, ``sum_c a_kc x_c = n_k`` with ``x`` integer, and keeps each
column in a canonical form (the class's first users), so the ``n_k!`` relabellings of a batch are
one column and the LP is not degenerate with identical users (docs/benchmarks.md).  The proof
above holds with ``pi_m = pi_k`` for every member of class ``k``: then ``sum_{m in c} pi_m =
sum_k a_kc pi_k`` for whichever members a column names, pricing over users is pricing over
classes, and ``sum_m pi_m = sum_k n_k pi_k``.  A plan is read off an integer solution by giving
each column's class places to distinct users of the class (:meth:`Classes.realize`).

The master LP and IPs use highspy directly: columns are added to one persistent LP
without a rebuild, and per budget only column bounds change (Pyomo's persistent interface
would rebuild its maps per column and offers no cheaper way to read the duals).  The LP holds
only the pool columns that can matter at a node (:meth:`_Master.purge`, :meth:`_Master.restore`):
HiGHS's time per re-solve is about proportional to the columns it holds.  Numbers
are tokens and ms (no coefficient below HiGHS's 1e-9 threshold).  Every plan is
re-evaluated by the closed-form evaluator.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

import highspy
import numpy as np

from ..data.scenario import Scenario
from ..data.text import plural
from ..formulation.columns import NO_RULES, STAGE_RTOL, Classes, Column, Pricer, Rules, columns_of, fits, make_column
from ..formulation.evaluate import Evaluation, evaluate, greedy_batches
from ..formulation.plan import Plan
from ..formulation.tables import Tables
from .deadline import Deadline
from .milp.highs_adapter import run_for, spend_banner
from .milp.solvers import current_threads
from .polish import exchange, polish
from .results import SolveResult, Status
from .start import simple_plan
from .tolerances import IMPROVE_RTOL, OPTIMAL_RTOL

log = logging.getLogger(__name__)

MIN_WIDTH = 1e-11
"""Intervals of relative width ``b/a - 1`` below this are not split further."""
RC_TOL = 1e-9
"""Column generation stops once no column has a reduced cost above this (tokens)."""
EMPTY_TOL = 1e-9
"""Phase 1 proves a node empty when its Lagrangian bound on ``- sum of artificial columns`` is below
``-EMPTY_TOL`` (the phase-1 duals are of order 1; :meth:`_Bounder.empty`)."""
SAFETY = 1e-10
"""The reported bound is raised by this relative margin against floating-point rounding."""
COLUMNS_PER_ROUND = 30
"""Columns added to the master per pricing round (the best per (length, level, size))."""
LP_FEASIBILITY = 1e-10
"""The master LP's primal and dual feasibility tolerances: duals feasible to 1e-7 only would leave
columns of reduced cost ~1e-7 that pricing keeps finding (the bound stays valid, but looser)."""
INTEGRAL_TOL = 1e-6
"""An LP value within this of an integer counts as integral (dives, branching on the batch count);
an artificial variable above it means the restricted master is infeasible."""
BRANCH_TOL = 1e-9
"""A pair's or a length's share of the LP solution counts as fractional above this (and below 1 minus it):
shares of 1e-7 carry LP ratios 1e-7 above the best plan, which ``optimal`` (1e-9) cannot leave open; the
master's primal tolerance is :data:`LP_FEASIBILITY`, ten times smaller."""
SMOOTHING = 0.7
"""Wentges dual smoothing: pricing uses this weight on the best duals so far (fewer generation rounds)."""
MASTER_SIMPLEX = 4
"""HiGHS's ``simplex_strategy`` for the master LP: 4, primal.  Column generation adds columns to a
primal feasible basis, which primal simplex re-optimizes from where it stands.  Measured against
HiGHS's default (1, dual) under the same work limits: LP time 19.3 to 13.3 s (heterogeneous M = 20
seed 4, 1,500 units) and 5.2 to 3.9 s (M = 30 seed 0, 800 units).  At 120 s, M = 16 seed 3 was proven
in 16.4 s (23.1 s) and M = 30 seeds 2 / 4 in 16.7 / 19.9 s (29.6 / 34.1 s), with M = 30 seed 0 at
0.130 % (0.178 %) and M = 50 seed 3 at 0.112 % (0.321 %) beside a second run (docs/benchmarks.md)."""
LP_RTOL = 1e-7
"""Column generation for a box stops once its Lagrangian bound is this close (relative) to the LP value."""
IP_REL_GAP = 1e-6
"""The budget IPs only look for plans (the bound never comes from them): a small gap suffices."""
STALE_ROUNDS = 3
PLAN_SHARE = 0.35
"""After :data:`STALE_ROUNDS` rounds without a better plan, the plan search goes on (over budgets not
tried yet) only while it has used less than this share of the time limit."""
NEIGHBOURHOOD = (1.0, 1.01, 1.03, 0.99, 1.1)
"""Budgets tried around the best plan's span (factors), with its number of batches."""
IP_MAX_S = 8.0
"""Most seconds of one budget IP."""
DIVE_MAX_S = 8.0
"""Most seconds of one dive (under a work limit: a tenth of the work left, in LP solves)."""
WIDE = 0.05
"""Without branching, a box whose LP only a branch can cut is still halved while its span range is wider than
this (relative): the first bound of heterogeneous M = 100 seed 5 (second scenario) 4.50 % with it, 5.17 %
without; no change at M = 16-50 (seeds tried: 16/3, 30/3, 50/0, 50/4)."""
IP_MAX_NODES = 500
"""Most branch-and-bound nodes of one budget IP under a work limit (in place of :data:`IP_MAX_S`)."""
BRANCH_RATIO = 1.0
"""A box is branched on a pair or a length only when its LP's excess over the best plan at ``b`` is at
least this many times the part of its bound that comes from the width of its span range (otherwise
its span range is halved first)."""
BRANCH_SHARE = 0.5
"""Branch-and-price runs first until this share of the limit is used, then the plan search, then
branch-and-price again for the rest (a tree that does not close leaves time for plans).  Measured (120 s,
version 0.7): heterogeneous M = 30 seeds 3 / 4 proven in 31 / 36 s at 0.5 and 86 / 78 s at 0.2, seed 0
0.213 % against 0.245 %; M = 50 seed 4 (without the early plan round) 2.03 % at 0.5 and 0.10 % at 0.2:
the early plan round (:data:`EARLY_PLANS_GAP`) gives such instances their plans first."""
BRANCH_WEIGHTED = True
"""Ryan-Foster branching takes the fractional pair with the most tokens at stake (:func:`_branch`), not the
pair nearest 1/2 (most fractional, with False).  Measured at 60 s (heterogeneous; most fractional in brackets): M = 50
seed 0 0.0785 % (0.367 %; proven at 120 s, 0.283-0.330 % before), M = 50 seed 2 proven in 23 branches
(0.08 % after 900 branches at 120 s), M = 30 seed 0 proven (0.047 %), M = 20 seed 4 0.0024 % (0.105 %).
Branching first on lengths instead made M = 50 seed 0 worse (0.581 %), and so did the pair with the
largest / smallest ``w`` (0.472 / 0.514 %); ``u_i u_j`` in place of ``u_i + u_j`` gave about the same
(0.0736 %, 0.0009 %).  Which pair is branched on never touches the bound: both children together hold
every plan of the node."""
FILTER_SLACK = 1e-3
"""A budget IP keeps the pool columns whose reduced cost is within its LP's excess over the best plan
plus this share of the LP's value (:meth:`_Master.promising`)."""
EARLY_PLANS_GAP = 0.01
"""Where the first bound leaves a gap above this (relative), one round of plan search runs before
branch-and-price (a better plan prices the span higher in every node).  Measured (120 s): heterogeneous
M = 50 seeds 0 / 4 ended at 2.96 / 0.137 % with it and 5.13 / 2.03 % without, M = 30 seeds 3 / 4 (first
gaps 0.77 / 0.18 %) were proven in 62 / 53 s with it and 31 / 36 s without."""
IMPROVE_SHARE = 0.2
IMPROVE_MAX_S = 30.0
"""The local search from a new best plan (:meth:`_Search.improve`) has this share of the time left, at most
this many seconds."""
START_SHARE = 0.15
START_MAX_S = 20.0
"""The same for the start plan, before the first bound.  Rebatching lifts heterogeneous M = 50 seed 0 from
DiP-SD's 208 tok/s to 217.035 in about 9 s after DiP-SD; at a tenth (at most 10 s) the benchmark's long
process was cut at 214.6 once (1.89 % at 120 s against 0.45 %)."""
REBATCH_SIZES = (2,)
"""The rebatching neighbourhoods (:meth:`_Search.rebatch`): every pair of the best plan's batches (a
tuple of sizes, tried in turn).  Measured from DiP-SD's plan of heterogeneous M = 50 seed 0 (207.989
tok/s, a prototype without :func:`_moves`): pairs reach 214.009 tok/s in 3.6 s, where exchange and
polish alone stop at 207.989 and price-and-branch took 58 s to 214.048; triples then add nothing
and cost 5 s, quadruples 9 s."""
REBATCH_BUDGETS = 4
REBATCH_STEP = 1e-6
"""A rebatching sub-problem is solved at the best plan's span, then, while the span of what it found is set
by one of its batches' stage ``st_c``, again at ``st_c (1 - REBATCH_STEP)`` (at most this many budgets):
the column generation prices the verification sum only, and the columns of a shorter stage come from a
lower budget.  Measured on the 64 plans one move from a tiny instance's optimum
(``test_rebatching_repairs_a_plan_one_move_from_the_optimum``): repaired 36 with one budget, 37 with
four, all 64 once :func:`_moves` joined (with one budget or four)."""
REBATCH_IP_MAX_S = 1.0
REBATCH_IP_MAX_NODES = 100
"""Most seconds (nodes, under a work limit) of one rebatching IP.  Where the best plan has two or three
batches a pair is most of the problem, and its IP (the span's stage rows make its LP weak) ran into the
plan search's 8 s: heterogeneous M = 16 seed 0 was proven in 15.7 s against 10.9 s without rebatching."""
REBATCH_ROUNDS = 200
"""Most column-generation rounds of one rebatching sub-problem (a guard: they converge in 5-30)."""
PURGE_SHARE = 0.1
"""Each node's master starts without the columns whose reduced cost at the last solve is below minus this
share of the LP's tokens ``sum U x`` (they stay in the pool: :meth:`_Master.purge`, :meth:`_Master.restore`).
At heterogeneous M = 50 seed 0 (120 s) a threshold of about 3e-5 of the tokens (1 % of the box LP's value
``sum U x - q S``) had pricing over the pool put back 495,000 columns in 60 s; gaps at 120 s over runs of a
noisy day, 0.1 against 3e-5: seed 0 0.278 / 0.307 / 0.341 % against 0.297 / 0.330 / 0.326 / 0.330 %, seed 2
0.110 / 0.149 % against 0.100-0.200 % (docs/benchmarks.md)."""
PURGE_FLOOR = 1e-9
"""Only columns of reduced cost below minus this share of the LP's tokens leave the LP (they are nonbasic)."""
RESTORE_MOST = 300
"""Most pool columns put back into the LP per round of pricing over the pool."""
ROUND_SHARE = 0.1
"""Under a time limit, the dives and budget IPs of one plan round after the first branch-and-price
(:meth:`_Search.run`) get at most this share of the limit together, split evenly over the round's points
(each still at most :data:`DIVE_MAX_S` / :data:`IP_MAX_S`).  At heterogeneous M = 50 a round's five IPs over
~13,000 columns each ran into their 8 s and found nothing (36 s of 120); at M = 20-30, where rounds find the
plans that close the gap, a round took 3-10 s.  Under a work limit the rounds are bounded in work units
as before (a share of the time would make results depend on the machine's speed)."""
RESERVE = 0.05
"""The plan search stops when less than this share of the limit is left (HiGHS may overrun a limit a little)."""
_INF = highspy.kHighsInf
_FEASIBLE_SOLUTION = int(highspy.kSolutionStatusFeasible)
"""HiGHS's ``primal_solution_status`` when it holds a feasible solution."""


def _new_highs() -> highspy.Highs:
    spend_banner()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    # the same as every HiGHS use of this process (HiGHS keeps one thread pool per process: an LP made
    # with another thread count after a MILP of `solve --threads K` returned garbage)
    h.setOptionValue("threads", current_threads())
    return h


class _Master:
    """The restricted master LP: ``min -sum U_c x_c`` over the pool, one persistent HiGHS LP.

    The *pool* is every column generated (``columns``, by pool index; ``stage``, ``tokens``,
    ``verify``, ``level``, ``enabled`` over it); the LP holds a part of it (``held``: the pool index
    of each LP column, ``where``: the LP column of each pool column or -1), chosen per node by
    :meth:`purge` and :meth:`restore`.

    Rows: one cover row per class of identical users (``sum_c a_kc x_c = n_k``,
    :class:`~dipsd.formulation.columns.Classes`; with distinct users, one per user, ``= 1``), the
    budget row (<= S), the count row (N_min..N_max), and one *level row* per prefix level
    ``j >= 1``: ``sum_{c: I_c >= P_j} x_c >= r_j`` with ``r_j`` the fewest memory-feasible batches
    that hold the users whose prefix is ``>= P_j`` (:meth:`Tables.fewest_batches`, the greedy
    packing, proven minimal there; each such user sits in a batch padded to ``>= P_j``): valid for
    every plan, it cuts fractional packings.  (``ceil(h_j / B_j)``, ``h_j`` those users, is weaker
    where higher prefixes leave smaller rooms: heterogeneous M = 50 seed 2 has ``r = 9, 7, 5`` for
    prefixes 512, 1024, 2048 against ``5, 5, 5``.)  Artificial columns (cost ``BIG``) keep the LP
    feasible: one per cover row, one for the count row's lower end and one per level row; they are not
    columns of the real problem and take no part in the bound, which is proven for the real
    columns only.
    """

    def __init__(self, scenario: Scenario, t: Tables, classes: Classes | None = None, clock: Deadline | None = None):
        self.M = t.num_users
        self.clock = clock  # each LP solve stops at its time limit (a master of 20-40k columns takes seconds)
        self.classes = classes if classes is not None else Classes(t)
        K, J = len(self.classes), len(t.levels)
        self.K = K
        self.h = _new_highs()
        h = self.h
        # tight LP tolerances: duals that are dual feasible to 1e-7 only would leave columns of
        # reduced cost ~1e-7 that pricing keeps finding (the bound stays valid, but looser)
        h.setOptionValue("dual_feasibility_tolerance", LP_FEASIBILITY)
        h.setOptionValue("primal_feasibility_tolerance", LP_FEASIBILITY)
        h.setOptionValue("simplex_strategy", MASTER_SIMPLEX)
        self.level_rhs = np.array([0.0] + [float(t.fewest_batches(j)) for j in range(1, J)])
        rows = K + 2 + (J - 1)
        sizes = [float(n) for n in self.classes.size]
        lower = np.array(sizes + [-_INF, float(scenario.min_batches)] + list(self.level_rhs[1:]))
        upper = np.array(sizes + [0.0, float(scenario.max_batches)] + [_INF] * (J - 1))
        h.addRows(rows, lower, upper, 0, np.zeros(rows, dtype=np.int32), np.array([], dtype=np.int32), np.array([]))
        # column 0: the span S, in the budget row as sum tv x - S <= 0 (fixed at 0 when the budget is a number)
        h.addCols(1, np.zeros(1), np.zeros(1), np.zeros(1), 1, np.zeros(1, dtype=np.int32), np.array([K], dtype=np.int32),
                  np.array([-1.0]))
        big = 10.0 * (sum(t.top_tokens) + 1.0)
        idx = np.array(list(range(K)) + [K + 1] + list(range(K + 2, rows)), dtype=np.int32)
        n_art = len(idx)
        h.addCols(n_art, np.full(n_art, big), np.zeros(n_art), np.full(n_art, _INF), n_art,
                  np.arange(n_art, dtype=np.int32), idx, np.ones(n_art))
        self.big, self.price, self.phase1, self.artificials = big, 0.0, False, True
        self.first = 1 + n_art  # the first real column (after the span and the artificial ones)
        self.rows, self.levels = rows, J
        self.level_of = t.level_of
        # the pool (every column ever generated, by pool index) and which of them the HiGHS LP holds
        self.columns: list[Column] = []
        self.keys: dict = {}  # column key -> pool index
        self.stage = np.zeros(0)
        self.tokens = np.zeros(0)
        self.verify = np.zeros(0)
        self.level = np.zeros(0, dtype=np.int64)  # a column's level (the highest prefix level of its members)
        self.enabled = np.zeros(0, dtype=bool)  # obeys the node's rules and budget (in the LP: upper bound inf)
        self.where = np.zeros(0, dtype=np.int64)  # the LP column of each pool column, -1 when not in the LP
        self.held = np.zeros(0, dtype=np.int64)  # the pool index of each LP column (LP column first + p)
        self.fixed: list[int] = []
        self._entries: list[tuple[np.ndarray, np.ndarray]] = []  # each pool column's rows and coefficients
        self._last: Duals | None = None  # the unclipped duals of the last solve, if optimal (phase 1's in phase 1)
        self._last_tokens = 0.0
        self._last_phase1 = False
        # who each column holds and at which length (0: not in it), for the rules of a node (grown by doubling)
        self._length = np.zeros((64, self.M), dtype=np.int16)
        self._users = np.full((64, 1), self.M, dtype=np.int32)  # members, padded with M (int32: gathers 3x faster)

    def add(self, columns: Iterable[Column]) -> int:
        """Add to the LP the columns it does not hold (in canonical form): new ones join the pool, pool
        columns left out by :meth:`purge` come back; how many the LP gained."""
        new: list[Column] = []
        back: list[int] = []
        seen: set[int] = set()
        for c in map(self.classes.canonical, columns):
            i = self.keys.get(c.key)
            if i is None:
                self.keys[c.key] = len(self.columns) + len(new)
                new.append(c)
            elif i < len(self.columns) and self.where[i] < 0 and i not in seen:
                back.append(i)
                seen.add(i)
        if new:
            first = len(self.columns)
            self.columns += new
            height = len(self._length) if len(self.columns) <= len(self._length) else 2 * len(self.columns)
            width = max([len(c.users) for c in new] + [self._users.shape[1]])
            self._length = _grown(self._length, height, self.M, 0, first)
            self._users = _grown(self._users, height, width, self.M, first)
            for i, c in enumerate(new, start=first):
                self._length[i, list(c.users)] = c.lengths
                self._users[i, : len(c.users)] = c.users
            self.stage = np.concatenate([self.stage, [c.stage_ms for c in new]])
            self.tokens = np.concatenate([self.tokens, [c.tokens for c in new]])
            self.verify = np.concatenate([self.verify, [c.verify_ms for c in new]])
            self.level = np.concatenate([self.level, [max(self.level_of[m] for m in c.users) for c in new]])
            self.enabled = np.concatenate([self.enabled, np.zeros(len(new), dtype=bool)])
            self.where = np.concatenate([self.where, np.full(len(new), -1, dtype=np.int64)])
            starts, rows, value = _entries(new, self.classes, self.level_of)
            ends = list(starts[1:]) + [len(rows)]
            self._entries += [(rows[a:b], value[a:b]) for a, b in zip(starts, ends)]
            back += range(first, len(self.columns))
        return self._insert(np.array(back, dtype=np.int64))

    def _insert(self, index: np.ndarray) -> int:
        """Put pool columns ``index`` (not in the LP) into the LP, at the end, enabled."""
        if not len(index):
            return 0
        entries = [self._entries[i] for i in index]
        starts = np.cumsum([0] + [len(r) for r, _ in entries[:-1]]).astype(np.int32)
        rows = np.concatenate([r for r, _ in entries])
        value = np.concatenate([v for _, v in entries])
        cost = np.zeros(len(index)) if self.phase1 else -self.tokens[index]
        self.h.addCols(len(index), cost, np.zeros(len(index)), np.full(len(index), _INF), len(rows), starts, rows, value)
        self.where[index] = self.first + len(self.held) + np.arange(len(index))
        self.held = np.concatenate([self.held, index])
        self.enabled[index] = True
        return len(index)

    def reduced_costs(self, duals: Duals, index: np.ndarray) -> np.ndarray:
        """``rc_c`` of pool columns ``index`` under ``duals`` (:meth:`Duals.reduced_cost`, for many at once)."""
        pi = np.append(duals.pi, 0.0)  # a gather, not a product with a users matrix: no BLAS threads
        above = np.cumsum(duals.sigma)  # sum_{j <= level} sigma_j (sigma_0 = 0)
        return (self.tokens[index] - pi[self._users[index]].sum(axis=1) - duals.mu * self.verify[index] - duals.nu
                + above[self.level[index]])

    def purge(self, share: float) -> int:
        """Take out of the LP the columns that are nonbasic and either fixed at 0 (they break the node's
        rules or budget) or of reduced cost below ``-share`` times the LP's tokens at the last solve;
        they stay in the pool (:meth:`add` and :meth:`restore` bring them back).  How many went.

        The LP's restricted master changes, the bound does not: pricing is exact over every column
        (module docstring).  Only nonbasic columns go, so the basis stays valid: a column whose
        reduced cost at the last solve is below ``-1e-9`` times its tokens is nonbasic there (a basic
        one has reduced cost 0), and nothing since has changed the basis (:meth:`set_budget` and
        :meth:`set_count` change bounds, :meth:`add` appends nonbasic columns).  HiGHS's time per
        re-solve is about proportional to the columns the LP holds (docs/benchmarks.md)."""
        if self._last is None or self._last_phase1 or not len(self.held) or self.fixed:
            return 0
        rc = self.reduced_costs(self._last, self.held)
        scale = max(abs(self._last_tokens), 1.0)
        out = (rc < -PURGE_FLOOR * scale) & (~self.enabled[self.held] | (rc < -share * scale))
        if not out.any():
            return 0
        gone = np.flatnonzero(out)
        self.h.deleteCols(len(gone), (gone + self.first).astype(np.int32))
        self.where[self.held[gone]] = -1
        self.held = self.held[~out]
        self.where[self.held] = self.first + np.arange(len(self.held))
        return len(gone)

    def restore(self, most: int = RESTORE_MOST) -> int:
        """Pricing over the pool: put back into the LP the (at most ``most``) enabled pool columns it does not
        hold whose reduced cost at the last solve's optimum is above :data:`RC_TOL`, the best first; how many."""
        if self._last is None or self._last_phase1:
            return 0
        out = np.flatnonzero((self.where < 0) & self.enabled)
        if not len(out):
            return 0
        rc = self.reduced_costs(self._last, out)
        good = np.flatnonzero(rc > RC_TOL)
        if len(good) > most:
            good = good[np.argsort(-rc[good], kind="stable")[:most]]
        return self._insert(np.sort(out[good]))

    def within(self, inside: np.ndarray) -> list[Column]:
        """The pool columns whose members are all in ``inside`` (a mask over the users)."""
        length = self._length[: len(self.columns)]
        return [self.columns[i] for i in np.flatnonzero(~(length[:, ~inside] > 0).any(axis=1))]

    def set_count(self, low: int, high: int) -> None:
        """Count row ``low <= sum x <= high`` (a branch on the number of batches)."""
        self.h.changeRowBounds(self.K + 1, float(low), float(high))

    def set_budget(self, budget: float, rules: Rules = NO_RULES, span_from: float | None = None, price: float = 0.0,
                   stage: float | None = None) -> None:
        """Budget row ``sum tv x <= budget``; columns whose stage exceeds it (``stage`` where given:
        the rebatching sub-problems of :meth:`_Search.rebatch` leave room for fixed batches), or
        that break a rule of the node (:class:`~dipsd.formulation.columns.Rules`), are fixed at 0.

        With ``span_from`` the span is a variable instead, ``sum tv x <= S`` with ``span_from <= S
        <= budget``, and the objective is ``sum U x - price S`` (Dinkelbach's parametric objective
        over a span range)."""
        if span_from is None:
            self.h.changeRowBounds(self.K, -_INF, float(budget))
            self.h.changeColBounds(0, 0.0, 0.0)
            self.h.changeColCost(0, 0.0)
        else:
            self.h.changeRowBounds(self.K, -_INF, 0.0)
            self.h.changeColBounds(0, float(span_from), float(budget))
            self.h.changeColCost(0, float(price))
        self.price = 0.0 if span_from is None else float(price)
        want = self.stage <= (budget if stage is None else stage) * (1 + STAGE_RTOL) + 1e-9  # as columns.fits
        if rules:
            length = self._length[: len(self.columns)]
            want &= rules.mask(length > 0, length)
        flip = np.flatnonzero((want != self.enabled) & (self.where >= 0))
        if len(flip):
            upper = np.where(want[flip], _INF, 0.0)
            self.h.changeColsBounds(len(flip), self.where[flip].astype(np.int32), np.zeros(len(flip)), upper)
        self.enabled = want

    def feasibility(self, on: bool) -> None:
        """Phase 1 (``on``): every real column and the span cost 0 and every artificial column 1, so the
        LP minimizes the artificial total (:meth:`_Bounder.empty`); off: the costs of the master again."""
        n, art = len(self.held), np.arange(1, self.first, dtype=np.int32)
        self.h.changeColsCost(n, np.arange(self.first, self.first + n, dtype=np.int32),
                              np.zeros(n) if on else -self.tokens[self.held])
        self.h.changeColsCost(len(art), art, np.full(len(art), 1.0 if on else self.big))
        self.h.changeColCost(0, 0.0 if on else self.price)
        self.phase1 = on

    def artificial(self, on: bool) -> None:
        """Whether the artificial columns may be used (off: fixed at 0, once the pool holds a solution of
        real columns: their cost ``BIG`` then cannot distort the duals of a nearly infeasible node)."""
        if on == self.artificials:
            return
        art = np.arange(1, self.first, dtype=np.int32)
        self.h.changeColsBounds(len(art), art, np.zeros(len(art)), np.full(len(art), _INF if on else 0.0))
        self.artificials = on

    def reduced_cost(self, c: Column, duals: Duals) -> float:
        return duals.reduced_cost(c, max(self.level_of[m] for m in c.users))

    def fix(self, i: int, at_least: int) -> None:
        """Force pool column ``i`` (in the LP) into the solution ``at_least`` times (``x_i >= at_least``): a
        diving step (no :meth:`purge` until :meth:`release`)."""
        self.h.changeColBounds(int(self.where[i]), float(at_least), _INF)
        self.fixed.append(i)

    def release(self) -> None:
        """Undo every :meth:`fix` (bounds are computed only without fixings)."""
        for i in self.fixed:
            self.h.changeColBounds(int(self.where[i]), 0.0, _INF if self.enabled[i] else 0.0)
        self.fixed = []

    def promising(self, budget: float, low: int, high: int, tokens: float) -> np.ndarray:
        """Which pool columns can be in a plan of span ``<= budget`` with at least ``tokens`` tokens,
        by their reduced costs at the pool's LP optimum there: a plan ``x`` has ``U(x) <= V + sum_c
        x_c rc_c`` when no pool column has a positive reduced cost (``V`` the LP's value), so a
        column with ``rc_c < tokens - V`` is in none of them (:data:`FILTER_SLACK` keeps a margin:
        pricing may still find columns outside the pool, and the filter only narrows a plan search)."""
        self.set_budget(budget)
        self.set_count(low, high)
        self._run()
        while self.restore() > 0:  # the LP over the whole pool
            self._run()
        if self._last is None or self._last_phase1:
            return self.enabled.copy()
        rc = self.reduced_costs(self._last, np.arange(len(self.columns)))
        room = self.value() - tokens
        return self.enabled & (rc >= -(max(room, 0.0) + FILTER_SLACK * abs(self.value())))

    def _run(self) -> None:
        """Solve the LP, stopped by the clock's time limit (then not :meth:`optimal`: no duals are used);
        keep its unclipped duals for :meth:`purge` and :meth:`promising`."""
        run_for(self.h, math.inf if self.clock is None else self.clock.remaining())
        self._last = None
        if self.optimal():
            solution = self.h.getSolution()
            y = np.array(solution.row_dual)
            if len(y) == self.rows:
                # HiGHS: reduced cost d = c - A^T y with c = -U; ours: rc = U - A^T (pi, mu, nu, -sigma) = -d.
                # A class's dual is every member's pi_m (so sum_m pi_m = sum_k n_k pi_k and a column's
                # sum over its members is sum_k a_kc pi_k, whichever members it names)
                K = self.K
                self._last = Duals(-y[:K][self.classes.index], float(-y[K]), float(-y[K + 1]),
                                   np.concatenate([[0.0], y[K + 2:]]))
                self._last_tokens = self.value() + self.price * float(solution.col_value[0])  # sum U x
                self._last_phase1 = self.phase1

    def optimal(self) -> bool:
        """Whether the last LP solve ended optimal (its solution and duals mean something)."""
        return self.h.getModelStatus() == highspy.HighsModelStatus.kOptimal

    def value(self) -> float:
        """The last LP's objective ``sum U x - price S`` (artificial columns count at their cost)."""
        return -float(self.h.getInfo().objective_function_value)

    def values(self) -> tuple[np.ndarray, float, float]:
        """The last LP solution: real columns' values, the total of the artificial ones and the span ``S``
        (0 when the budget is a number)."""
        x = np.array(self.h.getSolution().col_value)
        pool = np.zeros(len(self.columns))
        pool[self.held] = x[self.first:]
        return pool, float(x[1: self.first].sum()), float(x[0])

    def solve(self) -> Duals:
        """Solve; the duals in the maximization's sign convention (mu and sigma clipped to >= 0), zero
        when the LP did not end optimal."""
        self._run()
        d = self._last
        if d is None:
            return Duals(np.zeros(self.M), 0.0, 0.0, np.zeros(self.levels))
        return Duals(d.pi, max(0.0, d.mu), d.nu, np.maximum(d.sigma, 0.0))


@dataclass(frozen=True)
class Duals:
    """Dual values of the master's rows: cover ``pi``, budget ``mu >= 0``, count ``nu``, level ``sigma >= 0``."""

    pi: np.ndarray
    mu: float
    nu: float
    sigma: np.ndarray

    def mix(self, other: Duals, weight: float) -> Duals:
        """``weight * self + (1 - weight) * other`` (signs stay valid: a convex combination)."""
        w = weight
        return Duals(w * self.pi + (1 - w) * other.pi, w * self.mu + (1 - w) * other.mu, w * self.nu + (1 - w) * other.nu,
                     w * self.sigma + (1 - w) * other.sigma)

    def constant(self, top: float, low: int, high: int, level_rhs: np.ndarray) -> float:
        """``K = sum_m pi_m + h(nu) + h(rc*) - sum_j sigma_j r_j`` of the module docstring, with ``rc* = top``
        (the best reduced cost pricing found under these duals) and ``low..high`` batches."""
        return float(np.sum(self.pi)) + _h(self.nu, low, high) + _h(top, low, high) - float(self.sigma @ level_rhs)

    def reduced_cost(self, c: Column, level: int) -> float:
        return c.tokens - float(self.pi[list(c.users)].sum()) - self.mu * c.verify_ms - self.nu + float(self.sigma[1:level + 1].sum())


def _grown(table: np.ndarray, rows: int, width: int, fill: int, keep: int) -> np.ndarray:
    """``table`` with ``rows`` rows and ``width`` columns (its first ``keep`` rows kept, the rest ``fill``);
    the table itself when it has that shape already."""
    if table.shape == (rows, width):
        return table
    out = np.full((rows, width), fill, dtype=table.dtype)
    out[:keep, : table.shape[1]] = table[:keep]
    return out


def _entries(columns: Sequence[Column], classes: Classes,
             level_of: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise sparse entries of columns in the rows both LPs share: class rows ``0..K-1``
    (``a_kc``), the budget row ``K`` (``tv_c``), the count row ``K + 1``; with ``level_of``, also
    the level rows ``K + 1 + j`` for ``1 <= j <= level(c)``."""
    K = len(classes)
    starts: list[int] = []
    index: list[int] = []
    value: list[float] = []
    for c in columns:
        level = max(level_of[m] for m in c.users) if level_of is not None else 0
        starts.append(len(index))
        counts = sorted(classes.counts(c).items())
        index += [k for k, _ in counts] + [K, K + 1] + [K + 1 + j for j in range(1, level + 1)]
        value += [float(a) for _, a in counts] + [c.verify_ms, 1.0] + [1.0] * level
    return np.array(starts, dtype=np.int32), np.array(index, dtype=np.int32), np.array(value)


def _h(value: float, low: int, high: int) -> float:
    """``max`` of ``value * n`` over ``n`` in ``[low, high]``."""
    return value * (high if value >= 0 else low)


class _Phase1(Enum):
    """What phase 1 found at a node (:meth:`_Bounder.empty`)."""

    EMPTY = "empty"  # proven: no plan in the node
    REAL = "real"  # an LP solution of real columns (the node's LP is feasible without artificial columns)
    UNKNOWN = "unknown"  # neither, in time or before pricing stalled


class _Bounder:
    """Column generation per budget and the certified bound of an interval below it."""

    def __init__(self, scenario: Scenario, t: Tables, master: _Master, pricer: Pricer, clock: Deadline):
        self.s, self.t, self.master, self.pricer, self.clock = scenario, t, master, pricer, clock
        self.lp_solves = 0
        self.timed_out = False
        self.points: dict[tuple, float] = {}  # (budget, low, high) -> the bound on G there (the LP value at convergence)

    def at(self, budget: float, low: int, high: int, a: float = 0.0, target: float = math.inf,
           rules: Rules = NO_RULES, rtol: float = LP_RTOL) -> _Lp:
        """``G(S) <= K + mu S`` for every ``S <= budget`` and plans of ``low..high`` batches that obey
        ``rules`` (module docstring), with the LP's solution (:class:`_Lp`).

        Without ``a`` the LP is the master at the budget (``G_LP(budget)``).  With a box ``[a,
        budget]`` the span is a variable of that range priced at ``q = target`` (the best plan's
        ratio): the LP is ``max sum U x - q S``, Dinkelbach's parametric problem over the box, and
        its duals give the line that proves the box no better than ``q`` wherever the LP can
        (``max_S G_LP(S) - q S <= 0``), however wide the box; the duals kept are those of the
        smallest bound on the box's ratio.  Column generation stops once no column has a positive
        reduced cost, once the Lagrangian bound is within ``rtol`` (relative) of the master's
        value, or once the box is proven no better than ``target`` (tokens/ms): a box's bound
        needs no more precision than that.
        """
        master = self.master
        box = a > 0
        q = target if box and math.isfinite(target) else 0.0
        master.set_budget(budget, rules, a if box else None, q)
        master.set_count(low, high)
        master.purge(PURGE_SHARE)
        try:
            return self._generate(budget, low, high, a, q, target, rules, rtol)
        finally:
            master.artificial(True)

    def _generate(self, budget: float, low: int, high: int, a: float, q: float, target: float, rules: Rules,
                  rtol: float) -> _Lp:
        """The column generation of :meth:`at` (the master's budget and count set).  Where the master
        keeps artificial columns at the end, phase 1 (:meth:`empty`) proves the node empty, or finds
        a solution of real columns, and then generation goes on with the artificial columns fixed at 0."""
        master = self.master
        box = a > 0
        best_k, best_mu, best_score, best_lagrangian = math.inf, 0.0, math.inf, math.inf
        center: Duals | None = None  # the duals of the best bound so far (Wentges smoothing)
        smooth = SMOOTHING
        resolve = True
        real = False  # the artificial columns are fixed at 0
        while True:
            if resolve:
                duals = master.solve()
                self.lp_solves += 1
                self.clock.spend()
                if master.restore() and not self.clock.over():
                    continue  # pool columns of positive reduced cost are back in the LP: solve again before pricing
            at_lp = center is None or smooth == 0.0
            sep = duals if center is None or at_lp else center.mix(duals, smooth)
            top, cols = self.pricer.price(budget, sep.pi, sep.mu, sep.nu, keep=COLUMNS_PER_ROUND, sigma=sep.sigma,
                                          rules=rules)
            if not math.isfinite(top):  # no column fits this budget (and the rules): G(S) = -inf below it
                return _Lp(-math.inf, 0.0, 0.0, math.nan, rtol=0.0)
            k = sep.constant(top, low, high, master.level_rhs)
            mu = sep.mu
            # the Lagrangian bound on the LP's objective, and the bound these duals give
            lagrangian = k + max((mu - q) * a, (mu - q) * budget) if box else k + mu * budget
            score = _interval_bound(k, mu, a, budget, math.inf) if box else lagrangian
            if score < best_score:
                best_k, best_mu, best_score, best_lagrangian, center = k, mu, score, lagrangian, sep
            late = self.clock.over()
            proven = box and best_score <= target * (1 + OPTIMAL_RTOL)
            x, artificial, span = master.values()
            tokens = master.value() + q * span  # the LP solution's sum U x
            close = best_lagrangian - master.value() <= rtol * abs(tokens if box else best_lagrangian)
            useful = [c for c in cols if master.reduced_cost(c, duals) > RC_TOL]
            converged = at_lp and top <= RC_TOL
            done = converged or proven or close or late
            added = 0 if done else master.add(useful)
            if not done and not added and not at_lp:
                smooth, resolve = 0.0, False  # mispricing (or nothing new): price at the LP's own duals once
                continue
            # converged, proven, close enough, out of time, or a numerical stall (the columns
            # priced at the LP's duals are in the pool already): the bound holds for whatever duals were used
            if done or not added:
                self.timed_out = self.timed_out or (late and not (converged or proven or close))
                if artificial > INTEGRAL_TOL and master.optimal() and not late and not real:
                    found = self.empty(budget, low, high, rules)
                    if found is _Phase1.EMPTY:
                        return _Lp(-math.inf, 0.0, 0.0, math.nan, rtol=0.0)  # no plan in the box (phase 1's proof)
                    if found is _Phase1.REAL:  # the pool holds a solution of real columns: on without the artificial ones
                        master.artificial(False)
                        real, smooth, resolve = True, SMOOTHING, True
                        continue
                if artificial > INTEGRAL_TOL or not master.optimal():  # no LP solution to read (or stopped in time)
                    return _Lp(best_k, best_mu, math.nan, math.nan, rtol=rtol, q=q)
                span = span if box else budget
                if not rules:  # the plan search looks at these points (spans and the LP's tokens there)
                    self.points[(span, low, high)] = tokens if box else best_lagrangian
                used = np.flatnonzero(x > 1e-12)
                stage = float(master.stage[used].max()) if len(used) else 0.0
                return _Lp(best_k, best_mu, float(x.sum()), tokens, tuple((master.columns[i], float(x[i])) for i in used),
                           rtol, span, max(0.0, best_lagrangian - master.value()), q, stage)
            smooth, resolve = SMOOTHING, True

    def empty(self, budget: float, low: int, high: int, rules: Rules = NO_RULES) -> _Phase1:
        """Phase 1 at a node: EMPTY when no plan of span ``<= budget`` with ``low..high`` batches obeys
        ``rules`` (proven), REAL when it found an LP solution of real columns, UNKNOWN when neither (in time).

        Where the master keeps artificial columns at convergence the node may hold no plan at all, and
        then no span split or bound from the master's duals closes it.  Phase 1 prices with every
        ``U_c`` taken as 0 (:meth:`_Master.feasibility`).  Proof: for duals as in the module docstring
        and ``rc1_c = - sum_{m in c} pi_m - mu tv_c - nu + sum_{j <= level(c)} sigma_j`` (at most
        ``rc1*``, exact pricing under the rules), any plan ``x`` of span ``S <= budget`` in the node
        has ``0 = sum_c x_c (rc1_c + sum_{m in c} pi_m + mu tv_c + nu - ...) <= K1 + mu S <= K1 + mu
        budget``, with ``K1`` as ``K``.  So ``K1 + mu budget < 0`` proves the node empty; at phase 1's
        optimum it is minus the least artificial total."""
        master = self.master
        master.feasibility(True)
        try:
            while not self.clock.over():
                d = master.solve()
                self.lp_solves += 1
                self.clock.spend()
                top, cols = self.pricer.price(budget, d.pi, d.mu, d.nu, keep=COLUMNS_PER_ROUND, sigma=d.sigma,
                                              rules=rules, tokens=False)
                k = d.constant(top, low, high, master.level_rhs)
                if k + d.mu * budget < -EMPTY_TOL:
                    return _Phase1.EMPTY
                if master.optimal() and master.values()[1] <= LP_FEASIBILITY:
                    return _Phase1.REAL
                useful = [c for c in cols if master.reduced_cost(c, d) - c.tokens > RC_TOL]
                if not master.optimal() or top <= RC_TOL or master.add(useful) == 0:
                    return _Phase1.UNKNOWN
            return _Phase1.UNKNOWN
        finally:
            master.feasibility(False)


@dataclass(frozen=True)
class _Lp:
    """Column generation's answer for a box ``[a, b]``: ``G(S) <= k + mu S`` for ``S <= b``; ``n`` the
    LP's number of batches, ``value`` its tokens ``sum U x``, ``span`` its span ``S`` and ``support``
    its columns with their values (nan, nan, nan and empty when the restricted master needed
    artificial columns); ``slack`` the Lagrangian bound's excess over the LP's objective, ``q`` the
    price of the span it was solved with (:meth:`_Bounder.at`) and ``stage`` the longest stage of the
    support's columns (the LP's span may be shorter: it relaxes a plan's ``S >= st_c``)."""

    k: float
    mu: float
    n: float
    value: float
    support: tuple[tuple[Column, float], ...] = ()
    rtol: float = LP_RTOL  # column generation's stopping tolerance (0: to convergence)
    span: float = math.nan
    slack: float = 0.0
    q: float = 0.0
    stage: float = 0.0  # the longest stage among the support's columns (a plan's span is at least that)

    def integral(self) -> bool:
        return bool(self.support) and all(abs(x - round(x)) <= INTEGRAL_TOL for _, x in self.support)


@dataclass(frozen=True)
class _Box:
    """A node of certify's tree: spans ``[a, b]``, batch counts ``low..high`` and branching ``rules``,
    bounded with column generation's answer ``lp`` at ``b``."""

    a: float
    b: float
    low: int
    high: int
    lp: _Lp
    bound: float  # on U/S over the box, tokens/ms (capped by the parent's)
    rules: Rules = NO_RULES
    own: float = math.inf  # the bound from the box's own duals, uncapped: the order among equal bounds

    def lp_ratio(self) -> float:
        """The ratio ``sum U x / S`` of the LP's own solution, the part of the bound that only branching
        can lower (the rest comes from the width of the span range); -inf without one."""
        lp = self.lp
        if not (math.isfinite(lp.value) and lp.span > 0):
            return -math.inf
        return min(self.bound, lp.value / max(lp.span, lp.stage))

    def fractional_count(self) -> bool:
        n = self.lp.n
        return math.isfinite(n) and abs(n - round(n)) > INTEGRAL_TOL and self.low < self.high


class _Step(Enum):
    """How :meth:`_Search.refine` refines a box."""

    COUNT = "count"  # branch on the number of batches
    BRANCH = "branch"  # branch-and-price: a user pair together / apart, or a length <= l / >= l + 1
    SPLIT = "split"  # halve the span range
    TIGHTEN = "tighten"  # column generation again, to convergence


def _branch(support: Sequence[tuple[Column, float]], rules: Rules, classes: Classes) -> tuple[Rules, Rules] | None:
    """The children of a branch on a fractional LP solution, or None when there is none to take.

    Ryan-Foster: for users ``i, j`` (each in a class of its own, so covered exactly once) let
    ``w_ij = sum of x_c over columns holding both``.  If some ``w_ij`` is fractional, the
    children are *together* (every batch holds both or neither) and *apart*; every plan obeys
    one of them, and the LP solution neither.  The pair taken has the most tokens at stake:
    ``min(w_ij, 1 - w_ij) (u_i + u_j)`` with ``u_m`` user ``m``'s most expected tokens over its
    lengths (:data:`BRANCH_WEIGHTED`).
    If every ``w_ij`` is integral the batches are fixed as sets; a user ``m`` whose length is
    still split between columns is branched on ``l_m <= l`` / ``l_m >= l + 1`` at the ``l``
    where the share of its columns with length ``<= l`` is nearest 1/2.  Users of classes of
    several identical users are left to the span and count branches (their rows are covered
    ``n_k`` times).
    """
    used = list(support)
    if not used:
        return None
    M = len(classes.index)
    alone = classes.size[classes.index] == 1
    x = np.array([v for _, v in used])
    length = np.zeros((len(used), M), dtype=np.int64)
    for row, (c, _) in enumerate(used):
        length[row, list(c.users)] = c.lengths
    member = (length > 0).astype(float)
    pair = (member * x[:, None]).T @ member  # w_ij
    far = np.minimum(pair, 1.0 - pair)
    far[~(alone[:, None] & alone[None, :])] = 0.0
    far[np.tril_indices(M)] = 0.0
    for pair_ruled in rules.together | rules.apart:  # (their w is 0 or 1 up to the LP's tolerances)
        far[pair_ruled] = 0.0
    fractional = far > BRANCH_TOL
    if fractional.any():
        most = np.array(classes.t.top_tokens)
        weight = most[:, None] + most[None, :] if BRANCH_WEIGHTED else 1.0
        stake = np.where(fractional, far * weight, -1.0)
        i, j = np.unravel_index(int(np.argmax(stake)), stake.shape)
        return rules.join(int(i), int(j)), rules.part(int(i), int(j))
    top = int(length.max())
    share = np.stack([((length > 0) & (length <= l)).astype(float).T @ x for l in range(1, top + 1)], axis=1)  # (M, L)
    far = np.minimum(share, 1.0 - share)
    far[~alone] = 0.0
    for ruled, lo, hi in rules.lengths:  # only a split inside the user's range makes two smaller ranges
        far[ruled, : lo - 1] = 0.0
        far[ruled, hi - 1:] = 0.0
    user, li = (int(v) for v in np.unravel_index(int(np.argmax(far)), far.shape))
    if far[user, li] > BRANCH_TOL:
        return rules.narrow(user, 1, li + 1), rules.narrow(user, li + 2, classes.t.limit(user))
    return None


def _interval_bound(k: float, mu: float, a: float, b: float, u_max: float) -> float:
    """Bound on ``G(S)/S`` for ``S`` in ``[a, b]`` from ``G(S) <= K + mu S`` (tokens/ms)."""
    if k == -math.inf:
        return 0.0
    via_duals = mu + (k / a if k >= 0 else k / b)
    return min(via_duals, u_max / a)


def _dive(master: _Master, pricer: Pricer, budget: float, low: int, high: int, clock: Deadline,
          cap: float = DIVE_MAX_S) -> list[tuple[Column, int]] | None:
    """A plan of span ``<= budget`` by diving on the column-generation LP (price-and-branch).

    Column generation to convergence, then the column with the largest fractional part is
    rounded up (``x_c >= floor(x_c) + 1``) and generation resumes (pricing now finds columns for
    the users left), until the LP is integral.  Returns ``(column, multiplicity)`` pairs; None when
    a fixing leaves no feasible completion or a limit is reached (each LP solve is a unit of work;
    one dive has at most a tenth of what is left, at most ``cap`` seconds, :data:`DIVE_MAX_S`).  The fixings are undone
    before returning, so the bounds never see them.
    """
    left = clock.work_left()  # a tenth of the time left (at most cap), or of the work left
    stop = clock.elapsed() + min(0.1 * clock.remaining(), cap) if left is None else math.inf
    most = math.inf if left is None else max(1, left // 10)
    master.set_budget(budget)
    master.set_count(low, high)
    solves = 0
    try:
        while not clock.over() and clock.elapsed() < stop and solves < most:
            d = master.solve()
            clock.spend()
            solves += 1
            if not master.optimal():  # the fixings conflict (the cover rows are equalities)
                return None
            if master.restore():
                continue
            top, cols = pricer.price(budget, d.pi, d.mu, d.nu, keep=COLUMNS_PER_ROUND, sigma=d.sigma)
            if top > RC_TOL and master.add(cols) > 0:
                continue
            x, artificial, _ = master.values()
            if artificial > INTEGRAL_TOL:
                return None
            whole = np.floor(x + INTEGRAL_TOL)
            fractional = np.flatnonzero(x - whole > INTEGRAL_TOL)
            if not len(fractional):
                return [(master.columns[i], int(round(x[i]))) for i in np.flatnonzero(x > 0.5)]
            # a column can be rounded up only while its classes have users for one more copy
            room = [i for i in fractional if whole[i] + 1 <= master.classes.most(master.columns[i])]
            if not room:
                return None
            pick = max(room, key=lambda i: (x[i] - whole[i], -i))
            master.fix(int(pick), int(whole[pick]) + 1)
        return None
    finally:
        master.release()


def _budget_ip(classes: Classes, columns: list[Column], budget: float, low: int, high: int, clock: Deadline,
               start: Plan | None = None, keep: np.ndarray | None = None, cap: float = IP_MAX_S) -> list[tuple[Column, int]] | None:
    """``G(budget)`` over the given columns as an integer program (price-and-branch).

    ``max sum U_c x_c`` with the class rows, ``sum tv_c x_c <= budget``, the count row and
    ``x`` integer in ``0..min_k floor(n_k / a_kc)`` (binary with distinct users), over columns
    with ``st_c <= budget``: any solution is a plan of span ``<= budget``.  With ``keep`` (a mask
    over ``columns``, :meth:`_Master.promising`) only those columns and the start plan's take part.
    Returns its ``(column, multiplicity)`` pairs, or None without a solution in time (limits: :func:`_new_ip`,
    at most ``cap`` seconds).
    """
    times = Counter() if start is None else _times(classes, start)
    cols = [c for i, c in enumerate(columns) if (keep is None or keep[i] or c.key in times) and fits(c.stage_ms, budget)]
    made = _column_ip(classes, cols, low, high, budget, clock, cap)
    if made is None:
        return None
    h, seconds = made
    return _run_ip(h, seconds, classes, cols, start, clock)  # the best plan as a MIP start where it fits the budget


def _times(classes: Classes, plan: Plan) -> Counter:
    """How often each canonical column is in ``plan``."""
    return Counter(classes.canonical(c).key for c in columns_of(classes.t, plan))


def _column_ip(classes: Classes, cols: list[Column], low: int, high: int, total: float, clock: Deadline,
               cap: float = IP_MAX_S, most_nodes: int = IP_MAX_NODES) -> tuple[highspy.Highs, float] | None:
    """The IP both plan-search IPs start from, and its seconds (None when no limit or no column is left):
    variables ``x_c`` integer in ``0..min_k floor(n_k / a_kc)`` (cost ``-U_c``), the class rows
    ``sum_c a_kc x_c = n_k`` (rows ``0..K-1``), ``sum tv_c x_c <= total`` (row ``K``) and the count row
    ``low..high`` (row ``K + 1``); limits as :func:`_new_ip`."""
    made = _new_ip(clock, cap, most_nodes)
    if made is None or not cols:
        return None
    h, seconds = made
    K, C = len(classes), len(cols)
    sizes = [float(n) for n in classes.size]
    h.addRows(K + 2, np.array(sizes + [-_INF, float(low)]), np.array(sizes + [float(total), float(high)]), 0,
              np.zeros(K + 2, dtype=np.int32), np.array([], dtype=np.int32), np.array([]))
    starts, index, value = _entries(cols, classes)
    most = np.array([float(classes.most(c)) for c in cols])
    h.addCols(C, np.array([-c.tokens for c in cols]), np.zeros(C), most, len(index), starts, index, value)
    h.changeColsIntegrality(C, np.arange(C, dtype=np.int32), np.full(C, highspy.HighsVarType.kInteger))
    return h, seconds


def _new_ip(clock: Deadline, cap: float = IP_MAX_S, most_nodes: int = IP_MAX_NODES) -> tuple[highspy.Highs, float] | None:
    """An empty HiGHS model for one IP of the plan search and its seconds, or None when no time or work is left.

    Limits: a tenth of the time left, at most ``cap`` seconds (:data:`IP_MAX_S`); under a work limit, a
    tenth of the work left in branch-and-bound nodes (at most ``most_nodes``, :data:`IP_MAX_NODES`;
    :func:`_run_ip` spends the nodes used) and the rest of the wall-clock time."""
    left = clock.work_left()
    if left is None:
        seconds, nodes = min(0.1 * clock.remaining(), cap), None
        if seconds <= 0.05:
            return None
    else:
        seconds, nodes = clock.remaining(), max(1, min(most_nodes, left // 10))
        if seconds <= 0 or left <= 0:
            return None
    h = _new_highs()
    h.setOptionValue("mip_rel_gap", IP_REL_GAP)
    if nodes is not None:
        h.setOptionValue("mip_max_nodes", nodes)
    return h, seconds


def _run_ip(h: highspy.Highs, seconds: float, classes: Classes, cols: list[Column], start: Plan | None,
            clock: Deadline) -> list[tuple[Column, int]] | None:
    """Solve an IP whose first ``len(cols)`` variables are the columns' multiplicities, with ``start``'s
    columns as a MIP start where they are all among ``cols``; its ``(column, multiplicity)`` pairs, or None."""
    if start is not None:
        times = _times(classes, start)
        chosen = [(i, times[c.key]) for i, c in enumerate(cols) if c.key in times]
        if sum(n for _, n in chosen) == start.num_batches:  # (HiGHS completes any other variables)
            h.setSolution(len(chosen), np.array([i for i, _ in chosen], dtype=np.int32), np.array([float(n) for _, n in chosen]))
    run_for(h, seconds)
    clock.spend(max(1, int(h.getInfo().mip_node_count)))
    if h.getInfo().primal_solution_status != _FEASIBLE_SOLUTION:
        return None
    x = np.array(h.getSolution().col_value)
    return [(cols[i], int(round(x[i]))) for i in range(len(cols)) if x[i] > 0.5]


def _moves(t: Tables, plan: Plan) -> list[Column]:
    """The batches one user move away from ``plan``'s: each batch with one more user (at its length in
    ``plan``) or one fewer, where the memory cap allows.  In a rebatching sub-problem they let the IP
    combine moves of several users at once (a plan one move away from a better one is always repaired)."""
    out = []
    for batch in plan.batches:
        for m in range(t.num_users):
            members = sorted(set(batch) ^ {m})
            if members and len(members) <= t.room[max(t.level_of[i] for i in members)]:
                out.append(make_column(t, members, [plan.lengths[i] for i in members]))
    return out


def _rebatch_ip(classes: Classes, columns: list[Column], q: float, kept_tv: float, kept_stage: float, span: float,
                low: int, high: int, clock: Deadline, start: Plan) -> list[tuple[Column, int]] | None:
    """Dinkelbach's problem at ``q`` for the users of a rebatching neighbourhood (:meth:`_Search._rebatch`), exact
    over the given columns: ``max sum U_c x_c - q S`` with the class rows, the count row, ``S >= T + sum tv_c x_c``
    (``T = kept_tv``, the kept batches' verification), ``S >= st_c`` for every column used (through a binary
    ``z_c >= x_c / most_c``, or ``x_c`` itself where a column can be used once), ``kept_stage <= S <= span``
    and columns with ``st_c <= span``: ``S`` is then the whole plan's span.  ``start`` (the chosen batches)
    is the MIP start.  Limits as :func:`_new_ip`, at most :data:`REBATCH_IP_MAX_S` seconds
    (:data:`REBATCH_IP_MAX_NODES` nodes under a work limit).  Returns ``(column, multiplicity)`` pairs, or None."""
    cols = [c for c in columns if fits(c.stage_ms, span)]
    made = _column_ip(classes, cols, low, high, -kept_tv, clock, REBATCH_IP_MAX_S, REBATCH_IP_MAX_NODES)  # sum row: - S below
    if made is None:
        return None
    h, seconds = made
    K, C = len(classes), len(cols)
    # one stage row per column (st_c z_c - S <= 0) and one link row (x_c - most_c z_c <= 0) per column that can
    # be used more than once (z_c binary); z_c is x_c itself where a column can be used once
    most = np.array([float(classes.most(c)) for c in cols])
    multi = np.flatnonzero(most > 1)
    extra = C + len(multi)
    h.addRows(extra, np.full(extra, -_INF), np.zeros(extra), 0, np.zeros(extra, dtype=np.int32), np.array([], dtype=np.int32),
              np.array([]))
    s_rows = np.array([K] + list(range(K + 2, K + 2 + C)), dtype=np.int32)  # S: -1 in the sum row and every stage row
    h.addCol(float(q), float(kept_stage), float(span), len(s_rows), s_rows, np.full(len(s_rows), -1.0))
    for i in np.flatnonzero(most <= 1):
        h.changeCoeff(int(K + 2 + i), int(i), float(cols[i].stage_ms))
    for r, i in enumerate(multi):
        link = K + 2 + C + r
        h.addCol(0.0, 0.0, 1.0, 2, np.array([K + 2 + i, link], dtype=np.int32), np.array([cols[i].stage_ms, -most[i]]))
        h.changeCoeff(int(link), int(i), 1.0)
    if len(multi):
        h.changeColsIntegrality(len(multi), np.arange(C + 1, C + 1 + len(multi), dtype=np.int32),
                                np.full(len(multi), highspy.HighsVarType.kInteger))
    return _run_ip(h, seconds, classes, cols, start, clock)


def solve_certify(scenario: Scenario, *, time_limit: float = 60.0, start_plan: Plan | None = None,
                  work_limit: int | None = None) -> SolveResult:
    """The best plan found and a certified upper bound on the optimum (module docstring).

    ``start_plan`` (for example DiP-SD's) is the first incumbent and its batches seed the
    column pool, so the result is never worse than it.  ``work_limit`` (optional): a limit in
    work units, one master LP solve with its pricing round or one node of a budget IP (rebatching's
    sub-problems included); every
    decision that depends on the share of the limit used then reads the work count, so that the
    same input and limits give the same result on any machine (status ``work_limit`` when it
    stops the search; the time limit stays a wall-clock cap, status ``time_limit``).
    """
    search = _Search(scenario, time_limit, work_limit)
    if start_plan is not None and _valid(scenario, start_plan):
        search.offer(start_plan)
    search.offer(simple_plan(scenario))
    search.improve(START_SHARE, START_MAX_S)
    search.run()
    return search.result()


class _Search:
    """certify's search over span boxes (module docstring), in named steps.

    State: the best plan (``best``), the heap of open boxes (``boxes``: (-bound, serial, box)),
    the column master and its bounder, the clock.  Invariant: every plan's ratio is at most
    ``max(box bounds, best ratio)``, because the boxes cover every span a better plan can have.
    """

    def __init__(self, scenario: Scenario, time_limit: float, work_limit: int | None = None):
        self.scenario, self.time_limit = scenario, time_limit
        self.clock = Deadline(time_limit, work_limit)
        self.t = t = Tables.of(scenario)
        self.pricer = Pricer(t)
        self.classes = Classes(t)
        self.master = _Master(scenario, t, self.classes, self.clock)
        self.u_max = sum(t.top_tokens)
        # no plan has fewer batches than the memory packing needs (milp.py proves the packing minimal)
        packed = greedy_batches(scenario)
        self.n_low = max(scenario.min_batches, len(packed)) if packed is not None else scenario.max_batches + 1
        self.s_min = t.span_lower_bound(min(self.n_low, scenario.max_batches))
        # the largest span any plan can have (every batch padded to the longest length and prefix)
        self.s_all = scenario.num_users * (t.beta_ms + t.seq(t.max_length, len(t.levels) - 1)) + max(r[-1] for r in t.ready)
        self.bounder = _Bounder(scenario, t, self.master, self.pricer, self.clock)
        self.best: Evaluation | None = None
        self.boxes: list[tuple[float, float, int, _Box]] = []
        self.serial = self.splits = self.branches = self.plan_rounds = self.stale = 0
        self.tried: set[tuple] = set()
        self.finished = False
        self.cut_short = False  # the plan search stopped at the limit's reserve (RESERVE)

    # ---------------------------------------------------------------- plans
    def offer(self, plan: Plan | None) -> bool:
        """Take ``plan`` if feasible (its batches join the column pool); whether it is the new best."""
        return plan is not None and self.take(evaluate(self.scenario, plan))

    def take(self, ev: Evaluation) -> bool:
        """:meth:`offer` for a plan already evaluated in closed form (by :func:`evaluate`, as the local
        searches return theirs)."""
        if not ev.feasible:
            return False
        self.master.add(columns_of(self.t, ev.plan))
        if self.best is None or ev.ratio > self.best.ratio * (1 + IMPROVE_RTOL):
            self.best = ev
            return True
        return False

    def improve(self, fraction: float = IMPROVE_SHARE, cap: float = IMPROVE_MAX_S) -> None:
        """Local search from the best plan, offering what it finds: DiP-SD's exact l-step, swaps of two
        users between batches (:func:`~dipsd.solvers.polish.exchange`) and moves and length changes
        (:func:`~dipsd.solvers.polish.polish`), in turn while a round of them improves the plan, and where
        a round does not, rebatching (:meth:`rebatch`), again while that improves it; within ``fraction``
        of the time left (at most ``cap`` seconds).  The l-step goes first: it is what
        improved a new plan before the swaps came, and a swap first can lead to a worse local optimum
        (heterogeneous M = 50 seed 3: 183.809 tok/s against 183.929)."""
        from .steps import l_step

        clock = self.clock.share(fraction, cap=cap)
        done: set[frozenset] = set()
        while self.best is not None and not clock.expired():
            before = self.best.ratio
            self.take(l_step(self.scenario, self.t, self.best, clock))
            self.take(exchange(self.scenario, self.best, clock=clock))
            self.take(polish(self.scenario, self.best, clock=clock))
            if self.best.ratio <= before * (1 + IMPROVE_RTOL) and not self.rebatch(clock, done):
                break

    def rebatch(self, clock: Deadline, done: set[frozenset]) -> bool:
        """Large-neighbourhood search: the users of two batches of the best plan (:data:`REBATCH_SIZES`) are
        batched again, the other batches kept (:meth:`_rebatch`), first improvement, until no pair improves
        or ``clock`` (or the work limit) runs out; whether the best plan improved.  A neighbourhood of
        every batch is left to the plan search (it is the whole problem, and its IP ran into
        :data:`REBATCH_IP_MAX_S` at M = 16 with two batches).  ``done`` holds the neighbourhoods (their
        batches with lengths) tried without success."""
        improved = False
        size = 0
        while self.best is not None and size < len(REBATCH_SIZES):
            plan = self.best.plan
            if REBATCH_SIZES[size] >= plan.num_batches:  # the whole plan: the plan search's own problem
                size += 1
                continue
            keys = [tuple((m, plan.lengths[m]) for m in batch) for batch in plan.batches]
            for chosen in itertools.combinations(range(plan.num_batches), REBATCH_SIZES[size]):
                key = frozenset(keys[n] for n in chosen)
                if key in done:
                    continue
                if clock.expired() or self.clock.over():
                    return improved
                if self._rebatch(chosen, clock):
                    improved = True
                    size = 0  # a new plan: its pairs first
                    break
                done.add(key)
            else:
                size += 1
        return improved

    def _rebatch(self, chosen: tuple[int, ...], clock: Deadline) -> bool:
        r"""Batch the users of the best plan's batches ``chosen`` again, the others kept; whether that
        found a better plan.

        With ``q`` the best ratio, ``S*`` its span and ``T`` the verification time of the kept batches,
        the sub-problem over the chosen users ``F`` is Dinkelbach's at ``q``: ``max sum_c U_c x_c - q S``
        over batches of ``F`` that cover ``F`` exactly, ``S`` the whole plan's span (at least ``T + sum
        tv_c x_c``, every batch's stage) and at most ``S*``, with the batch count that keeps ``N`` in
        ``N_min..N_max`` (the chosen batches are a solution; a better one raises ``U - q S`` of the
        whole plan above 0).  Solved by column
        generation on a small master of its own (the pool's columns over ``F``, the chosen batches
        and their one-move neighbours, :func:`_moves`, to start; exact pricing over ``F``; the LP
        counts the span as the verification sum, ``S >= T + sum tv_c x_c``), then, if the LP
        promises more than the chosen batches give, an integer program over its columns with the
        true span (:func:`_rebatch_ip`, the chosen batches as its start); where the span of its
        answer is a rebatched batch's stage, again below that stage (:data:`REBATCH_BUDGETS`).
        Each plan is evaluated in closed form and taken only if its ratio is better.  A heuristic:
        nothing here touches the bound.
        """
        best, scenario = self.best, self.scenario
        assert best is not None
        plan = best.plan
        users = sorted(m for n in chosen for m in plan.batches[n])
        kept = [batch for n, batch in enumerate(plan.batches) if n not in chosen]
        columns = columns_of(self.t, plan)
        q, span = best.ratio, best.span_ms
        kept_tv = sum(c.verify_ms for n, c in enumerate(columns) if n not in chosen)
        kept_stage = max([c.stage_ms for n, c in enumerate(columns) if n not in chosen], default=0.0)
        low = max(1, scenario.min_batches - len(kept))
        high = min(len(users), scenario.max_batches - len(kept))
        sub = scenario.with_(users=tuple(scenario.users[m] for m in users), min_batches=low, max_batches=high)
        t = Tables.of(sub)
        classes, pricer = Classes(t), Pricer(t)
        where = {m: i for i, m in enumerate(users)}
        start = Plan(tuple(tuple(where[m] for m in plan.batches[n]) for n in chosen), tuple(plan.lengths[m] for m in users))
        current = sum(c.tokens for c in columns_of(t, start)) - q * span  # sum U - q S of the chosen batches
        master = _Master(sub, t, classes, clock)
        master.add(columns_of(t, start))
        master.add(_moves(t, start))
        inside = np.zeros(scenario.num_users, dtype=bool)
        inside[users] = True
        master.add(make_column(t, [where[m] for m in c.users], c.lengths) for c in self.master.within(inside))
        master.set_count(low, high)
        ip_clock = self.clock if self.clock.work is not None else clock
        better, budget = False, span
        for _ in range(REBATCH_BUDGETS):
            if budget < kept_stage or budget <= kept_tv:
                break
            master.set_budget(budget - kept_tv, span_from=0.0, price=q, stage=budget)
            for _ in range(REBATCH_ROUNDS):
                if clock.expired() or self.clock.over():
                    return better
                d = master.solve()
                self.clock.spend()
                if not master.optimal():
                    return better
                top, cols = pricer.price(budget, d.pi, d.mu, d.nu, keep=COLUMNS_PER_ROUND, sigma=d.sigma)
                if top <= RC_TOL or master.add(cols) == 0:
                    break
            if master.value() - q * kept_tv <= current + IMPROVE_RTOL * q * span:
                break  # the LP promises no better sub-plan (an IP is at most its LP, a lower budget's LP at most this)
            picked = _rebatch_ip(classes, master.columns, q, kept_tv, kept_stage, budget, low, high, ip_clock, start)
            if not picked:
                break
            again = classes.realize(picked)
            lengths = list(plan.lengths)
            for i, m in enumerate(users):
                lengths[m] = again.lengths[i]
            batches = kept + [tuple(users[i] for i in batch) for batch in again.batches]
            ev = evaluate(scenario, Plan(tuple(batches), tuple(lengths)))
            better |= self.take(ev)
            stage = max(c.stage_ms for c, _ in picked)
            if not ev.feasible or ev.span_ms > stage * (1 + STAGE_RTOL) or stage <= kept_stage:
                break  # the span is not set by a rebatched batch's stage: a lower budget cannot help
            budget = stage * (1 - REBATCH_STEP)  # a span below that stage: columns of shorter stages
        if better:
            log.debug("%s: rebatching batches %s: %.6g tok/s", scenario.name, chosen, 1000 * self.r_best())
        return better

    def found(self, plan: Plan) -> bool:
        """Offer a plan of the plan search and, if it is feasible, the plan that swaps and moves reach from
        it (closed form, :func:`~dipsd.solvers.polish.exchange` and :func:`~dipsd.solvers.polish.polish`);
        whether either is the new best."""
        ev = evaluate(self.scenario, plan)
        better = self.take(ev)
        if ev.feasible:
            clock = self.clock.share(IMPROVE_SHARE, cap=IMPROVE_MAX_S)
            better |= self.take(polish(self.scenario, exchange(self.scenario, ev, clock=clock), clock=clock))
        return better

    def r_best(self) -> float:
        return self.best.ratio if self.best is not None else 0.0

    def s_high(self) -> float:
        """No plan with a larger span beats the best plan: ``U <= U_max``."""
        return min(self.s_all, self.u_max / self.best.ratio) if self.best is not None else self.s_all

    # ---------------------------------------------------------------- boxes
    def push(self, a: float, b: float, low: int, high: int, lp: _Lp, rules: Rules = NO_RULES, cap: float = math.inf) -> None:
        """Queue a box; ``cap`` is its parent's bound (the box's plans are among the parent's)."""
        a = max(a, self.t.span_lower_bound(low))  # N >= low batches: S >= low beta_v + ...
        if a >= b or a >= self.s_high():
            return  # no plan has a span in here, or none there beats the best plan
        own = _interval_bound(lp.k, lp.mu, a, b, self.u_max)
        box = _Box(a, b, low, high, lp, min(cap, own), rules, own)
        self.serial += 1
        # worst first; among boxes capped at one parent's bound, the worst by its own duals (breadth-first
        # over all of them would refine every box at the cap before any gets below it)
        heapq.heappush(self.boxes, (-box.bound, -own, self.serial, box))

    def open_box(self, a: float, b: float, low: int, high: int, rules: Rules = NO_RULES, rtol: float = LP_RTOL,
                 cap: float = math.inf) -> None:
        """Column generation at ``b`` for the box; an integral LP solution is a plan, offered."""
        a = max(a, self.t.span_lower_bound(low))
        if a < min(b, self.s_high()):
            lp = self.bounder.at(b, low, high, a, self.r_best(), rules, rtol)
            if lp.integral():
                chosen = [(c, int(round(x))) for c, x in lp.support if round(x) >= 1]
                if self.classes.covers(chosen):  # a partition (as it must be: checked, not assumed)
                    self.offer(self.classes.realize(chosen))
            self.push(a, b, low, high, lp, rules, cap)

    def refine(self, branching: bool = False, until: float = math.inf) -> bool:
        """Refine the worst box until it is proven, cannot be refined, or time is up; False on time-out.

        A box whose LP uses a fractional number of batches ``n`` is branched on the count
        (``N <= floor(n)`` or ``N >= floor(n) + 1``).  Otherwise, where most of the box's excess
        over the best plan is the ratio of the LP's own solution (not the width of its span range)
        and the LP is fractional, it is branched on a user pair or a length (:func:`_branch`:
        branch-and-price; without ``branching`` the refinement stops there unless the box is wider
        than :data:`WIDE`); otherwise it is priced again at today's best ratio if that has improved
        since, else its span range is halved; a box too narrow to halve whose column generation
        stopped early (:data:`LP_RTOL`) is bounded again to convergence.
        """
        while self.boxes:
            box = self.boxes[0][-1]
            if box.bound <= self.r_best() * (1 + OPTIMAL_RTOL):
                return True
            children = self.children(box, branching)
            if children is None:
                return True
            if self.clock.over():
                return False
            if self.clock.progress() >= until:
                return True  # paused: the rest of the limit is for other steps
            heapq.heappop(self.boxes)
            kind, kids = children
            if kind is _Step.SPLIT:
                mid = math.sqrt(box.a * box.b)
                self.open_box(box.a, mid, box.low, box.high, box.rules, cap=box.bound)
                if box.lp.span >= mid or not math.isfinite(box.lp.span):  # same columns, and the LP's optimum is in there
                    self.push(mid, box.b, box.low, box.high, box.lp, box.rules, box.bound)
                else:
                    self.open_box(mid, box.b, box.low, box.high, box.rules, cap=box.bound)
            for low, high, rules, rtol in kids:
                self.open_box(box.a, box.b, low, high, rules, rtol, box.bound)
            if kind is _Step.BRANCH:
                self.branches += 1
            elif kind is not _Step.TIGHTEN:
                self.splits += 1
        return True

    def children(self, box: _Box, branching: bool = True) -> tuple[_Step, list[tuple[int, int, Rules, float]]] | None:
        """How to refine a box (:meth:`refine`) and its children over the same span range as
        ``(low, high, rules, rtol)``; None when nothing is left to do (without ``branching``: by
        count, span and tightening)."""
        if box.fractional_count():
            cut = math.floor(box.lp.n)
            return _Step.COUNT, [(box.low, cut, box.rules, LP_RTOL), (cut + 1, box.high, box.rules, LP_RTOL)]
        lp, best = box.lp, self.r_best()
        excess = box.lp_ratio() - best * (1 + 0.5 * OPTIMAL_RTOL)  # the LP's own solution beats the best plan
        if excess > 0 and excess >= BRANCH_RATIO * (box.bound - box.lp_ratio()):
            rules = _branch(lp.support, box.rules, self.classes)
            if rules is not None:  # only a branch cuts that solution off (it lies in the box, whatever its width)
                if branching:
                    return _Step.BRANCH, [(box.low, box.high, r, LP_RTOL) for r in rules]
                if box.b / box.a - 1 < WIDE:
                    return None  # left to branch-and-price (a wider box is halved first: WIDE)
        if lp.q < best / (1 + OPTIMAL_RTOL):  # the span was priced below today's best ratio: price it again
            return _Step.TIGHTEN, [(box.low, box.high, box.rules, lp.rtol)]
        if box.b / box.a - 1 >= MIN_WIDTH:
            return _Step.SPLIT, []
        if lp.rtol > 0 and lp.slack > 0.1 * OPTIMAL_RTOL * abs(lp.value):
            return _Step.TIGHTEN, [(box.low, box.high, box.rules, 0.0)]
        return None

    def open(self) -> bool:
        """Whether the worst open box still promises more than the best plan."""
        return bool(self.boxes) and self.boxes[0][-1].bound > self.r_best() * (1 + OPTIMAL_RTOL)

    # ---------------------------------------------------------------- the search
    def run(self) -> None:
        """The bound by count and span (until a box only a branch can lower is the worst), one round
        of plan search if the gap is above :data:`EARLY_PLANS_GAP`, branch-and-price until
        :data:`BRANCH_SHARE` of the limit, rounds of price-and-branch plan search (refining the
        boxes after each) while rounds improve or the plan search is young, then branch-and-price
        for the rest.  After a round that found no better plan, branch-and-price gets as much of
        the limit as the round took before the next (measured at 120 s, beside a second process:
        heterogeneous M = 30 seed 0 0.0861 to 0.0752 %, M = 50 seeds 0 / 2 0.386 / 0.382 to 0.361 /
        0.341 %: at M = 50 a round takes 20-30 s and finds nothing, the tree lowers the bound).  These
        rounds keep to :data:`ROUND_SHARE` of the limit each; the early round, which finds the plans of
        instances whose first bound is far off, does not."""
        if self.n_low <= self.scenario.max_batches:
            self.open_box(self.s_min, self.s_high(), self.n_low, self.scenario.max_batches)
        self.finished = self.refine()
        self.milestone(0)  # round 0: the column-generation bound and the start plan
        if self.finished and self.open() and self.gap() > EARLY_PLANS_GAP:  # plans first: a better q for the tree
            self.plan_round()
            self.finished = self.refine() and not self.clock.over()
        if self.finished and self.open():  # branch-and-price first, for a share of the limit
            self.finished = self.refine(branching=True, until=BRANCH_SHARE) and not self.clock.over()
            self.milestone(0)
        started = self.clock.progress()
        while self.finished and self.open() and (self.stale < STALE_ROUNDS
                                                 or self.clock.progress() - started < PLAN_SHARE):
            before = self.clock.progress()
            if not self.plan_round(ROUND_SHARE):
                break
            self.finished = self.refine() and not self.clock.over()
            if self.stale and self.finished and self.open():  # a round in vain: as much again for the tree
                took = self.clock.progress() - before
                self.finished = self.refine(branching=True, until=self.clock.progress() + took) and not self.clock.over()
            self.milestone(self.plan_rounds)
        if self.finished and self.open():  # branch-and-price on what the plan search left open
            self.finished = self.refine(branching=True) and not self.clock.over()
            self.milestone(self.plan_rounds)

    def budgets(self) -> list[tuple]:
        """The (span, N range) points to search at: where the LP promises most, and around the best plan
        (its span a little wider, its number of batches)."""
        points = self.bounder.points
        ranked = sorted(points, key=lambda p: -points[p] / p[0])
        chosen = [p for p in ranked if p not in self.tried][:3]
        if self.best is not None:
            n = self.best.plan.num_batches
            near = [(self.best.span_ms, self.n_low, self.scenario.max_batches)]
            near += [(self.best.span_ms * f, n, n) for f in NEIGHBOURHOOD]
            chosen += [p for p in near if p not in self.tried][:2]
        return chosen

    def plan_round(self, share: float = math.inf) -> bool:
        """One round of price-and-branch (a dive and a budget IP per point); False when no point is
        left or the limit's reserve (:data:`RESERVE`) is reached before the first.  Under a time limit
        the round's dives and IPs take at most ``share`` of the limit (:data:`ROUND_SHARE`), each an even
        part of what the round has left; the points it has no time for stay untried."""
        budgets = self.budgets()
        if not budgets:
            return False
        improved = False
        timed = self.clock.work is None and math.isfinite(share)  # (inf times a limit of 0 would be nan)
        end = self.clock.elapsed() + share * self.clock.limit if timed else math.inf
        for number, point in enumerate(budgets):
            if self.clock.progress() > 1 - RESERVE:
                self.cut_short = True  # the limit, not the search, ended the plan search
                if number == 0:
                    return False  # nothing tried: the rest of the limit is for the bound and the result
                break
            part = (end - self.clock.elapsed()) / (2 * (len(budgets) - number))  # a dive's, an IP's
            if part <= 0:
                break
            self.tried.add(point)
            budget, low, high = point
            dived = _dive(self.master, self.pricer, budget, low, high, self.clock, min(part, DIVE_MAX_S))
            if dived:
                improved |= self.found(self.classes.realize(dived))
            keep = self.master.promising(budget, low, high, self.r_best() * budget)
            self.clock.spend()
            log.debug("%s: budget IP at %.6g over %d promising of %d columns", self.scenario.name, budget, int(keep.sum()),
                      len(self.master.columns))
            part = (end - self.clock.elapsed()) / (2 * (len(budgets) - number) - 1)
            picked = _budget_ip(self.classes, self.master.columns, budget, low, high, self.clock,
                                start=None if self.best is None else self.best.plan, keep=keep,
                                cap=max(0.0, min(part, IP_MAX_S)))
            if picked:
                improved |= self.found(self.classes.realize(picked))
        self.plan_rounds += 1
        self.stale = 0 if improved else self.stale + 1
        if improved and self.best is not None:
            self.improve()
            self.boxes[:] = [entry for entry in self.boxes if entry[-1].a < self.s_high()]
            heapq.heapify(self.boxes)
        return True

    def bound_now(self) -> float:
        """The bound on ``R*`` so far, tokens/ms: ``max(worst open box, R_best)`` (the heap's top is the worst)."""
        return max(([self.boxes[0][-1].bound] if self.boxes else []) + [self.r_best()])

    def gap(self) -> float:
        """The certified gap so far (relative): ``1 - R_best / bound_now``."""
        bound_now = self.bound_now()
        return max(0.0, 1 - self.r_best() / bound_now) if bound_now > 0 else 0.0

    def milestone(self, rounds: int) -> None:
        """One INFO line per round (``dipsd -v``): plan, bound, certified gap so far."""
        log.info("%s: certify round %d: plan %.6g tok/s, bound %.6g tok/s, gap <= %.3g %% (%.1fs)", self.scenario.name,
                 rounds, 1000 * self.r_best(), 1000 * self.bound_now(), 100 * self.gap(), self.clock.elapsed())

    # ---------------------------------------------------------------- the answer
    def result(self) -> SolveResult:
        """The best plan and the certified bound ``max(box bounds, best ratio)`` raised by SAFETY."""
        name, best = self.scenario.name, self.best
        for *_, box in heapq.nsmallest(3, self.boxes):
            log.debug("%s: open box S in [%.6g, %.6g] N in %d..%d: bound %.6g tok/s (LP batches %.3f), plan %.6g",
                      name, box.a, box.b, box.low, box.high, 1000 * box.bound, box.lp.n, 1000 * self.r_best())
        stopped = not self.finished or self.bounder.timed_out or self.cut_short
        bound_ratio = self.bound_now()
        upper = 1000.0 * bound_ratio * (1 + SAFETY)
        runtime = self.clock.elapsed()
        lp_solves = self.bounder.lp_solves
        note = (f"{plural(lp_solves, 'LP solve')}, {plural(len(self.master.columns), 'column')}, "
                f"{plural(self.splits, 'interval split')}, {plural(self.branches, 'branch', 'branches')}, "
                f"{plural(self.plan_rounds, 'plan round')}")
        if self.clock.work is not None:
            note += f", {self.clock.used} of {plural(self.clock.work, 'work unit')}"
        # a limit stopped it: the work limit where there is one and the wall clock did not run out too
        limit = Status.WORK_LIMIT if self.clock.work is not None and not self.clock.expired() else Status.TIME_LIMIT
        if best is None:
            if bound_ratio <= 0:
                return SolveResult(name, "certify", Status.INFEASIBLE, None, None, None, runtime, iterations=lp_solves,
                                   message="proven: no plan meets the memory cap within the batch range")
            status = Status.NO_PLAN if stopped else Status.FEASIBLE
            return SolveResult(name, "certify", status, None, None, upper, runtime, iterations=lp_solves,
                               message="no plan found; " + note)
        upper = max(upper, best.throughput_tps)
        if best.throughput_tps >= upper / (1 + OPTIMAL_RTOL + SAFETY):
            status = Status.OPTIMAL
        else:
            status = limit if stopped else Status.FEASIBLE
        gap = 100.0 * (upper - best.throughput_tps) / upper
        return SolveResult(name, "certify", status, best.plan, best, upper, runtime, iterations=lp_solves,
                           message=f"certified gap {gap:.4f}%; {note}")


def _valid(scenario: Scenario, plan: Plan) -> bool:
    try:
        plan.validate(scenario)
    except Exception:  # a start plan from elsewhere that does not fit this scenario is ignored
        return False
    return True
