"""Tables.fewest_batches: the greedy packing count against hand-checked values and exhaustive packing."""

from __future__ import annotations

import random
from dataclasses import replace

from dipsd import paper_scenario
from dipsd.formulation.tables import Tables


def _tables(levels_of: list[int], room: tuple[int, ...]) -> Tables:
    t = Tables.of(paper_scenario(1))
    return replace(t, num_users=len(levels_of), level_of=tuple(levels_of), room=room,
                   levels=tuple(128 * 2 ** j for j in range(len(room))))


def _fewest_by_search(levels_of: list[int], room: tuple[int, ...], level: int) -> int:
    """The fewest groups of the users of level >= ``level``, each within the room of its highest level."""
    users = [j for j in levels_of if j >= level]
    best = [len(users) + 1]

    def place(i: int, groups: list[list[int]]) -> None:
        if len(groups) >= best[0]:
            return
        if i == len(users):
            best[0] = len(groups)
            return
        for g in groups:
            if len(g) + 1 <= room[max(g + [users[i]])]:
                g.append(users[i])
                place(i + 1, groups)
                g.pop()
        place(i + 1, groups + [[users[i]]])

    if any(room[j] < 1 for j in users):
        return 0
    place(0, [])
    return best[0] if users else 0


def test_higher_prefixes_with_smaller_rooms_need_more_batches_than_the_ceiling():
    # rooms 32, 16, 8, 4, 2: 9 users at level 4 fill 5 batches of 2 (one place left for a level-3 user);
    # the other 6 of 7 level-3 users need 2 batches of 4: 7 batches padded to >= level 3, not ceil(16 / 4) = 4
    t = _tables([4] * 9 + [3] * 7 + [0] * 3, (32, 16, 8, 4, 2))
    assert [t.fewest_batches(j) for j in range(5)] == [8, 7, 7, 7, 5]
    # a user that fits no batch: no plan exists and the count is 0 (vacuous)
    assert _tables([1, 0], (2, 0)).fewest_batches(1) == 0


def test_fewest_batches_equals_exhaustive_packing():
    rng = random.Random(7)
    for _ in range(300):
        levels = rng.randint(1, 4)
        room = tuple(sorted((rng.randint(0 if rng.random() < 0.05 else 1, 5) for _ in range(levels)), reverse=True))
        levels_of = [rng.randrange(levels) for _ in range(rng.randint(1, 8))]
        t = _tables(levels_of, room)
        for j in range(levels):
            assert t.fewest_batches(j) == _fewest_by_search(levels_of, room, j), (levels_of, room, j)


def test_top_tokens_are_each_users_most_expected_tokens_within_its_limit():
    """alpha 0.5: u(l) = (1 - 0.5^(l + 1)) / 0.5, so 1.875 at l = 3 and 1.75 at a device limit of 2; alpha 1: l + 1."""
    s = paper_scenario(3)
    users = (replace(s.users[0], alpha=0.5, acceptance=None), replace(s.users[1], alpha=0.5, acceptance=None, max_draft_length=2),
             replace(s.users[2], alpha=1.0, acceptance=None))
    t = Tables.of(s.with_(users=users, max_draft_length=3))
    assert t.top_tokens == (1.875, 1.75, 4.0)
