"""Small helpers for the text dipsd shows to people."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 scenario"``, ``"2 scenarios"`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
