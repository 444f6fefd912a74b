"""Counts in messages read as English."""

from dipsd.data.text import plural


def test_plural():
    assert plural(1, "scenario") == "1 scenario" and plural(0, "scenario") == "0 scenarios"
    assert plural(2, "batch", "batches") == "2 batches" and plural(1, "batch", "batches") == "1 batch"


def test_messages_say_one_batch_and_one_round():
    from dipsd import paper_scenario
    from dipsd.solvers.registry import run_method

    s = paper_scenario(3)
    assert run_method("ad-batch", s).message == "target-only decoding in 1 greedy batch"
    one = paper_scenario(1)
    assert run_method("dipsd-fixed", one).message.startswith("1 round over")
