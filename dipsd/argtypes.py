"""Argument types of the command line (argparse ``type=`` callables), in one place.

Each turns a text into a value or raises :class:`argparse.ArgumentTypeError`, which the
parser reports as a usage error with exit code 2.
"""

from __future__ import annotations

import argparse
import re


def int_list(text: str) -> list[int]:
    """Comma-separated whole numbers >= 1."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected whole numbers >= 1, got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"each number once, got {text!r}")
    return values


def _positive(kind):
    """A number of ``kind`` (int or float) that must be > 0 and finite."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
        return value

    return parse


positive_int, positive_float = _positive(int), _positive(float)


def thread_count(text: str) -> int:
    """A whole number of threads from 1 to the cores this process may use (more only slows every
    solve down and can exhaust the machine's threads)."""
    from .solvers.milp.solvers import available_cores

    value = positive_int(text)
    if value > available_cores():
        raise argparse.ArgumentTypeError(f"expected 1..{available_cores()} (the cores available here), got {text[:40]!r}")
    return value


def seed(text: str) -> int:
    """A random seed: a whole number in 0 .. 2**32 - 1 (what numpy's generators take)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a whole number in 0..{2**32 - 1}, got {text[:40]!r}")
    return value

_ADDRESS = re.compile(r"^tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+):(\d{1,5})$")


def scheduler_address(text: str) -> str:
    """``local`` or ``tcp://HOST:PORT`` (port 1..65535)."""
    match = _ADDRESS.match(text.strip())
    if text.strip() == "local":
        return "local"
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise argparse.ArgumentTypeError(f"expected 'local' or tcp://HOST:PORT (port 1..65535), got {text[:80]!r}")
    return text.strip()
