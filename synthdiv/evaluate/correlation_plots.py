"""Figures for the correlation stage: per-metric scatter panels (like the paper's Figure 1) and a
metric ranking bar chart. Built on ``matplotlib.figure.Figure`` so no global pyplot state or GUI
backend is touched (safe in Ray workers and tests)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from synthdiv.analysis import Correlation, MetricRank, Point, panels


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _panel_title(size: str, variant: str, corr: Correlation | None) -> str:
    if corr is None or corr.spearman is None:
        return f"{size} {variant}: n={corr.n if corr else 0}, ρ undefined"
    ci = (
        f" [{corr.spearman_ci_low:.2f}, {corr.spearman_ci_high:.2f}]"
        if corr.spearman_ci_low is not None
        else " (CI undefined)"
    )
    perm = "" if corr.spearman_perm_p is None else f", perm p={corr.spearman_perm_p:.2g}"
    slope = (
        f"\nslope {corr.slope:.3g} [{corr.slope_ci_low:.3g}, {corr.slope_ci_high:.3g}]"
        if corr.slope is not None and corr.slope_ci_low is not None
        else ""
    )
    return f"{size} {variant}: ρ={corr.spearman:.2f}{ci}, n={corr.n}{perm}{slope} · {corr.verdict}"


def scatter_figure(
    metric: str, points: list[Point], correlations: list[Correlation], target: str
) -> Figure:
    keys = panels(points)
    sizes = list(dict.fromkeys(k[0] for k in keys))  # panels() orders sizes numerically
    variants = sorted({k[1] for k in keys})
    fig = Figure(figsize=(4.2 * len(variants), 3.4 * len(sizes)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(sizes), len(variants), squeeze=False))
    by_panel = {(c.model_size, c.variant): c for c in correlations if c.metric == metric}
    for i, size in enumerate(sizes):
        for j, variant in enumerate(variants):
            ax = axes[i, j]
            pts = [
                p
                for p in points
                if (p.model_size, p.variant) == (size, variant) and metric in p.diversity
            ]
            x = np.array([p.diversity[metric].value for p in pts])
            y = np.array([p.accuracy for p in pts])
            lo = np.array(
                [
                    p.diversity[metric].ci_low if p.diversity[metric].ci_low is not None else v
                    for p, v in zip(pts, x, strict=True)
                ]
            )
            hi = np.array(
                [
                    p.diversity[metric].ci_high if p.diversity[metric].ci_high is not None else v
                    for p, v in zip(pts, x, strict=True)
                ]
            )
            if len(pts):
                xerr = np.clip(np.vstack([x - lo, hi - x]), 0, None)
                # ±1 stderr of each accuracy (none drawn where the eval reported none)
                yerr = np.array([p.accuracy_stderr or 0.0 for p in pts])
                ax.errorbar(
                    x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=3, color="tab:blue", ecolor="0.6"
                )
                for p, xi, yi in zip(pts, x, y, strict=True):
                    ax.annotate(
                        p.corpus_name or p.dataset_digest[:8],
                        (xi, yi),
                        fontsize=7,
                        xytext=(3, 3),
                        textcoords="offset points",
                    )
            if len(pts) >= 2 and np.ptp(x) > 0:
                slope, intercept = np.polyfit(x, y, 1)
                grid = np.linspace(x.min(), x.max(), 20)
                ax.plot(grid, slope * grid + intercept, "--", color="tab:red", linewidth=1)
            ax.set_title(_panel_title(size, variant, by_panel.get((size, variant))), fontsize=9)
            ax.set_xlabel(metric)
            ax.set_ylabel(target)
            ax.grid(alpha=0.3)
    fig.suptitle(f"{metric} vs {target}")
    return fig


def ranking_figure(ranks: list[MetricRank]) -> Figure:
    shown = [r for r in ranks if r.mean_directional_spearman is not None]
    fig = Figure(figsize=(7, 0.45 * max(len(shown), 1) + 1.5), layout="constrained")
    ax = fig.subplots()
    names = [r.metric for r in shown][::-1]
    values = [r.mean_directional_spearman for r in shown][::-1]
    colors = ["tab:green" if v >= 0 else "tab:red" for v in values]  # type: ignore[operator]
    ax.barh(names, values, color=colors)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlim(-1, 1)
    ax.set_xlabel("mean directional Spearman ρ (> 0: more diverse → more accurate)")
    ax.set_title("Diversity metrics ranked by |ρ| with accuracy")
    if not shown:
        ax.text(
            0.5,
            0.5,
            "no metric has enough points for a correlation",
            ha="center",
            transform=ax.transAxes,
        )
    return fig


def write_plots(
    out: Path,
    points: list[Point],
    correlations: list[Correlation],
    ranks: list[MetricRank],
    target: str,
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for metric in sorted({c.metric for c in correlations}):
        path = out / f"scatter_{_safe(metric)}.png"
        scatter_figure(metric, points, correlations, target).savefig(path, dpi=110)
        written.append(path)
    path = out / "ranking.png"
    ranking_figure(ranks).savefig(path, dpi=110)
    written.append(path)
    return written
