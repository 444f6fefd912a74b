"""The study's answer as a picture: ``REPORT-gaps.png`` (matplotlib), written beside the report.

Left: each heuristic's gap to optimal by number of users, on its own axis (symmetric-log, so
sub-1 % gaps stay visible next to large ones): where the optimum is proven, the mean gap as a
line and the worst as a hollow marker; where it is open, a bar up to the worst certified gap
(the true gap is at most its top).  Right: every method's throughput as a share of the best
plan any method found, by number of users (baselines included).  Heuristics are the methods
that return plans and never a bound; methods that prove bounds are the reference.  A run stopped
at its time or work limit (:func:`~dipsd.reports.stats.stopped`) is drawn in neither panel: the
legend counts it beside its method ("3 stopped at a limit, not drawn").
"""

from __future__ import annotations

import os
import statistics
import tempfile
from typing import Any

from ..solvers.results import Record
from .stats import gap, references, stopped
from .stats import heuristics as judged


def gap_figure(path: str, records: list[Record], num_users: dict[str, int], methods: list[str]) -> None:
    """Draw the figure to ``path`` (replaced atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    refs = references(records)
    proves = {r.method for r in records if r.upper_bound_tps is not None}
    heuristics = judged(records, methods)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    sizes = sorted({num_users[r.scenario] for r in records if r.scenario in num_users})
    width = 0.8 / max(1, len(heuristics))
    for i, method in enumerate(heuristics):
        colour = f"C{i}"
        proven, certified = _gaps_by_size(records, method, refs, num_users)
        cut = sum(1 for r in records if r.method == method and stopped(r))
        note = f" ({cut} stopped at a limit, not drawn)" if cut else ""
        xs = sorted(proven)
        if xs:
            left.plot(xs, [statistics.fmean(proven[x]) for x in xs], marker=markers[i % len(markers)], color=colour,
                      label=f"{method}: mean gap (proven){note}")
            left.plot(xs, [max(proven[x]) for x in xs], linestyle="none", marker=markers[i % len(markers)],
                      fillstyle="none", markersize=9, color=colour, label=f"{method}: worst gap (proven)")
        if certified:
            cx = sorted(certified)
            left.bar([x + (i - (len(heuristics) - 1) / 2) * width for x in cx], [max(certified[x]) for x in cx],
                     width=width, color=colour, alpha=0.35, edgecolor=colour,
                     label=f"{method}: at most (certified, optimum open){'' if xs else note}")
        if cut and not xs and not certified:
            left.plot([], [], linestyle="none", marker=markers[i % len(markers)], color=colour, label=f"{method}:{note}")
    left.set_yscale("symlog", linthresh=0.01)
    left.set_ylim(bottom=0)
    if not _frame(left, "How far from optimal (heuristics)", "gap to optimal, %", MaxNLocator):
        left.text(0.5, 0.5, "no heuristic with a plan in this study", ha="center", transform=left.transAxes)
    for i, method in enumerate(methods):
        shares: dict[int, list[float]] = {}
        for r in records:
            ref = refs.get(r.scenario)
            if (r.method == method and r.throughput_tps and ref is not None and ref.best and r.scenario in num_users
                    and not stopped(r)):
                shares.setdefault(num_users[r.scenario], []).append(100.0 * r.throughput_tps / ref.best)
        cut = sum(1 for r in records if r.method == method and stopped(r))
        label = method + (f" ({cut} stopped at a limit, not drawn)" if cut else "")
        xs = sorted(shares)
        if xs or cut:
            right.plot(xs, [statistics.fmean(shares[x]) for x in xs], marker=markers[i % len(markers)],
                       linestyle="-" if method in heuristics or method in proves else "--", label=label)
    _frame(right, "Throughput as % of the best plan found (mean)", "% of the best plan", MaxNLocator)
    if sizes:
        for ax in (left, right):
            ax.set_xlim(min(sizes) - 0.6, max(sizes) + 0.6)
    fig.tight_layout()
    try:
        _save(fig, path)
    finally:
        plt.close(fig)


def _gaps_by_size(records: list[Record], method: str, refs: dict, num_users: dict[str, int]
                  ) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
    """A method's gaps % per number of users: proven ones, and certified ones where the optimum is open."""
    proven: dict[int, list[float]] = {}
    certified: dict[int, list[float]] = {}
    for r in records:
        if r.method != method or r.throughput_tps is None or r.scenario not in num_users or stopped(r):
            continue
        g = gap(r, refs.get(r.scenario))
        if g.proven is not None:
            proven.setdefault(num_users[r.scenario], []).append(max(g.proven, 0.0))
        elif g.certified is not None:
            certified.setdefault(num_users[r.scenario], []).append(max(g.certified, 0.0))
    return proven, certified


def _save(fig: Any, path: str) -> None:
    """Write the figure as PNG to ``path``, atomically (a temporary file beside it, then a rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".dipsd-", suffix=".png", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, dpi=120, format="png")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _frame(ax: Any, title: str, ylabel: str, locator: Any) -> bool:
    """Title, axis labels, integer user ticks, grid and a legend if anything is labelled (whether one is)."""
    ax.set_title(title)
    ax.set_xlabel("users M")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(locator(integer=True))
    ax.grid(alpha=0.3)
    labelled = bool(ax.get_legend_handles_labels()[0])
    if labelled:
        ax.legend(fontsize=7)
    return labelled


def gaps_png(report: str) -> str:
    """The figure's path for a report: ``REPORT-gaps.png`` beside ``REPORT.xlsx``."""
    return os.path.splitext(report)[0] + "-gaps.png"
