"""Small-n statistics (4-8 corpora) against scipy's references, stderr propagation, verdicts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from synthdiv.analysis import (
    MIN_CORPORA_FOR_CLAIM,
    Point,
    Score,
    correlate,
    correlate_study,
    correlations_markdown,
)
from synthdiv.stats import fisher_ci, ols, paired_bootstrap, permutation_pvalues


def _data(n: int, seed: int = 0, effect: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return x, effect * x + rng.normal(scale=0.8, size=n)


def _scipy_perm_p(x, y, spearman: bool, n_resamples=np.inf):
    """scipy's permutation test, vectorized over its batches of pairings (n = 8: 40320)."""

    def statistic(yy, axis=-1):
        if spearman:
            return stats.pearsonr(stats.rankdata(x), stats.rankdata(yy, axis=axis), axis=axis)[0]
        return stats.pearsonr(x, yy, axis=axis).statistic

    return stats.permutation_test(
        (y,),
        statistic,
        permutation_type="pairings",
        n_resamples=n_resamples,
        alternative="two-sided",
        vectorized=True,
    ).pvalue


@pytest.mark.parametrize("n, seed", [(4, 0), (5, 1), (6, 2), (8, 3)])
def test_exact_permutation_p_matches_scipy(n, seed):
    x, y = _data(n, seed)
    rho_p, r_p, exact = permutation_pvalues(x, y)
    assert exact
    spearman = _scipy_perm_p(x, y, True)
    pearson = _scipy_perm_p(x, y, False)
    assert rho_p == pytest.approx(spearman, abs=1e-12)
    assert r_p == pytest.approx(pearson, abs=1e-12)


def test_the_vectorized_reference_is_scipys_spearman():
    x, y = _data(5, seed=1)
    plain = stats.permutation_test(
        (y,), lambda yy: stats.spearmanr(x, yy).statistic, permutation_type="pairings"
    ).pvalue
    assert _scipy_perm_p(x, y, True) == pytest.approx(plain)


def test_a_perfect_ordering_of_four_corpora_is_not_significant():
    rho_p, _, _ = permutation_pvalues(np.arange(4.0), np.arange(4.0) ** 2)
    assert rho_p == pytest.approx(2 / 24)  # ρ = ±1 in 2 of 4! pairings
    rho_p5, _, _ = permutation_pvalues(np.arange(5.0), np.arange(5.0) ** 2)
    assert rho_p5 == pytest.approx(2 / 120)


def test_monte_carlo_permutation_p_above_eight_corpora():
    x, y = _data(12, seed=4, effect=0.3)
    rho_p, r_p, exact = permutation_pvalues(x, y, n_resamples=20_000, seed=0)
    assert not exact
    reference = _scipy_perm_p(x, y, False, 20_000)
    assert r_p == pytest.approx(reference, abs=0.015)  # two Monte Carlo estimates
    assert 0 < rho_p <= 1


@pytest.mark.parametrize("n", [4, 6, 8])
def test_fisher_interval_of_pearson_matches_scipy(n):
    x, y = _data(n, seed=n)
    r = stats.pearsonr(x, y)
    reference = r.confidence_interval(confidence_level=0.9)
    low, high = fisher_ci(r.statistic, n, 0.9)
    assert (low, high) == pytest.approx((reference.low, reference.high), rel=1e-9)


def test_fisher_interval_of_spearman_uses_bonett_wright_and_needs_four_points():
    rho, n = 0.6, 7
    low, high = fisher_ci(rho, n, 0.95, spearman=True)
    se = np.sqrt((1 + rho**2 / 2) / (n - 3))
    z = stats.norm.ppf(0.975)
    assert (low, high) == pytest.approx(
        (np.tanh(np.arctanh(rho) - z * se), np.tanh(np.arctanh(rho) + z * se))
    )
    assert fisher_ci(0.9, 3, 0.95) == (None, None)
    assert fisher_ci(1.0, 6, 0.95) == (1.0, 1.0)


@pytest.mark.parametrize("n", [3, 5, 8])
def test_ols_slope_and_interval_match_linregress(n):
    x, y = _data(n, seed=10 + n)
    fit = stats.linregress(x, y)
    out = ols(x, y, 0.95)
    t = stats.t.ppf(0.975, n - 2)
    assert out["slope"] == pytest.approx(fit.slope)
    assert out["intercept"] == pytest.approx(fit.intercept)
    assert out["slope_p"] == pytest.approx(fit.pvalue)
    assert (out["slope_ci_low"], out["slope_ci_high"]) == pytest.approx(
        (fit.slope - t * fit.stderr, fit.slope + t * fit.stderr)
    )


def test_bootstrap_without_stderr_agrees_with_scipy_percentile_bootstrap():
    x, y = _data(30, seed=5)
    ours = correlate(x, y, n_boot=4000, seed=0)
    ref = stats.bootstrap(
        (x, y),
        lambda a, b: stats.pearsonr(a, b).statistic,
        paired=True,
        vectorized=False,
        n_resamples=4000,
        method="percentile",
        rng=np.random.default_rng(1),
    ).confidence_interval
    assert ours["pearson_ci_low"] == pytest.approx(ref.low, abs=0.05)
    assert ours["pearson_ci_high"] == pytest.approx(ref.high, abs=0.05)


def test_accuracy_stderr_widens_the_bootstrap_interval():
    x = np.arange(6.0)
    y = 0.40 + 0.01 * x  # a one-point-per-corpus effect, like the paper's
    exact = correlate(x, y, n_boot=3000, seed=0)
    noisy = correlate(x, y, y_err=[0.01] * 6, n_boot=3000, seed=0)
    assert exact["spearman_ci_low"] == pytest.approx(1.0)  # without eval noise: "certain"
    assert noisy["stderr_propagated"] and not exact["stderr_propagated"]
    assert noisy["spearman_ci_low"] < 0.5  # stderr as big as the effect: far from certain
    assert noisy["spearman"] == exact["spearman"]  # point estimates are the observed ones
    # the redraw is N(y, stderr²): zero stderr reproduces the plain bootstrap exactly
    for with_zero, plain in zip(
        paired_bootstrap(x, y, 500, 0, np.zeros(6)), paired_bootstrap(x, y, 500, 0), strict=True
    ):
        assert np.array_equal(with_zero, plain)


def test_a_missing_stderr_disables_propagation_for_the_panel():
    x, y = np.arange(6.0), 0.40 + 0.01 * np.arange(6.0)
    out = correlate(x, y, y_err=[0.01, None, 0.01, 0.01, 0.01, 0.01], n_boot=500)
    assert not out["stderr_propagated"] and out["spearman_ci_low"] == pytest.approx(1.0)


def _points(values, accs, errs=None):
    errs = errs or [None] * len(values)
    return [
        Point(f"d{i}", "tiny", "base", a, {"m": Score(v)}, accuracy_stderr=e)
        for i, (v, a, e) in enumerate(zip(values, accs, errs, strict=True))
    ]


def test_verdicts_follow_the_stated_rule():
    few = correlate_study(_points([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]), {}, n_boot=300)[0]
    assert few.verdict == "too few corpora" and f"< {MIN_CORPORA_FOR_CLAIM}" in few.verdict_reason
    strong = correlate_study(
        _points(list(range(8)), [0.1 + 0.05 * i for i in range(8)]), {}, n_boot=500
    )[0]
    assert strong.verdict == "supported" and strong.perm_exact
    assert strong.spearman_perm_p == pytest.approx(2 / 40320)
    noisy = correlate_study(
        _points(list(range(8)), [0.4 + 0.001 * i for i in range(8)], [0.02] * 8), {}, n_boot=500
    )[0]
    assert noisy.verdict == "no claim" and "bootstrap CI spans 0" in noisy.verdict_reason
    weak = correlate_study(_points(*_data(6, seed=9)), {}, n_boot=500)[0]
    assert weak.verdict == "no claim" and "permutation p=" in weak.verdict_reason


def test_markdown_states_the_rule_and_each_verdict():
    rows = correlate_study(_points([1, 2, 3, 4], [0.1, 0.3, 0.2, 0.4]), {}, n_boot=300)
    md = correlations_markdown(rows, "eval.avg", 0.95)
    assert "only with n ≥ 5 corpora" in md and "too few corpora (n=4 < 5)" in md
    assert "Fisher-z" in md and "perm p" in md and "slope" in md


def test_every_pairing_is_enumerated_once():
    # the exact test's null distribution is the n! pairings, not a sample of them
    x, y = np.arange(5.0), np.array([0.2, 0.1, 0.4, 0.3, 0.5])
    observed = abs(stats.spearmanr(x, y).statistic)
    null = [abs(stats.spearmanr(x, y[list(p)]).statistic) for p in itertools.permutations(range(5))]
    assert permutation_pvalues(x, y)[0] == pytest.approx(
        np.mean(np.array(null) >= observed - 1e-12)
    )


def test_a_corpus_without_a_metric_value_is_left_out_not_a_significant_p():
    # k-means is undefined on a corpus of fewer documents than clusters: NaN for that corpus.
    x, y = [1.0, float("nan"), 2.0, 3.0, 5.0], [0.1, 0.2, 0.3, 0.2, 0.5]
    out = correlate(x, y, y_err=[0.01] * 5, n_boot=200)
    clean = correlate([1.0, 2.0, 3.0, 5.0], [0.1, 0.3, 0.2, 0.5], y_err=[0.01] * 4, n_boot=200)
    assert out["n"] == 4 and out["spearman"] == clean["spearman"]
    assert out["spearman_perm_p"] == clean["spearman_perm_p"] > 0.05
    assert out["slope"] == clean["slope"] and out["stderr_propagated"]
    assert out["note"].startswith("1 of 5 corpora without a value left out")
    few = correlate([1.0, float("nan"), 2.0], [0.1, 0.2, 0.3])
    assert few.get("spearman") is None and few.get("spearman_perm_p") is None and few["n"] == 2
