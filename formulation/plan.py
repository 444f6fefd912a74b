"""A plan of problem P: batches in verification order and one draft length per user."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..data.scenario import Scenario
from ..errors import PlanError


@dataclass(frozen=True)
class Plan:
    """``batches[n]`` lists user indices (into ``scenario.users``) of the n-th batch verified;
    ``lengths[m]`` is user m's draft length ``l_m``."""

    batches: tuple[tuple[int, ...], ...]
    lengths: tuple[int, ...]

    @property
    def num_batches(self) -> int:
        return len(self.batches)

    def validate(self, scenario: Scenario) -> None:
        """Raise :class:`PlanError` unless every user is in exactly one non-empty batch with a length in 1..its limit
        (the user's own ``max_draft_length``, else L_ub)."""
        m = scenario.num_users
        if len(self.lengths) != m:
            raise PlanError(f"plan has {len(self.lengths)} draft lengths for {m} users")
        seen: list[int] = []
        for n, batch in enumerate(self.batches):
            if not batch:
                raise PlanError(f"batch {n + 1} is empty")
            odd = [i for i in batch if isinstance(i, bool) or not isinstance(i, int)]
            if odd:
                raise PlanError(f"batch {n + 1} holds {odd[0]!r}, not a user index (a whole number)")
            seen.extend(batch)
        if sorted(seen) != list(range(m)):
            missing = sorted(set(range(m)) - set(seen))
            twice = sorted({i for i in seen if seen.count(i) > 1})
            raise PlanError(f"plan is not a partition of the users (missing {missing}, repeated {twice})")
        for i, l in enumerate(self.lengths):
            if not (isinstance(l, int) and not isinstance(l, bool) and 1 <= l <= scenario.limits[i]):
                raise PlanError(f"user {scenario.users[i].name!r}: draft length {l!r} outside 1..{scenario.limits[i]}")

    def named(self, scenario: Scenario) -> tuple[list[list[str]], dict[str, int]]:
        """Batches as lists of user names and lengths as a name -> length dict."""
        names = [u.name for u in scenario.users]
        return [[names[i] for i in b] for b in self.batches], {names[i]: l for i, l in enumerate(self.lengths)}

    @classmethod
    def from_names(cls, scenario: Scenario, batches: Sequence[Sequence[str]], lengths: Mapping[str, int]) -> Plan:
        index = {u.name: i for i, u in enumerate(scenario.users)}
        try:
            b = tuple(tuple(index[n] for n in batch) for batch in batches)
            l = tuple(int(lengths[u.name]) for u in scenario.users)
        except KeyError as exc:
            raise PlanError(f"unknown or missing user {exc.args[0]!r}") from None
        plan = cls(b, l)
        plan.validate(scenario)
        return plan
