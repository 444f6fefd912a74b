"""The example workbooks shipped with dipsd."""

from __future__ import annotations

from importlib import resources

EXAMPLES = ("heterogeneous.xlsx", "paper.xlsx")


def example_path(name: str = "heterogeneous.xlsx") -> str:
    """Path of a bundled example workbook (``paper.xlsx`` or ``heterogeneous.xlsx``)."""
    if name not in EXAMPLES:
        raise ValueError(f"no bundled example {name!r}; choose from {', '.join(EXAMPLES)}")
    return str(resources.files("dipsd.data").joinpath("examples", name))
