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
from typing import Any

from ..solvers.results import Record
from .stats import gap, references, stopped
from .stats import heuristics as judged


def gap_figure(path: str, records: list[Record], num_users: dict[str, int], methods: list[str]) -> None:
    """Draw the figure to ``path`` (replaced atomically, with the user's usual file permissions).

    One colour and marker per method in both panels; x ticks at exactly the numbers of users run;
    the gap axis linear up to 1 % and logarithmic above (a 0.2 % gap is not drawn as a cliff next
    to 0, and a 40 % one still fits); legends below the axes, so they never cover a point; the
    methods the left panel leaves out are named under it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    refs = references(records)
    proves = {r.method for r in records if r.upper_bound_tps is not None}
    heuristics = judged(records, methods)
    style = {m: (f"C{i % 10}", MARKERS[i % len(MARKERS)]) for i, m in enumerate(methods)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2))
    sizes = sorted({num_users[r.scenario] for r in records if r.scenario in num_users})
    width = 0.8 / max(1, len(heuristics))
    cuts = {m: sum(1 for r in records if r.method == m and stopped(r)) for m in methods}  # left out of both panels
    for i, method in enumerate(heuristics):
        colour, marker = style[method]
        proven, certified = _gaps_by_size(records, method, refs, num_users)
        cut = cuts.get(method, 0)
        note = f" ({cut} stopped at a limit, not drawn)" if cut else ""
        xs = sorted(proven)
        if xs:
            left.plot(xs, [statistics.fmean(proven[x]) for x in xs], marker=marker, color=colour,
                      label=f"{method}: mean gap (proven){note}")
            left.plot(xs, [max(proven[x]) for x in xs], linestyle="none", marker=marker,
                      fillstyle="none", markersize=9, color=colour, label=f"{method}: worst gap (proven)")
        if certified:
            cx = sorted(certified)
            left.bar([x + (i - (len(heuristics) - 1) / 2) * width for x in cx], [max(certified[x]) for x in cx],
                     width=width, color=colour, alpha=0.35, edgecolor=colour,
                     label=f"{method}: at most (certified, optimum open){'' if xs else note}")
        if cut and not xs and not certified:
            left.plot([], [], linestyle="none", marker=marker, color=colour, label=f"{method}:{note}")
    left.set_yscale("symlog", linthresh=1.0, linscale=1.0)
    left.set_ylim(bottom=0)
    if not _frame(left, "How far from optimal (heuristics)", "gap to optimal, % (linear to 1 %, log above)", sizes):
        left.text(0.5, 0.5, "no heuristic with a plan in this study", ha="center", transform=left.transAxes)
    apart = [m for m in methods if m not in heuristics]
    if apart:
        left.annotate("not in this panel: " + ", ".join(apart) + " (they prove bounds, or give no plan of P)",
                      xy=(0, 0), xycoords="figure fraction", xytext=(8, 4), textcoords="offset points", fontsize=7,
                      color="0.35")
    for method in methods:
        colour, marker = style[method]
        shares: dict[int, list[float]] = {}
        for r in records:
            ref = refs.get(r.scenario)
            if (r.method == method and r.throughput_tps and ref is not None and ref.best and r.scenario in num_users
                    and not stopped(r)):
                shares.setdefault(num_users[r.scenario], []).append(100.0 * r.throughput_tps / ref.best)
        cut = cuts[method]
        label = method + (f" ({cut} stopped at a limit, not drawn)" if cut else "")
        xs = sorted(shares)
        if xs or cut:
            right.plot(xs, [statistics.fmean(shares[x]) for x in xs], marker=marker, color=colour,
                       linestyle="-" if method in heuristics or method in proves else "--", label=label)
    _frame(right, "Throughput as % of the best plan found (mean)", "% of the best plan", sizes)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    try:
        _save(fig, path)
    finally:
        plt.close(fig)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


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
    """Write the figure as PNG to ``path``, atomically and with the usual permissions
    (:func:`~dipsd.outputs.atomic_write`, as the report)."""
    from ..outputs import atomic_write

    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, dpi=120, format="png")


def _frame(ax: Any, title: str, ylabel: str, sizes: list[int]) -> bool:
    """Title, axis labels, ticks at exactly the numbers of users run (at most about 12 labelled), grid,
    and a legend below the axes if anything is labelled (whether one is)."""
    ax.set_title(title)
    ax.set_xlabel("users M")
    ax.set_ylabel(ylabel)
    if sizes:
        step = max(1, -(-len(sizes) // 12))
        ax.set_xticks(sizes[::step])
        ax.set_xlim(min(sizes) - 0.6 * max(1, (max(sizes) - min(sizes)) / 10), max(sizes) + 0.6 * max(1, (max(sizes) - min(sizes)) / 10))
    ax.grid(alpha=0.3)
    labelled = bool(ax.get_legend_handles_labels()[0])
    if labelled:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    return labelled


def gaps_png(report: str) -> str:
    """The figure's path for a report: ``REPORT-gaps.png`` beside ``REPORT.xlsx``."""
    return os.path.splitext(report)[0] + "-gaps.png"
