"""Correlation math on synthetic data whose correlation is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from synthdiv.analysis import (
    NEAR_CONSTANT_SPREAD,
    Correlation,
    Point,
    Score,
    correlate,
    correlate_study,
    correlations_markdown,
    paired_bootstrap,
    rank_metrics,
    size_key,
)


def test_perfect_monotone_gives_rho_one_and_a_degenerate_ci():
    x = np.arange(8.0)
    y = np.exp(x / 3)  # monotone but not linear: Spearman 1, Pearson < 1
    out = correlate(x, y, n_boot=500, seed=0)
    assert out["spearman"] == pytest.approx(1.0)
    assert out["spearman_ci_low"] == pytest.approx(1.0)
    assert out["spearman_ci_high"] == pytest.approx(1.0)
    assert 0.8 < out["pearson"] < 1.0
    assert out["pearson_ci_high"] <= 1.0 + 1e-12


def test_perfect_anticorrelation():
    out = correlate([1, 2, 3, 4, 5], [9, 7, 5, 3, 1], n_boot=300, seed=1)
    assert out["spearman"] == pytest.approx(-1.0)
    assert out["pearson"] == pytest.approx(-1.0)
    assert out["spearman_ci_high"] == pytest.approx(-1.0)


def test_point_estimates_match_scipy_and_ci_contains_them():
    rng = np.random.default_rng(3)
    x = rng.normal(size=30)
    y = 0.6 * x + rng.normal(scale=0.8, size=30)
    out = correlate(x, y, n_boot=2000, seed=0)
    assert out["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert out["pearson"] == pytest.approx(stats.pearsonr(x, y).statistic)
    assert out["spearman_ci_low"] < out["spearman"] < out["spearman_ci_high"]
    assert out["pearson_ci_low"] < out["pearson"] < out["pearson_ci_high"]
    assert out["n_boot_valid"] == 2000  # with 30 points no resample is degenerate


def test_ci_narrows_with_more_corpora_and_is_seeded():
    rng = np.random.default_rng(7)
    x = rng.normal(size=200)
    y = 0.5 * x + rng.normal(size=200)
    small = correlate(x[:12], y[:12], n_boot=1000, seed=0)
    large = correlate(x, y, n_boot=1000, seed=0)

    def width(o):
        return o["spearman_ci_high"] - o["spearman_ci_low"]

    assert width(large) < width(small)
    assert correlate(x[:12], y[:12], n_boot=1000, seed=0) == small
    assert correlate(x[:12], y[:12], n_boot=1000, seed=1) != small


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_points_for_any_correlation(n):
    out = correlate(list(range(n)), list(range(n)))
    assert out["n"] == n
    assert "spearman" not in out and "spearman_ci_low" not in out
    assert "undefined" in out["note"]


def test_three_points_give_rho_but_no_ci():
    out = correlate([1.0, 2.0, 3.0], [0.1, 0.3, 0.2])
    assert out["n"] == 3
    assert out["spearman"] == pytest.approx(0.5)
    assert "spearman_ci_low" not in out
    assert "CI undefined" in out["note"]


def test_constant_metric_is_reported_not_nan():
    out = correlate([2.0, 2.0, 2.0, 2.0], [0.1, 0.2, 0.3, 0.4])
    assert "spearman" not in out
    assert out["note"] == "constant metric values"


def test_values_differing_only_by_rounding_count_as_constant():
    # one value plus noise far below its magnitude: ranking the noise would give rho = 1
    base = 0.7310585786300049
    noisy = base + np.arange(6) * base * NEAR_CONSTANT_SPREAD / 10
    assert np.ptp(noisy) > 0 and stats.spearmanr(noisy, np.arange(6)).statistic == 1.0
    out = correlate(noisy, np.arange(6.0))
    assert "spearman" not in out and out["note"] == "constant metric values"
    assert correlate(np.arange(6.0), noisy)["note"] == "constant accuracy"
    # the rule is relative: small values that really differ still correlate
    tiny = np.arange(1.0, 7.0) * 1e-12
    assert correlate(tiny, np.arange(6.0), n_boot=100)["spearman"] == pytest.approx(1.0)


def test_bootstrap_treats_near_constant_resamples_as_degenerate():
    x = np.array([1.0, 1.0 + 1e-13, 2.0, 3.0])  # the first two differ only by rounding
    y = np.array([1.0, 2.0, 3.0, 4.0])
    rho, _, _ = paired_bootstrap(x, y, 4000, seed=0)
    exact, _, _ = paired_bootstrap(np.array([1.0, 1.0, 2.0, 3.0]), y, 4000, seed=0)
    assert len(rho) == len(exact)  # the same resamples are dropped as for exactly equal values


def test_bootstrap_drops_degenerate_resamples_with_four_points():
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])
    rho, r, _ = paired_bootstrap(x, y, 4000, seed=0)
    assert 3000 < len(rho) < 4000  # all-one-corpus and constant resamples are removed
    assert np.isfinite(rho).all() and np.isfinite(r).all()
    assert len(rho) == len(r)


def _points(metric_values, accs, size="350M", variant="base"):
    return [
        Point(f"d{i}", size, variant, acc, {"m_up": Score(v), "m_down": Score(-v)})
        for i, (v, acc) in enumerate(zip(metric_values, accs, strict=True))
    ]


def test_study_panels_directions_and_ranking():
    pts = _points([1, 2, 3, 4, 5], [0.40, 0.42, 0.45, 0.47, 0.50])
    pts += _points([1, 2, 3, 4, 5], [0.50, 0.52, 0.51, 0.55, 0.56], variant="sft")
    pts += _points([1, 2, 3], [0.3, 0.2, 0.1], size="1.4B")
    corrs = correlate_study(pts, {"m_up": True, "m_down": False}, n_boot=300)
    assert {(c.model_size, c.variant) for c in corrs} == {
        ("350M", "base"),
        ("350M", "sft"),
        ("1.4B", "base"),
    }
    base_up = next(
        c for c in corrs if (c.metric, c.model_size, c.variant) == ("m_up", "350M", "base")
    )
    base_down = next(
        c for c in corrs if (c.metric, c.model_size, c.variant) == ("m_down", "350M", "base")
    )
    assert base_up.spearman == pytest.approx(1.0) and base_down.spearman == pytest.approx(-1.0)
    # a lower-is-more-diverse metric that falls as accuracy rises says the same thing: +1
    assert base_down.directional_spearman == pytest.approx(1.0)
    big = next(c for c in corrs if c.metric == "m_up" and c.model_size == "1.4B")
    assert big.n == 3 and big.spearman_ci_low is None
    ranks = rank_metrics(corrs)
    assert [r.n_panels for r in ranks] == [3, 3]
    assert ranks[0].mean_abs_spearman == pytest.approx(ranks[1].mean_abs_spearman)
    assert ranks[0].mean_directional_spearman == pytest.approx(ranks[1].mean_directional_spearman)


def test_markdown_marks_undefined_cis_with_the_reason():
    corr = Correlation(
        "vendi", "tiny", "base", n=3, direction=1, spearman=0.5, note="n=3 < 4: CI undefined"
    )
    md = correlations_markdown([corr], "eval.avg", 0.95)
    assert "| vendi | tiny | base | 3 | 0.500 | undefined (n=3 < 4: CI undefined)" in md


def test_size_labels_sort_numerically():
    assert sorted(["1.4B", "350M", "tiny", "135M"], key=size_key) == [
        "135M",
        "350M",
        "1.4B",
        "tiny",
    ]
