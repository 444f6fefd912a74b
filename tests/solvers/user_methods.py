"""Heuristics "a user wrote", for the tests of user methods (dipsd.solvers.catalog): importable by
name, so that spawned and Dask workers can re-import them."""

from __future__ import annotations

from dipsd import Plan
from dipsd.formulation.evaluate import greedy_batches


def packed_at_three(scenario, time_limit, start):
    """Users dealt round-robin into as many batches as the greedy memory packing needs (at least
    min_batches), every user at draft length min(3, L_ub)."""
    n = max(scenario.min_batches, len(greedy_batches(scenario) or ()))
    batches = tuple(tuple(range(k, scenario.num_users, n)) for k in range(n))
    return Plan(batches, (min(3, scenario.max_draft_length),) * scenario.num_users)


def everyone_alone(scenario, time_limit, start):
    """Every user its own batch at length 1 (infeasible where max_batches < M)."""
    return Plan(tuple((m,) for m in range(scenario.num_users)), (1,) * scenario.num_users)


def improves_the_start(scenario, time_limit, start):
    """Returns the start's plan (it starts from DiP-SD)."""
    return None if start is None else start.plan


def crashes(scenario, time_limit, start):
    raise ZeroDivisionError("a bug in the user's heuristic")


def claims_too_much(scenario, time_limit, start):
    """A SolveResult whose throughput is not its plan's closed form."""
    from dataclasses import replace

    from dipsd import evaluate
    from dipsd.solvers.results import SolveResult, Status

    plan = packed_at_three(scenario, time_limit, start)
    ev = evaluate(scenario, plan)
    fake = replace(ev, expected_tokens=ev.expected_tokens * 2)
    return SolveResult(scenario.name, "whatever", Status.FEASIBLE, plan, fake, None, 0.0)


def with_a_bound(scenario, time_limit, start):
    """A plan plus a bound of twice its throughput (valid: above the optimum only if declared so)."""
    from dipsd import evaluate
    from dipsd.solvers.results import SolveResult, Status

    plan = packed_at_three(scenario, time_limit, start)
    ev = evaluate(scenario, plan)
    return SolveResult(scenario.name, "x", Status.FEASIBLE, plan, ev, 1e9, 0.0)


def never_answers(scenario, time_limit, start):
    """A heuristic stuck in a loop (or a worker stopped with SIGSTOP): it never returns."""
    import time

    time.sleep(10_000)


# ---------------------------------------------------------------- hostile methods (issue 37)
def claims_optimal(scenario, time_limit, start):
    """A poor plan (every user alone at length 1, or round-robin) that it calls optimal, with no bound."""
    from dipsd import evaluate
    from dipsd.solvers.results import SolveResult, Status

    plan = packed_at_three(scenario, time_limit, start)
    return SolveResult(scenario.name, "x", Status.OPTIMAL, plan, evaluate(scenario, plan), None, 0.0)


def claims_infeasible(scenario, time_limit, start):
    from dipsd.solvers.results import SolveResult, Status

    return SolveResult(scenario.name, "x", Status.INFEASIBLE, None, None, None, 0.0)


def dies(scenario, time_limit, start):
    """A worker killed under the method (the out-of-memory killer): the process ends at once."""
    import os

    os._exit(1)


def exits(scenario, time_limit, start):
    import sys

    sys.exit(0)


def interrupts(scenario, time_limit, start):
    raise KeyboardInterrupt


def prints(scenario, time_limit, start):
    print("debug output of a heuristic")
    return packed_at_three(scenario, time_limit, start)


def mutates(scenario, time_limit, start):
    """Raises the memory cap of the frozen scenario it is given, then puts all users but one in one batch."""
    object.__setattr__(scenario, "memory_cap_bytes", 1e15)
    m = scenario.num_users
    return Plan((tuple(range(m - 1)), (m - 1,)), (1,) * m)


def garbage(kind):
    """A method returning a result with one malformed field: NaN runtime, iterations 2.0, True as a length."""
    def run(scenario, time_limit, start):
        import dataclasses

        from dipsd import evaluate
        from dipsd.solvers.results import SolveResult, Status

        plan = packed_at_three(scenario, time_limit, start)
        result = SolveResult(scenario.name, "x", Status.FEASIBLE, plan, evaluate(scenario, plan), None, 0.0)
        if kind == "runtime":
            return dataclasses.replace(result, runtime_s=float("nan"))
        if kind == "iterations":
            return dataclasses.replace(result, iterations=2.0)
        return dataclasses.replace(result, plan=Plan(plan.batches, (True,) + plan.lengths[1:]))
    return run
