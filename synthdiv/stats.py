"""Small-n statistics for the diversity-vs-accuracy correlation (4-8 corpora per panel).

A percentile bootstrap alone misleads at that size: it is narrow where the sampling distribution
is skewed and ignores how noisy each accuracy is. Beside it:

- :func:`permutation_pvalues`: two-sided p of Spearman ρ and Pearson r under "no association",
  exact (all n! pairings) up to ``EXACT_PERMUTATION_MAX_N`` corpora, Monte Carlo above;
- :func:`fisher_ci`: the Fisher-z interval (Pearson: 1/√(n-3); Spearman: Bonett & Wright's
  √((1 + ρ²/2)/(n-3)));
- :func:`ols`: the slope of accuracy on the metric (the paper's figure is a regression) with its
  t interval;
- :func:`paired_bootstrap`: corpora resampled with replacement, and each resampled accuracy
  redrawn from N(accuracy, stderr²) when stderrs are known, so eval noise widens the CI;
- :func:`verdict`: whether a panel supports a claim, by one rule (see its docstring).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy import stats

EXACT_PERMUTATION_MAX_N = 8  # 8! = 40320 pairings: exact, and cheap
# Fewer corpora than this and no claim is made, whatever the CI: with 4 corpora even a perfect
# ordering has an exact two-sided permutation p of 2/4! = 0.083.
MIN_CORPORA_FOR_CLAIM = 5
# Values spread by less than this fraction of their magnitude count as constant: their order is
# rounding noise (e.g. 0.5 and 0.5 + 1e-12 from summing in a different order), and ranking it
# would report a spurious correlation.
NEAR_CONSTANT_SPREAD = 1e-9


def near_constant(values: np.ndarray) -> np.ndarray | bool:
    """True where ``values`` (the last axis) spread by at most NEAR_CONSTANT_SPREAD × their
    largest magnitude: exactly equal values, or values that differ only by rounding."""
    values = np.asarray(values, dtype=float)
    spread = np.ptp(values, axis=-1)
    scale = np.abs(values).max(axis=-1)
    return spread <= NEAR_CONSTANT_SPREAD * scale


def rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=-1) / denom


def paired_bootstrap(
    x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, y_err: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spearman, Pearson and OLS slope of ``n_boot`` paired resamples, degenerate ones dropped.

    With ``y_err`` each resampled accuracy is drawn from N(y, y_err²): the interval then covers
    the eval's sampling noise as well as the choice of corpora.

    Not ``scipy.stats.bootstrap``: with a handful of corpora many resamples repeat one corpus
    (constant x or y, undefined correlation) and scipy's interval then turns NaN. Dropping them
    and reporting how many remained is the honest version.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    xs, ys = x[idx], y[idx]
    if y_err is not None:
        ys = ys + rng.normal(size=ys.shape) * y_err[idx]
    valid = ~near_constant(xs) & ~near_constant(ys)
    xs, ys = xs[valid], ys[valid]
    spearman = rowwise_pearson(stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1))
    xc = xs - xs.mean(axis=1, keepdims=True)
    slope = (xc * (ys - ys.mean(axis=1, keepdims=True))).sum(axis=1) / (xc * xc).sum(axis=1)
    return spearman, rowwise_pearson(xs, ys), slope


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def _pairings(n: int, n_resamples: int, seed: int) -> np.ndarray:
    if n <= EXACT_PERMUTATION_MAX_N:
        return np.array(list(itertools.permutations(range(n))))
    rng = np.random.default_rng(seed)
    return rng.permuted(np.tile(np.arange(n), (n_resamples, 1)), axis=1)


def permutation_pvalues(
    x: np.ndarray, y: np.ndarray, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, bool]:
    """Two-sided permutation p of (Spearman ρ, Pearson r) and whether it is exact.

    As ``scipy.stats.permutation_test``: p = 2 × the smaller tail share of the pairings of y
    with x whose statistic reaches the observed one (a relative tolerance counts ties by
    rounding), at most 1. Pearson's null distribution is not symmetric, so this is not the
    share with a larger |r|. A Monte Carlo tail counts the observed pairing once more,
    (k + 1)/(m + 1), so it is never 0."""
    perms = _pairings(len(x), n_resamples, seed)
    exact = len(x) <= EXACT_PERMUTATION_MAX_N
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    out = []
    for a, b in ((rx, ry), (x, y)):
        observed = float(rowwise_pearson(a, b))
        null = rowwise_pearson(a[None, :], b[perms])
        tol = 1e-12 * max(abs(observed), 1e-3)
        tails = np.array([(null <= observed + tol).sum(), (null >= observed - tol).sum()])
        share = tails / len(perms) if exact else (tails + 1) / (len(perms) + 1)
        out.append(float(min(1.0, 2 * share.min())))
    return out[0], out[1], exact


def fisher_ci(
    r: float, n: int, confidence: float, spearman: bool = False
) -> tuple[float | None, float | None]:
    """Fisher-z interval of a correlation; None with n < 4 (no degrees of freedom)."""
    if n < 4 or not math.isfinite(r):
        return None, None
    se = math.sqrt((1 + r * r / 2 if spearman else 1.0) / (n - 3))
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(divide="ignore"):
        center = float(np.arctanh(max(-1.0, min(1.0, r))))  # ±inf at |r| = 1: [r, r]
    return math.tanh(center - z * se), math.tanh(center + z * se)


def ols(x: np.ndarray, y: np.ndarray, confidence: float) -> dict[str, float | None]:
    """Slope and intercept of y on x, the slope's t interval (n - 2 df) and its p-value."""
    fit = stats.linregress(x, y)
    out: dict[str, float | None] = {
        "slope": float(fit.slope),
        "intercept": float(fit.intercept),
        "slope_p": _finite(fit.pvalue),
        "slope_ci_low": None,
        "slope_ci_high": None,
    }
    if len(x) > 2 and math.isfinite(fit.stderr):
        t = stats.t.ppf(0.5 + confidence / 2, len(x) - 2)
        out["slope_ci_low"] = float(fit.slope - t * fit.stderr)
        out["slope_ci_high"] = float(fit.slope + t * fit.stderr)
    return out


def _finite(value: Any) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def spans_zero(low: float | None, high: float | None) -> bool:
    return low is None or high is None or low <= 0 <= high


def verdict(row: dict[str, Any], confidence: float, min_corpora: int) -> tuple[str, str]:
    """("supported" | "no claim" | "too few corpora", why) for one panel.

    The rule: a panel supports a claim only with at least ``min_corpora`` corpora, a Spearman
    permutation p below 1 - confidence, and both Spearman intervals (bootstrap and Fisher-z) and
    the OLS slope's interval on one side of 0."""
    n = row.get("n", 0)
    if n < min_corpora:
        return "too few corpora", f"n={n} < {min_corpora}"
    if row.get("spearman") is None:
        return "no claim", row.get("note") or "ρ undefined"
    failed = [
        name
        for name, low, high in (
            ("bootstrap CI", row.get("spearman_ci_low"), row.get("spearman_ci_high")),
            ("Fisher-z CI", row.get("spearman_fisher_low"), row.get("spearman_fisher_high")),
            ("slope CI", row.get("slope_ci_low"), row.get("slope_ci_high")),
        )
        if spans_zero(low, high)
    ]
    p = row.get("spearman_perm_p")
    if p is None or p >= 1 - confidence:
        failed.append(f"permutation p={'—' if p is None else f'{p:.3f}'} ≥ {1 - confidence:.2g}")
    if failed:
        return "no claim", "; ".join(f"{f} spans 0" if "CI" in f else f for f in failed)
    return "supported", "every interval excludes 0"
