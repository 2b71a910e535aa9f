"""Does a corpus's diversity predict the accuracy of models trained on it? Correlations with CIs.

Pure functions over plain data (no MLflow here): join per-corpus diversity scores to per-model
accuracies by dataset digest, then for every metric × model size × variant (base/SFT) compute
Spearman and Pearson with paired bootstrap CIs (corpora resampled with replacement, seeded), and
rank the metrics by how strongly they track accuracy. With fewer than ``min_points`` corpora a CI
is reported as undefined rather than invented; with fewer than three, so is the coefficient.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

MIN_POINTS_FOR_CI = 4
MIN_POINTS_FOR_RHO = 3
# Values spread by less than this fraction of their magnitude count as constant: their order is
# rounding noise (e.g. 0.5 and 0.5 + 1e-12 from summing in a different order), and ranking it
# would report a spurious correlation.
NEAR_CONSTANT_SPREAD = 1e-9


@dataclass(frozen=True)
class Score:
    value: float
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass
class Point:
    """One trained model: the diversity of its corpus and its accuracy."""

    dataset_digest: str
    model_size: str
    variant: str
    accuracy: float
    diversity: dict[str, Score]
    corpus_name: str | None = None
    eval_run_id: str | None = None


@dataclass
class Correlation:
    metric: str
    model_size: str
    variant: str
    n: int
    direction: int  # +1 if higher values mean more diverse, -1 otherwise
    spearman: float | None = None
    spearman_p: float | None = None
    spearman_ci_low: float | None = None
    spearman_ci_high: float | None = None
    pearson: float | None = None
    pearson_p: float | None = None
    pearson_ci_low: float | None = None
    pearson_ci_high: float | None = None
    n_boot_valid: int = 0
    note: str = ""

    @property
    def directional_spearman(self) -> float | None:
        """Positive = more diverse corpora give more accurate models (the paper's claim)."""
        return None if self.spearman is None else self.spearman * self.direction

    def as_row(self) -> dict[str, Any]:
        return asdict(self) | {"directional_spearman": self.directional_spearman}


@dataclass
class MetricRank:
    metric: str
    direction: int
    mean_abs_spearman: float | None
    mean_directional_spearman: float | None
    n_panels: int
    min_n: int
    panels: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- statistics


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=1) / denom


def paired_bootstrap(
    x: np.ndarray, y: np.ndarray, n_boot: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Spearman and Pearson of ``n_boot`` paired resamples, degenerate resamples dropped.

    Not ``scipy.stats.bootstrap``: with a handful of corpora many resamples repeat one corpus
    (constant x or y, undefined correlation) and scipy's interval then turns NaN. Dropping them
    and reporting how many remained is the honest version.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    xs, ys = x[idx], y[idx]
    valid = ~near_constant(xs) & ~near_constant(ys)
    xs, ys = xs[valid], ys[valid]
    spearman = _rowwise_pearson(stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1))
    return spearman, _rowwise_pearson(xs, ys)


def near_constant(values: np.ndarray) -> np.ndarray | bool:
    """True where ``values`` (the last axis) spread by at most NEAR_CONSTANT_SPREAD × their
    largest magnitude: exactly equal values, or values that differ only by rounding."""
    values = np.asarray(values, dtype=float)
    spread = np.ptp(values, axis=-1)
    scale = np.abs(values).max(axis=-1)
    return spread <= NEAR_CONSTANT_SPREAD * scale


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def correlate(
    x: list[float] | np.ndarray,
    y: list[float] | np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    min_points: int = MIN_POINTS_FOR_CI,
) -> dict[str, Any]:
    """Spearman + Pearson of paired samples, each with a percentile bootstrap CI."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    out: dict[str, Any] = {"n": n, "n_boot_valid": 0, "note": ""}
    if n < MIN_POINTS_FOR_RHO:
        out["note"] = f"n={n} < {MIN_POINTS_FOR_RHO}: correlation undefined"
        return out
    if near_constant(x) or near_constant(y):
        out["note"] = "constant " + ("metric values" if near_constant(x) else "accuracy")
        return out
    rho = stats.spearmanr(x, y)
    r = stats.pearsonr(x, y)
    out |= {
        "spearman": _finite(rho.statistic),
        "spearman_p": _finite(rho.pvalue),
        "pearson": _finite(r.statistic),
        "pearson_p": _finite(r.pvalue),
    }
    if n < min_points:
        out["note"] = f"n={n} < {min_points}: CI undefined"
        return out
    boot_rho, boot_r = paired_bootstrap(x, y, n_boot, seed)
    out["n_boot_valid"] = len(boot_rho)
    if len(boot_rho) == 0:
        out["note"] = "no non-degenerate bootstrap resample"
        return out
    out["spearman_ci_low"], out["spearman_ci_high"] = _interval(boot_rho, confidence)
    out["pearson_ci_low"], out["pearson_ci_high"] = _interval(boot_r, confidence)
    return out


# --------------------------------------------------------------------------- study level


def size_key(label: str) -> tuple[float, str]:
    """Order model sizes numerically ('135M' < '1.4B'); unparseable labels sort after, by name."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kKmMbBtT]?)\s*", label)
    if not match:
        return (math.inf, label)
    scale = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[match.group(2).lower()]
    return (float(match.group(1)) * scale, label)


def panels(points: list[Point]) -> list[tuple[str, str]]:
    keys = {(p.model_size, p.variant) for p in points}
    return sorted(keys, key=lambda k: (size_key(k[0]), k[1]))


def metric_names(points: list[Point]) -> list[str]:
    return sorted({m for p in points for m in p.diversity})


def correlate_study(
    points: list[Point],
    directions: dict[str, bool],
    *,
    metrics: list[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    min_points: int = MIN_POINTS_FOR_CI,
) -> list[Correlation]:
    """One :class:`Correlation` per metric × (model size, variant) panel."""
    results = []
    for metric in metrics or metric_names(points):
        direction = 1 if directions.get(metric, True) else -1
        for size, variant in panels(points):
            pts = [
                p
                for p in points
                if (p.model_size, p.variant) == (size, variant) and metric in p.diversity
            ]
            stats_ = correlate(
                [p.diversity[metric].value for p in pts],
                [p.accuracy for p in pts],
                n_boot=n_boot,
                seed=seed,
                confidence=confidence,
                min_points=min_points,
            )
            results.append(Correlation(metric, size, variant, direction=direction, **stats_))
    return results


def rank_metrics(correlations: list[Correlation]) -> list[MetricRank]:
    """Metrics ordered by mean |Spearman| over the panels where it is defined."""
    by_metric: dict[str, list[Correlation]] = defaultdict(list)
    for c in correlations:
        by_metric[c.metric].append(c)
    ranks = []
    for metric, rows in by_metric.items():
        defined = [c for c in rows if c.spearman is not None]
        ranks.append(
            MetricRank(
                metric=metric,
                direction=rows[0].direction,
                mean_abs_spearman=float(np.mean([abs(c.spearman) for c in defined]))
                if defined
                else None,  # type: ignore[arg-type]
                mean_directional_spearman=(
                    float(np.mean([c.directional_spearman for c in defined])) if defined else None  # type: ignore[misc]
                ),
                n_panels=len(defined),
                min_n=min(c.n for c in rows),
                panels=[f"{c.model_size}/{c.variant}" for c in defined],
            )
        )
    return sorted(
        ranks, key=lambda r: (r.mean_abs_spearman is None, -(r.mean_abs_spearman or 0), r.metric)
    )


# --------------------------------------------------------------------------- tables


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ci(low: float | None, high: float | None, note: str) -> str:
    if low is None or high is None:
        return "undefined" + (f" ({note})" if note else "")
    return f"[{low:.2f}, {high:.2f}]"


def correlations_markdown(rows: list[Correlation], target: str, confidence: float) -> str:
    pct = f"{confidence:.0%}"
    lines = [
        (
            f"Correlation of each diversity metric with `{target}` "
            f"(paired bootstrap {pct} CIs over corpora; direction +1 = higher is more diverse)."
        ),
        "",
        "| metric | size | variant | n | Spearman ρ | "
        f"{pct} CI | p | Pearson r | {pct} CI | p | dir |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        lines.append(
            f"| {c.metric} | {c.model_size} | {c.variant} | {c.n} | {_fmt(c.spearman)} | "
            f"{_ci(c.spearman_ci_low, c.spearman_ci_high, c.note)} | {_fmt(c.spearman_p)} | "
            f"{_fmt(c.pearson)} | {_ci(c.pearson_ci_low, c.pearson_ci_high, c.note)} | "
            f"{_fmt(c.pearson_p)} | {c.direction:+d} |"
        )
    return "\n".join(lines) + "\n"


def ranking_markdown(ranks: list[MetricRank]) -> str:
    lines = [
        (
            "Metrics ranked by mean |Spearman ρ| across panels. Directional ρ > 0 means more "
            "diverse corpora (by that metric) gave more accurate models."
        ),
        "",
        "| rank | metric | mean abs ρ | mean directional ρ | panels | min n |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(ranks, start=1):
        lines.append(
            f"| {i} | {r.metric} | {_fmt(r.mean_abs_spearman)} | "
            f"{_fmt(r.mean_directional_spearman)} | {r.n_panels} | {r.min_n} |"
        )
    return "\n".join(lines) + "\n"


def points_rows(points: list[Point]) -> list[dict[str, Any]]:
    """The joined data, one row per (model, metric): enough to recompute every number."""
    return [
        {
            "dataset_digest": p.dataset_digest,
            "corpus_name": p.corpus_name,
            "model_size": p.model_size,
            "variant": p.variant,
            "accuracy": p.accuracy,
            "eval_run_id": p.eval_run_id,
            "metric": metric,
            "value": s.value,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
        }
        for p in points
        for metric, s in sorted(p.diversity.items())
    ]
