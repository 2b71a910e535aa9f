"""Plots shared by stages and reports (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: stages run on servers and in Ray workers
import matplotlib.pyplot as plt  # noqa: E402


def plot_scores(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """One small panel per metric (their scales differ): value with its CI, and the direction."""
    n = len(rows)
    cols = min(4, n)
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.4 * nrows), squeeze=False)
    for ax, row in zip(list(axes.flat)[:n], rows, strict=True):  # the grid may have spare cells
        value, low, high = row["value"], row["ci_low"], row["ci_high"]
        ax.errorbar([0], [value], yerr=[[value - low], [high - value]], fmt="o", capsize=6)
        arrow = "↑ more diverse" if row["higher_is_more_diverse"] else "↓ more diverse"
        ax.set_title(f"{row['metric']}\n{arrow}", fontsize=9)
        ax.set_xticks([])
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(
    curves: dict[str, list[tuple[int, float]]], out: Any, title: str, ylabel: str
) -> None:
    """Line per run (step, value); ``out`` is a path or a binary file object."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, points in curves.items():
        steps, values = zip(*sorted(points), strict=True)
        ax.plot(steps, values, label=label, linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
