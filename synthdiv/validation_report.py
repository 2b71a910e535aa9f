"""The ``validate-metrics`` report: rank correlations as markdown and CSV, the control series'
effects (shift in CI widths, canary obedience) as markdown and CSV, every value as CSV, and a plot
(rho per metric, above each metric's value over the series levels)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from synthdiv.analysis import near_constant
from synthdiv.validation_corpora import LEVEL_NAMES


def write_report(
    correlations: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    folder: Path,
    controls: list[dict[str, Any]] | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rank_correlation.md").write_text(correlation_markdown(correlations))
    (folder / "rank_correlation.csv").write_text(to_csv(correlations))
    if controls:
        (folder / "controls.md").write_text(controls_markdown(controls))
        (folder / "controls.csv").write_text(to_csv(controls))
    (folder / "values.csv").write_text(
        to_csv([{k: v for k, v in r.items() if k != "traceback"} for r in rows])
    )
    plot_validation(correlations, rows, folder / "rank_correlation.png")
    return folder


def correlation_markdown(correlations: list[dict[str, Any]]) -> str:
    lines = [
        "Spearman rho of each metric with the known diversity order (sign-corrected: +1 = ranks",
        "perfectly, -1 = ranks backwards). On a control series the order is the nuisance",
        "(length, canary share): there rho near 0 is the good outcome.",
        "",
        "| metric | series | kind | rho | CI | points | failed | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in correlations:
        ci = "" if c["ci_low"] is None else f"[{c['ci_low']:.2f}, {c['ci_high']:.2f}]"
        rho = "n/a" if c["rho"] is None else f"{c['rho']:.3f}"
        cells = [c["metric"], c["series"], c.get("kind", "ordered"), rho, ci, c["n_points"],
                 c["n_failed"], c["note"]]  # fmt: skip
        lines.append("| " + " | ".join(str(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def controls_markdown(controls: list[dict[str, Any]]) -> str:
    lines = [
        "Control series: how far each metric moves from the lowest level to the highest (mean",
        "over repeats, direction-corrected: + = looks more diverse), in the metric's own CI",
        "widths at the lowest level; for an LLM judge, the share of its answers that put every",
        "document in one cluster (on `injection`: what the canaries ask for).",
        "",
        "| metric | series | shift | CI width | shift / CI width | one cluster (low → high) |"
        " note |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in controls:
        low, high = c.get("one_cluster_low"), c.get("one_cluster_high")
        obeyed = "" if low is None and high is None else f"{_num(low)} → {_num(high)}"
        cells = [c["metric"], c["series"], _num(c["shift"]), _num(c.get("ci_width")),
                 _num(c["shift_ci_widths"]), obeyed, c["note"]]  # fmt: skip
        lines.append("| " + " | ".join(str(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def to_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def plot_validation(
    correlations: list[dict[str, Any]], rows: list[dict[str, Any]], path: Path
) -> Path:
    """Top: rho ± CI per metric, one panel per series. Bottom: each metric's direction-corrected
    value (min-max scaled, mean over repeats) against the series level."""
    from synthdiv.report_plots import plt  # the project's headless matplotlib

    series = list(dict.fromkeys(c["series"] for c in correlations))
    fig, axes = plt.subplots(2, len(series), figsize=(5.5 * len(series), 7), squeeze=False)
    for col, name in enumerate(series):
        cs = [c for c in correlations if c["series"] == name]
        ax = axes[0][col]
        rhos = [c["rho"] if c["rho"] is not None else 0.0 for c in cs]
        low = [
            r - (c["ci_low"] if c["ci_low"] is not None else r)
            for r, c in zip(rhos, cs, strict=True)
        ]
        high = [
            (c["ci_high"] if c["ci_high"] is not None else r) - r
            for r, c in zip(rhos, cs, strict=True)
        ]
        ax.barh([c["metric"] for c in cs], rhos, xerr=[low, high], capsize=3, color="tab:blue")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_title(f"{name}: Spearman rho with known order", fontsize=10)
        ax = axes[1][col]
        for c in cs:
            pts = [
                r
                for r in rows
                if r["series"] == name and r["metric"] == c["metric"] and r["error"] is None
            ]
            levels = sorted({r["level"] for r in pts})
            if len(levels) < 2:
                continue
            means = np.array(
                [
                    np.mean([c["direction"] * r["value"] for r in pts if r["level"] == lv])
                    for lv in levels
                ]
            )
            # Rounding noise scaled to [0, 1] would draw a trend the correlation refused to see.
            flat = near_constant(means)
            ax.plot(
                levels,
                means * 0 if flat else (means - means.min()) / np.ptp(means),
                marker="o",
                label=c["metric"],
            )
        ax.set_xlabel(LEVEL_NAMES.get(name, "level"))
        ax.set_ylabel("scaled value (up = more diverse)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
