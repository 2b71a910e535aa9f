"""Does a corpus's diversity predict the accuracy of models trained on it? Correlations with CIs.

Pure functions over plain data (no MLflow here): join per-corpus diversity scores to per-model
accuracies by dataset digest, then for every metric × model size × variant (base/SFT) compute
Spearman and Pearson with paired bootstrap CIs (corpora resampled with replacement, accuracies
redrawn from their stderr, seeded), Fisher-z CIs, permutation p-values and the OLS slope
(:mod:`synthdiv.stats`), a verdict on whether the panel supports a claim, and rank the metrics by
how strongly they track accuracy. With fewer than ``min_points`` corpora a bootstrap CI is
reported as undefined rather than invented; with fewer than three, so is the coefficient.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from synthdiv.stats import (  # noqa: F401 (re-exported: analysis is the public entry point)
    MIN_CORPORA_FOR_CLAIM,
    NEAR_CONSTANT_SPREAD,
    fisher_ci,
    near_constant,
    ols,
    paired_bootstrap,
    percentile_interval,
    permutation_pvalues,
    verdict,
)

MIN_POINTS_FOR_CI = 4
MIN_POINTS_FOR_RHO = 3


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
    accuracy_stderr: float | None = None  # the eval's stderr of ``accuracy`` (None = unknown)


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
    spearman_perm_p: float | None = None  # two-sided permutation p (exact up to 8 corpora)
    pearson_perm_p: float | None = None
    perm_exact: bool = False
    spearman_fisher_low: float | None = None  # Fisher-z interval (Bonett-Wright SE for ρ)
    spearman_fisher_high: float | None = None
    pearson_fisher_low: float | None = None
    pearson_fisher_high: float | None = None
    slope: float | None = None  # OLS of accuracy on the metric, t interval
    intercept: float | None = None
    slope_p: float | None = None
    slope_ci_low: float | None = None
    slope_ci_high: float | None = None
    stderr_propagated: bool = False  # the bootstrap redrew each accuracy from its stderr
    n_boot_valid: int = 0
    note: str = ""
    verdict: str = ""  # supported | no claim | too few corpora (stats.verdict)
    verdict_reason: str = ""

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


def correlate(
    x: list[float] | np.ndarray,
    y: list[float] | np.ndarray,
    *,
    y_err: list[float | None] | np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    min_points: int = MIN_POINTS_FOR_CI,
    n_permutations: int = 10_000,
) -> dict[str, Any]:
    """Spearman + Pearson of paired samples: percentile bootstrap CIs (accuracies redrawn from
    their ``y_err`` when given), Fisher-z CIs, permutation p-values and the OLS slope.

    Pairs without a finite value (a metric undefined on a corpus) are left out and the note says
    how many: kept, one NaN made ρ undefined while its permutation p read 0."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.all():
        return _correlate_finite(x, y, y_err, n_boot, seed, confidence, min_points, n_permutations)
    if y_err is not None and len(y_err) == len(keep):
        y_err = [e for e, k in zip(y_err, keep, strict=True) if k]
    out = _correlate_finite(
        x[keep], y[keep], y_err, n_boot, seed, confidence, min_points, n_permutations
    )
    left_out = f"{int((~keep).sum())} of {len(keep)} corpora without a value left out"
    out["note"] = f"{left_out}; {out['note']}" if out["note"] else left_out
    return out


def _correlate_finite(
    x: np.ndarray,
    y: np.ndarray,
    y_err: Any,
    n_boot: int,
    seed: int,
    confidence: float,
    min_points: int,
    n_permutations: int,
) -> dict[str, Any]:
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
    spearman_perm, pearson_perm, exact = permutation_pvalues(x, y, n_permutations, seed)
    out |= {
        "spearman": _finite(rho.statistic),
        "spearman_p": _finite(rho.pvalue),
        "spearman_perm_p": spearman_perm,
        "pearson": _finite(r.statistic),
        "pearson_p": _finite(r.pvalue),
        "pearson_perm_p": pearson_perm,
        "perm_exact": exact,
        **ols(x, y, confidence),
    }
    for name in ("spearman", "pearson"):
        low, high = fisher_ci(out[name], n, confidence, spearman=name == "spearman")
        out[f"{name}_fisher_low"], out[f"{name}_fisher_high"] = low, high
    if n < min_points:
        out["note"] = f"n={n} < {min_points}: CI undefined"
        return out
    err = _stderrs(y_err, n)
    out["stderr_propagated"] = err is not None
    boot_rho, boot_r, boot_slope = paired_bootstrap(x, y, n_boot, seed, err)
    out["n_boot_valid"] = len(boot_rho)
    if len(boot_rho) == 0:
        out["note"] = "no non-degenerate bootstrap resample"
        return out
    out["spearman_ci_low"], out["spearman_ci_high"] = percentile_interval(boot_rho, confidence)
    out["pearson_ci_low"], out["pearson_ci_high"] = percentile_interval(boot_r, confidence)
    return out


def _stderrs(y_err: Any, n: int) -> np.ndarray | None:
    """The accuracies' stderrs as an array, or None unless every one is known (a missing one
    would silently count as exact)."""
    if y_err is None or len(y_err) != n or any(e is None for e in y_err):
        return None
    err = np.asarray(y_err, dtype=float)
    return err if np.isfinite(err).all() and (err >= 0).all() else None


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


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
    min_corpora_for_claim: int = MIN_CORPORA_FOR_CLAIM,
    propagate_stderr: bool = True,
    n_permutations: int = 10_000,
) -> list[Correlation]:
    """One :class:`Correlation` per metric × (model size, variant) panel, with its verdict."""
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
                y_err=[p.accuracy_stderr for p in pts] if propagate_stderr else None,
                n_boot=n_boot,
                seed=seed,
                confidence=confidence,
                min_points=min_points,
                n_permutations=n_permutations,
            )
            stats_["verdict"], stats_["verdict_reason"] = verdict(
                stats_, confidence, min_corpora_for_claim
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


def _sig(value: float | None) -> str:
    """Three significant digits without exponent notation (slopes span many magnitudes)."""
    if value is None:
        return "—"
    return np.format_float_positional(value, precision=3, fractional=False, trim="-")


def _slope(c: Correlation) -> str:
    if c.slope is None:
        return "—"
    if c.slope_ci_low is None or c.slope_ci_high is None:
        return _sig(c.slope)
    return f"{_sig(c.slope)} [{_sig(c.slope_ci_low)}, {_sig(c.slope_ci_high)}]"


def claim_rule(confidence: float, min_corpora: int = MIN_CORPORA_FOR_CLAIM) -> str:
    """The rule behind each panel's verdict, in one sentence for tables and the CLI."""
    return (
        f"A panel supports a claim only with n ≥ {min_corpora} corpora, a permutation p < "
        f"{1 - confidence:.2g} and the bootstrap CI, the Fisher-z CI of ρ and the slope's CI all "
        "on one side of 0; otherwise it is 'no claim' or 'too few corpora'."
    )


def correlations_markdown(
    rows: list[Correlation],
    target: str,
    confidence: float,
    min_corpora: int = MIN_CORPORA_FOR_CLAIM,
) -> str:
    pct = f"{confidence:.0%}"
    lines = [
        (
            f"Correlation of each diversity metric with `{target}`: paired bootstrap {pct} CIs "
            "over corpora (accuracies redrawn from their stderr where known), Fisher-z CIs, "
            "two-sided permutation p-values, and the OLS slope of accuracy on the metric with "
            "its t interval; direction +1 = higher is more diverse."
        ),
        claim_rule(confidence, min_corpora),
        "",
        f"| metric | size | variant | n | Spearman ρ | bootstrap {pct} CI | Fisher-z CI | perm p "
        f"| Pearson r | bootstrap {pct} CI | Fisher-z CI | perm p | slope [{pct} CI] | verdict "
        "| dir |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        lines.append(
            f"| {c.metric} | {c.model_size} | {c.variant} | {c.n} | {_fmt(c.spearman)} | "
            f"{_ci(c.spearman_ci_low, c.spearman_ci_high, c.note)} | "
            f"{_ci(c.spearman_fisher_low, c.spearman_fisher_high, '')} | "
            f"{_fmt(c.spearman_perm_p)} | {_fmt(c.pearson)} | "
            f"{_ci(c.pearson_ci_low, c.pearson_ci_high, c.note)} | "
            f"{_ci(c.pearson_fisher_low, c.pearson_fisher_high, '')} | "
            f"{_fmt(c.pearson_perm_p)} | {_slope(c)} | {c.verdict} ({c.verdict_reason}) | "
            f"{c.direction:+d} |"
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
            "accuracy_stderr": p.accuracy_stderr,
            "eval_run_id": p.eval_run_id,
            "metric": metric,
            "value": s.value,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
        }
        for p in points
        for metric, s in sorted(p.diversity.items())
    ]
