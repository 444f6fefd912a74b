"""Reproduction of the paper's headline comparison (``dipsd paper``).

The paper (Qwen3-1.7B drafting, Qwen3-32B verifying) reports, at 14 users, DiP-SD at
17.89x AD, 1.93x AD with greedy batching and 1.38x SD without batching.  This module
builds the paper-default scenarios for a sweep of users and acceptance rates, and turns a
finished study into the markdown table of ratios and a figure.
"""

from __future__ import annotations

from ..data.scenario import Scenario, paper_scenario
from ..solvers.results import Record, Status

PAPER_RATIOS = {"ad": 17.89, "ad-batch": 1.93, "sd-nobatch": 1.38}
PAPER_USERS = 14
"""DiP-SD's throughput over each baseline at 14 users, as the paper reports it."""


def scenario_name(alpha: float, users: int) -> str:
    return f"paper-a{alpha:g}-M{users}"


def paper_scenarios(max_users: int, alphas: list[float]) -> list[Scenario]:
    """The paper defaults for M = 2..max_users and each alpha (one scenario each)."""
    return [paper_scenario(m, alpha=a, name=scenario_name(a, m)) for a in alphas for m in range(2, max_users + 1)]


def ratio_table(records: list[Record], alphas: list[float], users: int) -> tuple[str, list[dict]]:
    """Markdown table of DiP-SD's (and the optimum's) ratios over the baselines at ``users``."""
    by_key = {(r.scenario, r.method): r for r in records}

    def tps(name: str, method: str) -> float | None:
        r = by_key.get((name, method))
        return None if r is None else r.throughput_tps

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    lines = ["| alpha | M | DiP-SD tok/s | optimum tok/s | DiP-SD / AD | DiP-SD / AD-batch | DiP-SD / SD-nobatch | "
             "DiP-SD / DiP-SD-fixed | optimum / AD | optimum / AD-batch | optimum / SD-nobatch |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for a in alphas:
        name = scenario_name(a, users)
        dip, opt = tps(name, "dipsd"), tps(name, "exact")
        exact = by_key.get((name, "exact"))
        row = {"alpha": a, "users": users, "dipsd": dip, "exact": opt,
               "exact_status": None if exact is None else exact.status}
        for base in ("ad", "ad-batch", "sd-nobatch", "dipsd-fixed"):
            row[f"dipsd/{base}"] = ratio(dip, tps(name, base))
            row[f"exact/{base}"] = ratio(opt, tps(name, base))
        rows.append(row)
        num = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        times = lambda v: "-" if v is None else f"{v:.2f}x"  # noqa: E731
        status = None if exact is None else exact.status
        opt_text = num(opt) + ("" if status in (None, Status.OPTIMAL) else f" ({status.value})")
        ratios = " | ".join(times(row[k]) for k in ("dipsd/ad", "dipsd/ad-batch", "dipsd/sd-nobatch", "dipsd/dipsd-fixed",
                                                   "exact/ad", "exact/ad-batch", "exact/sd-nobatch"))
        lines.append(f"| {a:g} | {users} | {num(dip)} | {opt_text} | {ratios} |")
    paper = f"| paper | 14 | | | {PAPER_RATIOS['ad']}x | {PAPER_RATIOS['ad-batch']}x | {PAPER_RATIOS['sd-nobatch']}x | | | | |"
    if users == PAPER_USERS:
        lines.append(paper)
    else:  # the paper's ratios are at 14 users: set apart, not compared with another M
        lines += ["", f"The paper's ratios are at M = {PAPER_USERS}, not comparable with M = {users}:", lines[0], lines[1], paper]
    return "\n".join(lines), rows


def figure(path: str, records: list[Record], alphas: list[float], max_users: int, methods: list[str]) -> None:
    """Throughput against users per method (one panel per alpha) and DiP-SD / AD."""
    try:
        import matplotlib
    except ImportError:
        from ..errors import InputError
        raise InputError("the figure needs matplotlib: pip install 'dipsd[paper]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tps = {(r.scenario, r.method): r.throughput_tps for r in records}
    users = list(range(2, max_users + 1))
    panels = len(alphas) + 1
    ncols = min(3, panels)
    nrows = -(-panels // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.8 * nrows), squeeze=False)
    axes = [list(grid.flat)]
    for extra in axes[0][panels:]:
        extra.set_visible(False)
    axes = [axes[0][:panels]]
    from matplotlib.ticker import MaxNLocator

    # coinciding lines stay visible: each method its own marker, line style and width, drawn
    # widest first, so the optimum (which DiP-SD often equals) shows under DiP-SD's line
    markers = ["o", "s", "^", "v", "D", "x", "P", "*"]
    styles = ["-", "--", "-.", ":"]
    for ax, a in zip(axes[0], alphas):
        for i, method in enumerate(methods):
            ys = [tps.get((scenario_name(a, m), method)) for m in users]
            pts = [(x, y) for x, y in zip(users, ys) if y is not None]
            if pts:
                ax.plot(*zip(*pts), marker=markers[i % len(markers)], linestyle=styles[i % len(styles)],
                        linewidth=3.0 - 2.0 * i / max(1, len(methods) - 1), markersize=7 - 4 * i / max(1, len(methods) - 1),
                        fillstyle="none", label="exact optimum" if method == "exact" else method, zorder=2 + i)
        ax.set_title(f"alpha = {a:g}")
        ax.set_xlabel("users M")
        ax.set_ylabel("throughput (tokens/s)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    ax = axes[0][-1]
    for a in alphas:
        pts = []
        for m in users:
            d = tps.get((scenario_name(a, m), "dipsd"))
            b = tps.get((scenario_name(a, m), "ad"))
            if d and b:
                pts.append((m, d / b))
        if pts:
            ax.plot(*zip(*pts), marker="o", markersize=3, label=f"alpha {a:g}")
    ax.axhline(PAPER_RATIOS["ad"], color="grey", linestyle="--", linewidth=1, label="paper: 17.89x at M=14")
    ax.set_title("DiP-SD / AD")
    ax.set_xlabel("users M")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("ratio")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
