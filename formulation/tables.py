"""Well-scaled numbers for the optimization models (docs/model.md section 6).

FLOP counts reach 1e12 while the latency slopes are about 1e-11 ms/FLOP, and HiGHS drops
matrix coefficients below 1e-9.  Every latency is therefore computed here, in ms, in
Python floats, from the scenario's own section-3 formulas; solvers only ever see these
tables (tokens, ms, batch sizes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..data.scenario import Scenario


@dataclass(frozen=True)
class Tables:
    """Per-user and per-batch coefficients in tokens and ms.

    ``tokens[m][k-1] = u_m(k)``; ``ready[m][k-1] = tau_d_m(k) + tau_c_m``;
    ``levels`` are the distinct prefix lengths, ascending; ``level_of[m]`` indexes
    user m's prefix in ``levels``; ``seq_ms[k-1][j] = c_v * F_v(k, levels[j])`` is the
    verification time of one sequence padded to (k, levels[j]); ``room[j]`` is the largest
    memory-feasible batch whose longest prefix is ``levels[j]``.
    """

    num_users: int
    max_length: int
    tokens: tuple[tuple[float, ...], ...]
    ready: tuple[tuple[float, ...], ...]
    levels: tuple[int, ...]
    level_of: tuple[int, ...]
    seq_ms: tuple[tuple[float, ...], ...]
    beta_ms: float
    room: tuple[int, ...]
    classes: tuple[tuple[int, ...], ...]
    limits: tuple[int, ...] = ()
    """Each user's longest allowed length (``Scenario.limits``).  Above it, ``tokens`` repeat the
    value at the limit and ``ready`` follows the formula (finite numbers for the models'
    coefficients); every model forbids those lengths (the MILPs fix their indicators to 0, the
    pricer treats them as never ready)."""

    def limit(self, m: int) -> int:
        return self.limits[m] if self.limits else self.max_length

    @property
    def top_tokens(self) -> tuple[float, ...]:
        """Each user's most expected tokens over its lengths, ``max_l u_m(l)`` (their sum bounds any
        batching's tokens)."""
        return tuple(max(row) for row in self.tokens)

    @classmethod
    def of(cls, scenario: Scenario) -> Tables:
        users, t = scenario.users, scenario.target
        lub = scenario.max_draft_length
        levels = tuple(sorted({u.prefix_len for u in users}))
        index = {p: j for j, p in enumerate(levels)}
        groups: dict[tuple, list[int]] = {}
        limits = scenario.limits
        for m, u in enumerate(users):
            key = (u.alpha, u.prefix_len, u.comm_latency_ms, u.draft, u.acceptance, limits[m])
            groups.setdefault(key, []).append(m)
        return cls(
            num_users=len(users),
            max_length=lub,
            tokens=tuple(tuple(u.expected_tokens(min(k, limits[m])) for k in range(1, lub + 1)) for m, u in enumerate(users)),
            ready=tuple(tuple(u.ready_ms(k) for k in range(1, lub + 1)) for u in users),
            levels=levels,
            level_of=tuple(index[u.prefix_len] for u in users),
            seq_ms=tuple(tuple(t.c_ms_per_flop * t.flops(k, p) for p in levels) for k in range(1, lub + 1)),
            beta_ms=t.beta_ms,
            room=tuple(scenario.max_batch_size(p) for p in levels),
            classes=tuple(tuple(g) for g in groups.values()),
            limits=limits,
        )

    def in_units(self, unit_ms: float) -> Tables:
        """The same tables with every time divided by ``unit_ms`` (ready, sequence and
        ``beta_v`` coefficients in units of ``unit_ms``): the MILP builders measure time in a
        unit of the order of the span so that no coefficient is tiny or huge next to S
        (HiGHS drops matrix coefficients below 1e-9; see formulation.milp, "Units")."""
        return replace(
            self,
            ready=tuple(tuple(r / unit_ms for r in row) for row in self.ready),
            seq_ms=tuple(tuple(v / unit_ms for v in row) for row in self.seq_ms),
            beta_ms=self.beta_ms / unit_ms,
        )

    def class_of(self) -> dict[int, int]:
        """User index -> index of its class in :attr:`classes`."""
        return {m: c for c, members in enumerate(self.classes) for m in members}

    def seq(self, length: int, level: int) -> float:
        """``c_v * F_v(length, levels[level])`` in ms."""
        return self.seq_ms[length - 1][level]

    def increment(self, k: int, j: int) -> float:
        """Mixed difference ``D[k, j]`` of ``f(k, j) = seq(k, j)`` with ``f(0, .) = f(., -1) = 0``.

        ``sum_{k' <= L, j' <= J} D[k', j'] = f(L, J)``; every ``D`` is >= 0 because F_v is
        increasing in L and its mixed difference is ``4 J_v h1_v (I_j - I_{j-1}) > 0``.
        """
        f = lambda kk, jj: 0.0 if kk < 1 or jj < 0 else self.seq(kk, jj)  # noqa: E731
        return f(k, j) - f(k - 1, j) - f(k, j - 1) + f(k - 1, j - 1)

    def fewest_batches(self, level: int) -> int:
        """The fewest memory-feasible batches that can hold every user of level ``>= level``: every
        plan has at least this many batches whose longest prefix is ``>= levels[level]`` (0 when such a
        user fits no batch: then no plan exists and 0 is vacuous).

        Greedy packing, longest prefix first, each batch up to the room of its first user's prefix,
        is minimal.  Proof: let ``p_1 >= p_2 >= ...`` be the users' prefixes and greedy's batches
        start at users ``s_1 = 1 < s_2 < ... < s_n`` (each full but the last: ``s_{i+1} - s_i =
        B(p_{s_i})``, with ``B`` non-increasing in the prefix).  Suppose some packing holds users
        ``1..s_k`` in ``c <= k - 1`` batches, ordered by their first (smallest) member ``f_1 < f_2 <
        ...``; a batch holding user ``f_i`` is padded to ``>= p_{f_i}`` and holds at most ``B(p_{f_i})``
        users.  By induction ``f_i <= s_i``: ``f_1 = 1``, and users ``1..f_i - 1`` sit in the first
        ``i - 1`` batches, so ``f_i - 1 <= sum_{i' < i} B(p_{f_i'}) <= sum_{i' < i} B(p_{s_i'}) = s_i - 1``.
        Then ``s_k <= sum_{i <= c} B(p_{f_i}) <= s_{c+1} - 1 <= s_k - 1``, a contradiction; with ``k = n``
        every packing has ``n`` batches.  In a plan, the users of level ``>= level`` sit in batches
        padded to ``>= levels[level]``; without the plan's other users those batches still fit
        memory, so they are a packing of those users."""
        heavy = sorted((j for j in self.level_of if j >= level), reverse=True)
        count = pos = 0
        while pos < len(heavy):
            room = self.room[heavy[pos]]
            if room < 1:
                return 0
            count, pos = count + 1, pos + room
        return count

    def span_lower_bound(self, min_batches: int, lengths: tuple[int | None, ...] | None = None) -> float:
        """A lower bound on S valid for every feasible plan with at least ``min_batches`` batches
        (and, where ``lengths[m]`` is given, user m's draft length fixed to it; else ``>= 1``).

        Every batch costs at least ``beta_v`` plus, per member, its own padded sequence
        ``f(l_m, i_m)`` (a batch pads to its longest draft and prefix, so never less); the batch
        of user m also waits at least ``ready_m(l_m)``.  With ``l_m`` the fixed length or 1 (both
        f and ready increase in l), ``S >= max(N_min beta_v + sum_m f(l_m, i_m),
        max_m ready_m(l_m) + beta_v + f(l_m, i_m))``.
        """
        given = lengths if lengths is not None else (None,) * self.num_users
        low = [1 if length is None else length for length in given]
        own = [self.seq(low[m], self.level_of[m]) for m in range(self.num_users)]
        total = min_batches * self.beta_ms + sum(own)
        stage = max(self.ready[m][low[m] - 1] + self.beta_ms + own[m] for m in range(self.num_users))
        return max(total, stage)
