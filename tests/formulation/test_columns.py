"""Columns under branching rules: which batches a node allows, and exact pricing there (brute-force oracle)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from dipsd import paper_scenario
from dipsd.data.generate import generate
from dipsd.formulation.columns import NO_RULES, Pricer, Rules, make_column
from dipsd.formulation.tables import Tables


def test_rules_by_hand():
    t = Tables.of(paper_scenario(5, max_draft_length=4))
    rules = NO_RULES.join(3, 1).part(0, 2).narrow(4, 2, 4).narrow(4, 1, 3)
    assert rules.together == {(1, 3)} and rules.apart == {(0, 2)} and rules.lengths == ((4, 2, 3),)
    assert rules and rules.pairs and not NO_RULES and not Rules(lengths=((0, 1, 2),)).pairs
    batches = {
        ((1, 3), (2, 2)): True,  # together, both in
        ((1,), (2,)): False,  # 3 missing
        ((0, 2), (1, 1)): False,  # apart pair in one batch
        ((0, 4), (1, 3)): True,
        ((0, 4), (1, 4)): False,  # user 4 above its range
        ((2, 4), (1, 1)): False,  # below it
        ((0,), (4,)): True,
    }
    columns = [make_column(t, users, lengths) for users, lengths in batches]
    assert [rules.allows(c) for c in columns] == list(batches.values())
    length = np.zeros((len(columns), 5), dtype=np.int16)
    for row, c in enumerate(columns):
        length[row, list(c.users)] = c.lengths
    assert rules.mask(length > 0, length).tolist() == list(batches.values())


def brute_best(s, t: Tables, budget: float, pi, mu: float, nu: float, sigma, rules: Rules, tokens: bool = True) -> float:
    """The best reduced cost over every memory-feasible batch and lengths the rules allow, by enumeration
    (without ``tokens``: every batch's tokens taken as 0, phase 1)."""
    best = -math.inf
    for size in range(1, s.num_users + 1):
        for members in itertools.combinations(range(s.num_users), size):
            if not s.memory_ok(size, max(s.users[m].prefix_len for m in members)):
                continue
            for lengths in itertools.product(range(1, s.max_draft_length + 1), repeat=size):
                if any(l > t.limit(m) for m, l in zip(members, lengths)):
                    continue
                col = make_column(t, members, lengths)
                if col.stage_ms <= budget and rules.allows(col):
                    level = max(t.level_of[m] for m in members)
                    gain = col.tokens if tokens else 0.0
                    best = max(best, gain - sum(pi[m] for m in members) - mu * col.verify_ms - nu + sum(sigma[1:level + 1]))
    return best


def random_rules(rng, m: int, lub: int) -> Rules:
    rules = NO_RULES
    for _ in range(int(rng.integers(1, 5))):
        i, k = sorted(int(v) for v in rng.choice(m, 2, replace=False))
        kind = int(rng.integers(3))
        if kind == 0 and (i, k) not in rules.apart:
            rules = rules.join(i, k)
        elif kind == 1 and (i, k) not in rules.together:
            rules = rules.part(i, k)
        else:
            cut = int(rng.integers(1, lub + 1))
            rules = rules.narrow(i, 1, cut) if rng.random() < 0.5 else rules.narrow(i, cut, lub)
    return rules


def check_pricing(rng, users: tuple[int, int], lengths: tuple[int, int], rounds: int, with_rules: bool) -> None:
    """Random scenario, budgets and duals: the best reduced cost is the enumerated one, every column
    returned fits the budget and obeys the rules, and the first is as good as priced."""
    (s,) = generate([int(rng.integers(*users))], 1, seed=int(rng.integers(1 << 30)), max_draft_length=int(rng.integers(*lengths)))
    t = Tables.of(s)
    pricer = Pricer(t)
    lo, hi = t.span_lower_bound(1), s.num_users * (t.beta_ms + t.seq(t.max_length, len(t.levels) - 1)) + 200
    for _ in range(rounds):
        rules = random_rules(rng, s.num_users, s.max_draft_length) if with_rules else NO_RULES
        budget = float(rng.uniform(lo, hi))
        pi = rng.uniform(-1.0, 4.0, size=s.num_users)
        mu, nu = float(rng.uniform(0.0, 0.05)), float(rng.uniform(-2.0, 2.0))
        sigma = np.concatenate([[0.0], rng.uniform(0.0, 1.5, size=len(t.levels) - 1)])
        got, columns = pricer.price(budget, pi, mu, nu, keep=5, sigma=sigma, rules=rules)
        want = brute_best(s, t, budget, pi, mu, nu, sigma, rules)
        if want == -math.inf:
            assert got == -math.inf
            continue
        assert got == pytest.approx(want, abs=1e-9), rules
        assert all(rules.allows(c) and c.stage_ms <= budget * (1 + 1e-9) for c in columns)
        first = columns[0]
        level = max(t.level_of[m] for m in first.users)
        assert first.tokens - pi[list(first.users)].sum() - mu * first.verify_ms - nu + sigma[1:level + 1].sum() >= want - 1e-9


@pytest.mark.parametrize("index", range(12))
def test_pricing_equals_brute_force_pricing(index):
    check_pricing(np.random.default_rng(1000 + index), (2, 5), (2, 5), 6, with_rules=False)


@pytest.mark.parametrize("index", range(6))
def test_phase_one_pricing_equals_brute_force(index):
    """Pricing with every batch's tokens taken as 0 (certify's phase 1), with and without rules."""
    rng = np.random.default_rng(7000 + index)
    (s,) = generate([int(rng.integers(3, 6))], 1, seed=int(rng.integers(1 << 30)), max_draft_length=3)
    t = Tables.of(s)
    lo, hi = t.span_lower_bound(1), s.num_users * (t.beta_ms + t.seq(t.max_length, len(t.levels) - 1)) + 200
    for _ in range(4):
        rules = random_rules(rng, s.num_users, s.max_draft_length) if rng.random() < 0.7 else NO_RULES
        budget = float(rng.uniform(lo, hi))
        pi = rng.uniform(-1.0, 1.0, size=s.num_users)
        mu, nu = float(rng.uniform(0.0, 0.01)), float(rng.uniform(-1.0, 1.0))
        sigma = np.concatenate([[0.0], rng.uniform(0.0, 0.5, size=len(t.levels) - 1)])
        got, columns = Pricer(t).price(budget, pi, mu, nu, keep=5, sigma=sigma, rules=rules, tokens=False)
        want = brute_best(s, t, budget, pi, mu, nu, sigma, rules, tokens=False)
        assert got == pytest.approx(want, abs=1e-9) if want > -math.inf else got == -math.inf
        if columns:
            first = columns[0]
            level = max(t.level_of[m] for m in first.users)
            assert -pi[list(first.users)].sum() - mu * first.verify_ms - nu + sigma[1:level + 1].sum() >= want - 1e-9


@pytest.mark.parametrize("index", range(16))
def test_pricing_under_rules_equals_brute_force(index):
    """Together / apart pairs (the grouped dynamic program) and length ranges."""
    check_pricing(np.random.default_rng(5000 + index), (3, 6), (2, 4), 5, with_rules=True)


def test_pricing_with_a_chain_of_apart_pairs_is_exact():
    """A component of several apart pairs (its independent sets enumerated) on one paper-like instance."""
    s = generate([6], 1, seed=7, max_draft_length=3)[0]
    t = Tables.of(s)
    rules = NO_RULES.part(0, 1).part(1, 2).part(2, 3).part(3, 4).join(4, 5)
    rng = np.random.default_rng(1)
    budget = 0.5 * (t.span_lower_bound(1) + s.num_users * (t.beta_ms + t.seq(t.max_length, len(t.levels) - 1)))
    for _ in range(4):
        pi = rng.uniform(-2.0, 3.0, size=s.num_users)
        sigma = np.zeros(len(t.levels))
        got, columns = Pricer(t).price(budget, pi, 0.01, 0.5, keep=3, sigma=sigma, rules=rules)
        assert got == pytest.approx(brute_best(s, t, budget, pi, 0.01, 0.5, sigma, rules), abs=1e-9)
        assert all(rules.allows(c) for c in columns)


def many_apart(rng, m: int) -> Rules:
    """Random rules with many apart pairs (components of many independent sets) and a together pair or two."""
    rules = NO_RULES
    pairs = [(i, k) for i in range(m) for k in range(i + 1, m)]
    for index in rng.permutation(len(pairs))[: int(rng.integers(m - 1, 2 * m))]:
        i, k = pairs[int(index)]
        if (i, k) not in rules.together:
            rules = rules.part(i, k)
    for _ in range(int(rng.integers(0, 3))):
        i, k = sorted(int(v) for v in rng.choice(m, 2, replace=False))
        if (i, k) not in rules.apart:
            rules = rules.join(i, k)
    return rules


@pytest.mark.parametrize("most_sets", [1, 2, 3, 5])
def test_pricing_splits_a_component_too_large_to_enumerate(monkeypatch, most_sets):
    """Above MOST_SETS independent sets a component is split at a group (recursively): pricing stays
    exact (brute force) and its first column is as good as priced (the trace through the splits)."""
    from dipsd.formulation import columns

    monkeypatch.setattr(columns, "MOST_SETS", most_sets)
    rng = np.random.default_rng(40 + most_sets)
    for _ in range(5):
        (s,) = generate([int(rng.integers(4, 7))], 1, seed=int(rng.integers(1 << 30)), max_draft_length=int(rng.integers(1, 3)))
        t = Tables.of(s)
        budget = s.num_users * (t.beta_ms + t.seq(t.max_length, len(t.levels) - 1))
        rules = many_apart(rng, s.num_users)
        pi = rng.uniform(-2.0, 3.0, size=s.num_users)
        mu, nu = float(rng.uniform(0.0, 0.02)), float(rng.uniform(-1.0, 1.0))
        sigma = np.concatenate([[0.0], rng.uniform(0.0, 0.5, size=len(t.levels) - 1)])
        got, found = Pricer(t).price(budget, pi, mu, nu, keep=5, sigma=sigma, rules=rules)
        want = brute_best(s, t, budget, pi, mu, nu, sigma, rules)
        assert got == pytest.approx(want, abs=1e-9), rules
        assert found and all(rules.allows(c) for c in found)
        first = found[0]
        level = max(t.level_of[m] for m in first.users)
        assert first.tokens - pi[list(first.users)].sum() - mu * first.verify_ms - nu + sigma[1:level + 1].sum() >= want - 1e-9


def test_pricing_under_a_star_of_apart_pairs_is_exact():
    """One user apart from eleven others: 2,049 independent sets, more than MOST_SETS, so the component
    is split at its centre (seen in certify's tree at heterogeneous M = 20 seed 4, where ignoring the
    pairs left boxes that no column could lower); brute force over every batch of 12 users (L_ub 1)."""
    from dipsd.formulation import columns

    s = generate([12], 1, seed=3, max_draft_length=1)[0]
    t = Tables.of(s)
    rules = NO_RULES
    for k in range(1, 12):
        rules = rules.part(0, k)
    assert 2 ** 11 + 1 > columns.MOST_SETS + 1
    budget = s.num_users * (t.beta_ms + t.seq(t.max_length, len(t.levels) - 1))
    rng = np.random.default_rng(5)
    for _ in range(3):
        pi = rng.uniform(-1.0, 2.0, size=s.num_users)
        pi[0] = -3.0  # the centre is worth taking: the best batch holds it and none of the others
        sigma = np.zeros(len(t.levels))
        got, found = Pricer(t).price(budget, pi, 0.001, 0.0, keep=5, sigma=sigma, rules=rules)
        assert got == pytest.approx(brute_best(s, t, budget, pi, 0.001, 0.0, sigma, rules), abs=1e-9)
        assert all(rules.allows(c) for c in found)


def test_pricing_relaxes_a_component_too_large_to_split(monkeypatch):
    """Above MOST_SETS independent sets and MOST_PASSES passes a component's apart pairs are dropped:
    pricing may over-estimate (the bound stays valid) but never under-estimates, and no column it
    returns breaks a rule."""
    from dipsd.formulation import columns

    monkeypatch.setattr(columns, "MOST_SETS", 2)
    monkeypatch.setattr(columns, "MOST_PASSES", 3)
    s = generate([6], 1, seed=7, max_draft_length=3)[0]
    t = Tables.of(s)
    rules = NO_RULES.part(0, 1).part(1, 2).part(2, 3)
    budget = s.num_users * (t.beta_ms + t.seq(t.max_length, len(t.levels) - 1))
    rng = np.random.default_rng(2)
    over = 0
    for _ in range(6):
        pi = rng.uniform(-2.0, 3.0, size=s.num_users)
        sigma = np.zeros(len(t.levels))
        got, found = Pricer(t).price(budget, pi, 0.0, 0.0, keep=5, sigma=sigma, rules=rules)
        want = brute_best(s, t, budget, pi, 0.0, 0.0, sigma, rules)
        assert got >= want - 1e-9 and all(rules.allows(c) for c in found)
        over += got > want + 1e-9
    assert over, "the relaxation was never looser: the test does not reach it"


def test_pricing_under_a_long_path_of_apart_pairs_splits_it_exactly(monkeypatch):
    """A path of 29 apart pairs over 30 users (832,040 independent sets): split at middles, never
    relaxed, and the same best reduced cost and first column as when every component is split down
    to single groups (MOST_SETS 1): two decompositions of one exact knapsack."""
    from dipsd.formulation import columns

    s = generate([30], 1, seed=4, max_draft_length=3)[0]
    t = Tables.of(s)
    rules = NO_RULES
    for m in range(29):
        rules = rules.part(m, m + 1)
    budget = s.num_users * (t.beta_ms + t.seq(t.max_length, len(t.levels) - 1))
    rng = np.random.default_rng(8)
    pi = rng.uniform(-1.0, 2.0, size=s.num_users)
    sigma = np.zeros(len(t.levels))
    monkeypatch.setattr(columns, "MOST_PASSES", 10 ** 9)  # no relaxation, whatever the split takes
    got, found = Pricer(t).price(budget, pi, 0.001, 0.0, keep=3, sigma=sigma, rules=rules)
    monkeypatch.setattr(columns, "MOST_SETS", 1)
    again, found_again = Pricer(t).price(budget, pi, 0.001, 0.0, keep=3, sigma=sigma, rules=rules)
    assert got == pytest.approx(again, abs=1e-9) and found[0].key == found_again[0].key
    assert all(rules.allows(c) for c in found + found_again)
    count = [0]
    columns._parts(list(range(30)), {g: {h for h in (g - 1, g + 1) if 0 <= h < 30} for g in range(30)},
                   [[m] for m in range(30)], count)
    assert count[0] < 400  # middles: a few hundred passes (next to an end it would be thousands)


@pytest.mark.parametrize("seed", [pytest.param(s, marks=pytest.mark.slow if s in (3, 5) else ()) for s in range(6)])
def test_free_users_join_the_knapsack_at_once_exactly(seed):
    """Under pair rules the users in no rule (:meth:`Pricer.parts`' free users) are added by sorting:
    with every user of the top level bound by a rule (so no free user can supply the level's user)
    and with the rules elsewhere, the best reduced cost is the enumerated one in both phases."""
    rng = np.random.default_rng(4200 + seed)
    (s,) = generate([6], 1, seed=int(rng.integers(1 << 30)), max_draft_length=3)
    t = Tables.of(s)
    top = max(t.level_of)
    tops = [m for m in range(s.num_users) if t.level_of[m] == top]
    others = [m for m in range(s.num_users) if t.level_of[m] != top]
    lo, hi = t.span_lower_bound(1), s.num_users * (t.beta_ms + t.seq(t.max_length, len(t.levels) - 1)) + 200
    pricer = Pricer(t)
    for bound in (tops, others):
        if len(bound) < 2:
            continue
        for _ in range(4):
            i, k = sorted(int(v) for v in rng.choice(bound, 2, replace=False))
            rules = NO_RULES.join(i, k) if rng.random() < 0.5 else NO_RULES.part(i, k)
            free = pricer.parts(rules, top)[1]
            assert len(free) == len(pricer.eligible[top]) - 2  # everyone but the pair
            budget = float(rng.uniform(lo, hi))
            pi = rng.uniform(-1.0, 4.0, size=s.num_users)
            mu, nu = float(rng.uniform(0.0, 0.05)), float(rng.uniform(-2.0, 2.0))
            sigma = np.concatenate([[0.0], rng.uniform(0.0, 1.5, size=len(t.levels) - 1)])
            for tokens in (True, False):
                got, columns = pricer.price(budget, pi, mu, nu, keep=5, sigma=sigma, rules=rules, tokens=tokens)
                want = brute_best(s, t, budget, pi, mu, nu, sigma, rules, tokens=tokens)
                assert got == pytest.approx(want, abs=1e-9) if want > -math.inf else got == -math.inf
                for c in columns[:1]:
                    level = max(t.level_of[m] for m in c.users)
                    rc = (c.tokens if tokens else 0.0) - pi[list(c.users)].sum() - mu * c.verify_ms - nu
                    assert rc + sigma[1:level + 1].sum() == pytest.approx(got, abs=1e-9)
