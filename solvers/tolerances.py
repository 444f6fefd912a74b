"""Every numerical tolerance dipsd's solvers use, named once, with the reason for its value.

The contract (docs/model.md, "What the numbers promise"): a result with status ``optimal`` is
within a relative :data:`OPTIMAL_RTOL` of the true optimum; every reported upper bound is at
least the true optimum; every plan's throughput is its closed-form value.

How HiGHS's tolerances are accounted for.  HiGHS solves each MILP in floating point with
absolute tolerances: a node whose LP bound is within ``mip_feasibility_tolerance`` of the
incumbent is pruned, integrality and rows hold to that tolerance, reduced costs to the dual
feasibility tolerance.  So HiGHS's dual bound ``F_ub`` of ``F(q) = max U - q S`` may fall short
of the true ``F(q)`` by an absolute amount of the order of those tolerances *in the units of
the objective it sees*.  dipsd therefore (1) hands HiGHS the objective multiplied by
``W = OBJECTIVE_SCALE / (q S_min)`` (formulation.milp's mutable ``scale``), so that an
objective error of ``e`` in HiGHS's units is a ratio error of ``e q / OBJECTIVE_SCALE``,
i.e. relative ``e / OBJECTIVE_SCALE``; (2) runs HiGHS with the tightened
:data:`HIGHS_OPTIONS`; and (3) adds :data:`HIGHS_SLACK`, a thousand times the tightened
tolerances, to every dual bound before turning it into a certificate.  With these values a
dual bound costs a relative ``HIGHS_SLACK / OBJECTIVE_SCALE = 1e-10`` of margin, a tenth of
:data:`OPTIMAL_RTOL`, so ``optimal`` stays reachable; and nothing is claimed on HiGHS's word
that the closed form has not re-checked (every plan is re-evaluated; see solvers.milp.session).
"""

from __future__ import annotations

import sys

OPTIMAL_RTOL = 1e-9
"""``optimal`` promises a plan within this relative distance of the true optimum."""

IMPROVE_RTOL = 1e-12
"""A plan must beat another by this relative margin to replace it (ties keep the incumbent)."""

AGREE_RTOL = 1e-6
"""Largest relative disagreement tolerated between a MILP's objective and the closed form of its
decoded plan before the solve is repeated (a mishandled MIP start) or called a modelling bug."""

OBJECTIVE_SCALE = 1e4
"""HiGHS sees ``W (U - q S)`` with ``W = OBJECTIVE_SCALE / (q S_min)``: at the optimum the
objective's terms are of the order of ``OBJECTIVE_SCALE`` (U = q S and S >= S_min)."""

HIGHS_FEASIBILITY = 1e-9
"""``mip_feasibility_tolerance``, ``primal_feasibility_tolerance`` and
``dual_feasibility_tolerance`` given to HiGHS (defaults 1e-6, 1e-7, 1e-7)."""

HIGHS_SLACK = 1e-6
"""Absolute error, in HiGHS's (scaled) objective units, allowed for on every dual bound it
reports: a thousand times :data:`HIGHS_FEASIBILITY`."""

HIGHS_OPTIONS: dict[str, float] = {
    "mip_feasibility_tolerance": HIGHS_FEASIBILITY,
    "primal_feasibility_tolerance": HIGHS_FEASIBILITY,
    "dual_feasibility_tolerance": HIGHS_FEASIBILITY,
}
"""HiGHS options every MILP solve sets (besides gap 0, the time limit and one thread)."""

COUNT_RTOL = 1e-12
COUNT_ATOL = 1e-9
"""A count of members that fit a slack (the x-step search's capacity bound) is rounded up by these
(relative, then absolute) before it is floored: an undercount would prune a feasible partition, an
overcount only prunes less."""

MEETS_RTOL = 1e-9
"""An incumbent within this relative distance below a certified bound meets it (optimal)."""

_ULPS = 8 * sys.float_info.epsilon


def outward(bound: float) -> float:
    """``bound`` rounded up by a few units in the last place: a bound computed in floating point
    from quantities the closed form computes in another order must not fall below the closed
    form's value of the same plan by a rounding error."""
    return bound * (1.0 + _ULPS) if bound > 0 else bound
