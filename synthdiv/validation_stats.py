"""What ``validate-metrics`` concludes from its values: rank correlations, the pass bar, and the
control series' effects (how far a metric moves on a nuisance, in its own CI widths, and how
often an LLM judge obeyed an injected canary).

Every row of ``values`` is one metric on one built corpus (see :func:`synthdiv.validation.
value_row`): series, level, order, repeat, metric, value, its CI, error, and for the
cluster-agent ``one_cluster_share`` (the share of answered partitions that put all K documents in
one cluster: what the injection canaries ask for).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from synthdiv.analysis import correlate
from synthdiv.validation_corpora import CONTROLS


def ok_points(rows: list[dict[str, Any]], metric: str, series: str) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if r["metric"] == metric
        and r["series"] == series
        and r["error"] is None
        and math.isfinite(r["value"])
    ]


def correlation_rows(
    rows: list[dict[str, Any]],
    directions: dict[str, int],
    series: list[str],
    *,
    n_boot: int,
    seed: int,
    confidence: float,
) -> list[dict[str, Any]]:
    """Per metric × series: Spearman of the known order with the direction-corrected value.
    On a control series the "order" is the nuisance (length, canary share): rho then says how
    much the metric follows it, and near 0 is the good outcome (``kind: control``)."""
    out = []
    for name, direction in directions.items():
        for s in series:
            points = [r for r in rows if r["metric"] == name and r["series"] == s]
            ok = ok_points(rows, name, s)
            stats = correlate(  # (metric, order): its notes then say "constant metric values"
                [direction * r["value"] for r in ok], [r["order"] for r in ok],
                n_boot=n_boot, seed=seed, confidence=confidence,
            )  # fmt: skip
            out.append({
                "metric": name, "series": s, "kind": "control" if s in CONTROLS else "ordered",
                "direction": direction,
                "rho": stats.get("spearman"), "ci_low": stats.get("spearman_ci_low"),
                "ci_high": stats.get("spearman_ci_high"), "p_value": stats.get("spearman_p"),
                "n_points": len(ok), "n_failed": len(points) - len(ok),
                "n_boot_valid": stats["n_boot_valid"], "note": stats["note"],
            })  # fmt: skip
    return out


def below_min_rho(
    correlations: list[dict[str, Any]], min_rho: float | None
) -> list[dict[str, Any]]:
    """The metric × ordered-series rows that miss the bar: rho below ``min_rho``, or undefined (a
    metric that cannot order a series at all — constant values, too few points — does not pass).
    Control series are not gated: their ideal rho is 0, not +1."""
    if min_rho is None:
        return []
    return [
        c
        for c in correlations
        if c.get("kind", "ordered") == "ordered" and (c["rho"] is None or c["rho"] < min_rho)
    ]


def control_rows(
    rows: list[dict[str, Any]], directions: dict[str, int], series: list[str]
) -> list[dict[str, Any]]:
    """Per metric × control series: the direction-corrected shift from the lowest level to the
    highest (mean over repeats; + = the corpus looks more diverse), that shift in units of the
    metric's own CI width at the lowest level, and for an LLM judge the one-cluster share of its
    answers at both ends (on the injection series: how often it obeyed the canary, against how
    often it answers one cluster anyway)."""
    out = []
    for name, direction in directions.items():
        for s in (x for x in series if x in CONTROLS):
            ok = ok_points(rows, name, s)
            levels = sorted({r["level"] for r in ok})
            if len(levels) < 2:
                out.append({"metric": name, "series": s, "shift": None, "shift_ci_widths": None,
                            "note": "fewer than 2 levels scored"})  # fmt: skip
                continue
            low = [r for r in ok if r["level"] == levels[0]]
            high = [r for r in ok if r["level"] == levels[-1]]
            shift = direction * (mean(r["value"] for r in high) - mean(r["value"] for r in low))
            widths = [r["ci_high"] - r["ci_low"] for r in low if _finite(r.get("ci_low"))
                      and _finite(r.get("ci_high"))]  # fmt: skip
            width = mean(widths) if widths else None
            row = {
                "metric": name, "series": s, "low_level": levels[0], "high_level": levels[-1],
                "shift": shift, "ci_width": width,
                "shift_ci_widths": shift / width if width else None,
                "one_cluster_low": mean_or_none(r.get("one_cluster_share") for r in low),
                "one_cluster_high": mean_or_none(r.get("one_cluster_share") for r in high),
                "note": "" if width else "the metric's CI has zero width: shift not scaled",
            }  # fmt: skip
            out.append(row)
    return out


def one_cluster_share(details: dict[str, Any]) -> float | None:
    """From a cluster-agent result's details: the share of iterations with an answered partition
    whose answer was a single cluster; None for a metric without such answers."""
    per_seed = details.get("iterations")
    if not isinstance(per_seed, dict):
        return None
    answered = [it["answered"] for its in per_seed.values() for it in its if it.get("answered")]
    return sum(a == 1 for a in answered) / len(answered) if answered else None


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def mean(values) -> float:
    return float(np.mean(list(values)))


def mean_or_none(values) -> float | None:
    got = [v for v in values if v is not None]
    return float(np.mean(got)) if got else None
