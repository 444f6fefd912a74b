"""The example workbooks shipped with dipsd."""

from __future__ import annotations

from importlib import resources

EXAMPLES = ("heterogeneous.xlsx", "paper.xlsx")


def example_path(name: str = "heterogeneous") -> str:
    """Path of a bundled example workbook: ``"heterogeneous"`` or ``"paper"`` (with or without
    ``.xlsx``); another name is an :class:`~dipsd.errors.InputError` with a "did you mean"."""
    from ..errors import InputError, did_you_mean

    file = name if str(name).endswith(".xlsx") else f"{name}.xlsx"
    if file not in EXAMPLES:
        stems = [e[:-5] for e in EXAMPLES]
        raise InputError(f"no bundled example {str(name)[:60]!r}{did_you_mean(str(name).removesuffix('.xlsx'), stems)}; "
                         f"choose from {', '.join(stems)}")
    return str(resources.files("dipsd.data").joinpath("examples", file))
