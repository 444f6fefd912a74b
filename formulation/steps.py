r"""The two exact steps of DiP-SD (docs/model.md 5.2) as small MILPs.

Both reuse the notation and the linearizations of :mod:`dipsd.formulation.milp`.

x-step, :func:`build_assignment_model`: draft lengths fixed, exactly N batches; minimize
the span S.  Users with identical parameters *and* the same fixed length form groups
``g`` (size ``n_g``, length ``l_g``, prefix level ``j_g``, ready time ``r_g``); integer
``a[g,n]`` counts group g's users in batch n, binary ``e[g,n] = [a_gn >= 1]``.  With
``Z_nk >= e_gn`` for ``k <= l_g``, ``P_nj >= e_gn`` for ``j <= j_g``, the memory rows, and
``H_nkj`` (= ``b_n [L_n >= k][I_n >= P_j]``) bounded below by
``b_n - Bbar(1 - Z_nk) - Bbar(1 - P_nj)`` and by ``sum_{g: l_g >= k, j_g >= j} a_gn``, the
verification time is ``t_v_n = beta_v + sum_{k,j} D_kj H_nkj`` exactly as in the full
model; ``T_n >= r_g e_gn``; ``S >= sum_n t_v_n``, ``S >= T_n + t_v_n``.  Batches are
ordered by restricted growth over the group order (``e_gn <= sum_{g' <= g} e_g',n-1``), so
each partition appears once.  The lengths fix U, so minimizing S maximizes U/S.

l-step, :func:`build_length_model`: batches fixed (so ``b_n`` and ``I_n`` are constants);
choose lengths maximizing ``U - q S`` (Dinkelbach's subproblem, q a mutable Param).
Cumulative binaries ``G[m,k] = [l_m >= k]`` (k >= 2), ``Z_nk >= G_mk`` for members, and
``t_v_n = beta_v + b_n sum_k (f(k, I_n) - f(k-1, I_n)) Z_nk`` is linear because ``b_n`` is
a constant; ``T_n >= r_m(l_m)``; the span rows as above.
"""

from __future__ import annotations

import pyomo.environ as pyo

from .milp import _increments
from .plan import Plan
from .tables import Tables


def groups_for(tables: Tables, lengths: tuple[int, ...]) -> list[list[int]]:
    """Users with identical parameters and the same length, in order of first member."""
    out: dict[tuple[int, int], list[int]] = {}
    cls_of = {m: c for c, members in enumerate(tables.classes) for m in members}
    for m in range(tables.num_users):
        out.setdefault((cls_of[m], lengths[m]), []).append(m)
    return list(out.values())


def build_assignment_model(tables: Tables, lengths: tuple[int, ...], num_batches: int) -> pyo.ConcreteModel:
    """x-step: the memory-feasible partition into ``num_batches`` non-empty batches minimizing S."""
    t, N = tables, num_batches
    groups = groups_for(t, lengths)
    model = pyo.ConcreteModel(name="dipsd-x-step")
    model._groups = groups
    M = t.num_users
    lg = [lengths[g[0]] for g in groups]
    jg = [t.level_of[g[0]] for g in groups]
    size = [len(g) for g in groups]
    pairs, last = [], 0
    for gi, g in enumerate(groups):
        last += len(g)
        pairs += [(gi, n) for n in range(min(last, N))]
    L, J = max(lg), len(t.levels)
    bbar = max(1, min(max(t.room), M - N + 1))
    model.GN = pyo.Set(dimen=2, initialize=pairs)
    model.N = pyo.RangeSet(0, N - 1)
    model.a = pyo.Var(model.GN, domain=pyo.NonNegativeIntegers, bounds=lambda mdl, g, n: (0, size[g]))
    model.e = pyo.Var(model.GN, domain=pyo.Binary)
    model.b = pyo.Var(model.N, bounds=(1, bbar))
    model.assign = pyo.Constraint(range(len(groups)), rule=lambda mdl, g: sum(mdl.a[g, n] for n in range(N) if (g, n) in pairs) == size[g])
    model.size = pyo.Constraint(model.N, rule=lambda mdl, n: mdl.b[n] == sum(mdl.a[g, nn] for (g, nn) in pairs if nn == n))
    model.e_low = pyo.Constraint(model.GN, rule=lambda mdl, g, n: mdl.e[g, n] <= mdl.a[g, n])
    model.e_high = pyo.Constraint(model.GN, rule=lambda mdl, g, n: mdl.a[g, n] <= size[g] * mdl.e[g, n])
    model.growth = pyo.Constraint(
        [(g, n) for (g, n) in pairs if n >= 1],
        rule=lambda mdl, g, n: mdl.e[g, n] <= sum(mdl.e[gg, n - 1] for gg in range(g + 1) if (gg, n - 1) in pairs),
    )
    kz = [k for k in range(2, L + 1)]
    jp = [j for j in range(1, J)]
    model.Z = pyo.Var(model.N, kz, bounds=(0, 1))
    model.P = pyo.Var(model.N, jp, bounds=(0, 1))
    model.z_member = pyo.Constraint([(g, n, k) for (g, n) in pairs for k in kz if k <= lg[g]],
                                    rule=lambda mdl, g, n, k: mdl.Z[n, k] >= mdl.e[g, n])
    model.p_member = pyo.Constraint([(g, n, j) for (g, n) in pairs for j in jp if j <= jg[g]],
                                    rule=lambda mdl, g, n, j: mdl.P[n, j] >= mdl.e[g, n])

    def memory(mdl, n, j):
        cap = t.room[j]
        if cap >= bbar:
            return pyo.Constraint.Skip
        indicator = 1 if j == 0 else mdl.P[n, j]
        return mdl.b[n] <= cap + (bbar - cap) * (1 - indicator)

    model.memory = pyo.Constraint(model.N, range(J), rule=memory)
    cells = [(n, k, j) for n in range(N) for k in range(1, L + 1) for j in range(J) if (k, j) != (1, 0)]
    model.H = pyo.Var(cells, domain=pyo.NonNegativeReals)

    def big_m(mdl, n, k, j):
        slack = (1 - mdl.Z[n, k] if k >= 2 else 0) + (1 - mdl.P[n, j] if j >= 1 else 0)
        return mdl.H[n, k, j] >= mdl.b[n] - bbar * slack

    def members(mdl, n, k, j):
        terms = [mdl.a[g, nn] for (g, nn) in pairs if nn == n and lg[g] >= k and jg[g] >= j]
        return mdl.H[n, k, j] >= sum(terms) if terms else pyo.Constraint.Skip

    model.h_big_m = pyo.Constraint(cells, rule=big_m)
    model.h_members = pyo.Constraint(cells, rule=members)
    model.tv = pyo.Expression(model.N, rule=lambda mdl, n: t.beta_ms + t.increment(1, 0) * mdl.b[n]
                              + sum(t.increment(k, j) * mdl.H[n, k, j] for (nn, k, j) in cells if nn == n))
    model.T = pyo.Var(model.N, domain=pyo.NonNegativeReals)
    model.ready = pyo.Constraint(model.GN, rule=lambda mdl, g, n: mdl.T[n] >= t.ready[groups[g][0]][lg[g] - 1] * mdl.e[g, n])
    own = max(t.ready[g[0]][lg[i] - 1] + t.beta_ms + t.seq(lg[i], jg[i]) for i, g in enumerate(groups))
    model.S = pyo.Var(bounds=(own, None))
    model.span_total = pyo.Constraint(expr=model.S >= sum(model.tv[n] for n in model.N))
    model.span_stage = pyo.Constraint(model.N, rule=lambda mdl, n: mdl.S >= mdl.T[n] + mdl.tv[n])
    model.obj = pyo.Objective(expr=model.S, sense=pyo.minimize)
    return model


def assignment_plan(model, lengths: tuple[int, ...]) -> Plan:
    """The partition of a solved x-step model (group members handed out in index order)."""
    batches: dict[int, list[int]] = {}
    for g, members in enumerate(model._groups):
        queue = list(members)
        for n in model.N:
            if (g, n) not in model.GN:
                continue
            count = int(round(model.a[g, n].value or 0.0))
            batches.setdefault(n, []).extend(queue[:count])
            queue = queue[count:]
    return Plan(tuple(tuple(sorted(batches[n])) for n in sorted(batches) if batches[n]), tuple(lengths))


def build_length_model(tables: Tables, batches: tuple[tuple[int, ...], ...], q: float = 0.0) -> pyo.ConcreteModel:
    """l-step: lengths maximizing ``U - q S`` for fixed batches (q a mutable Param)."""
    t = tables
    L = t.max_length
    model = pyo.ConcreteModel(name="dipsd-l-step")
    model.q = pyo.Param(mutable=True, initialize=float(q), within=pyo.NonNegativeReals)
    users = [m for b in batches for m in b]
    batch_of = {m: n for n, b in enumerate(batches) for m in b}
    ks = list(range(2, L + 1))
    model.G = pyo.Var(users, ks, domain=pyo.Binary)
    model.chain = pyo.Constraint([(m, k) for m in users for k in ks if k >= 3], rule=lambda mdl, m, k: mdl.G[m, k] <= mdl.G[m, k - 1])
    model.N = pyo.RangeSet(0, len(batches) - 1)
    model.Z = pyo.Var(model.N, ks, bounds=(0, 1))
    model.z_member = pyo.Constraint([(m, k) for m in users for k in ks], rule=lambda mdl, m, k: mdl.Z[batch_of[m], k] >= mdl.G[m, k])
    level = [max(t.level_of[m] for m in b) for b in batches]

    def tv(mdl, n):
        inc = _increments([t.seq(k, level[n]) for k in range(1, L + 1)])
        return t.beta_ms + len(batches[n]) * (inc[0] + sum(inc[k - 1] * mdl.Z[n, k] for k in ks))

    model.tv = pyo.Expression(model.N, rule=tv)
    model.T = pyo.Var(model.N, domain=pyo.NonNegativeReals)
    ready = {m: _increments(t.ready[m]) for m in users}
    model.ready = pyo.Constraint(users, rule=lambda mdl, m: mdl.T[batch_of[m]] >= ready[m][0] + sum(ready[m][k - 1] * mdl.G[m, k] for k in ks))
    model.S = pyo.Var(domain=pyo.NonNegativeReals)
    model.span_total = pyo.Constraint(expr=model.S >= sum(model.tv[n] for n in model.N))
    model.span_stage = pyo.Constraint(model.N, rule=lambda mdl, n: mdl.S >= mdl.T[n] + mdl.tv[n])
    tokens = {m: _increments(t.tokens[m]) for m in users}
    model.U_expr = pyo.Expression(expr=sum(tokens[m][0] + sum(tokens[m][k - 1] * model.G[m, k] for k in ks) for m in users))
    model.obj = pyo.Objective(expr=model.U_expr - model.q * model.S, sense=pyo.maximize)
    model._users = users
    return model


def length_plan(model, batches, num_users: int) -> Plan:
    """The lengths of a solved l-step model: ``l_m = 1 + sum_k G_mk``."""
    lengths = [1] * num_users
    for (m, k) in model.G:
        if (model.G[m, k].value or 0.0) > 0.5:
            lengths[m] += 1
    return Plan(tuple(batches), tuple(lengths))
