"""The two resampling protocols every baseline metric reports its uncertainty with.

- :func:`exact_with_half_sample_ci` — for metrics that are cheap and (near-)linear in documents:
  the value is computed exactly on the whole corpus; its spread comes from ``ctx.n_seeds``
  seeded half-samples of the documents (drawn without replacement). Half-sampling is the
  bootstrap variant for set-based statistics: a with-replacement bootstrap duplicates documents,
  which fakes repetition in distinct-n, self-repetition and compression. For a mean, the
  variance of an n/2-of-n subsample without replacement equals ``σ²/n`` (finite-population
  correction), i.e. the variance of the full-corpus estimate, so the interval is
  ``value ± t_{B-1} · sd(half-sample values)``. It always brackets ``value``. Statistics that
  grow or shrink with corpus size (distinct-n, self-repetition) have half-sample values shifted
  from ``value``; only their spread is used.
- :func:`seeded_subsamples` — for metrics that are costly (a language model, k-means) or that
  have their own randomness: ``ctx.n_seeds`` seeded subsamples of ``ctx.sample_size`` documents
  (the whole corpus if that is None or larger), the metric on each, and the mean with a
  Student-t interval (:func:`synthdiv.metrics.base.mean_ci`) — the paper's protocol.

Both fill ``n``, ``seed``, ``per_seed`` and ``details["protocol"]``, so every result says how it
was obtained.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from scipy import stats

from synthdiv.config import StrictModel, parse_config
from synthdiv.corpus import Corpus
from synthdiv.metrics.base import MetricContext, MetricResult, mean_ci

HALF_SAMPLE = "exact+half_sample_ci"
SUBSAMPLE = "seeded_subsample_mean_t"

# statistic(document indices into the corpus) -> value
IndexStatistic = Callable[[np.ndarray], float]
# statistic(subsample, seed) -> (value, details of this subsample)
SubsampleStatistic = Callable[[Corpus, int], tuple[float, dict[str, Any]]]


class ConfiguredMetric:
    """Base for metrics with typed parameters: ``Metric(**params)`` validates them against the
    class's ``Params`` (a :class:`StrictModel`), so an unknown or ill-typed key in a config's
    ``metrics: {name: {...}}`` block fails at load time with the metric and key named."""

    name: ClassVar[str]
    version: ClassVar[str]
    higher_is_more_diverse: ClassVar[bool]
    Params: ClassVar[type[StrictModel]] = StrictModel

    def __init__(self, **params: Any):
        self.params = parse_config(params, self.Params, f"for metric {self.name!r}")


def half_sample_indices(n_docs: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n_docs // 2`` documents (at least one), drawn without replacement."""
    size = max(1, n_docs // 2)
    return np.sort(np.random.default_rng(seed).choice(n_docs, size=size, replace=False))


def half_sample_interval(
    value: float, replicates: list[float], confidence: float
) -> tuple[float, float]:
    """``value ± t · sd(replicates)``; a zero-width interval when there is no spread to estimate."""
    arr = np.asarray(replicates, dtype=float)
    if len(arr) < 2 or float(np.ptp(arr)) == 0.0:
        return value, value
    half = float(stats.t.ppf(0.5 + confidence / 2, len(arr) - 1) * arr.std(ddof=1))
    return value - half, value + half


def exact_with_half_sample_ci(
    metric: Any,
    n_docs: int,
    statistic: IndexStatistic,
    ctx: MetricContext,
    details: dict[str, Any] | None = None,
) -> MetricResult:
    """Exact value on all ``n_docs`` documents, interval from seeded half-samples (see module
    doc)."""
    if n_docs == 0:
        raise ValueError(f"metric {metric.name!r}: the corpus is empty")
    started = time.perf_counter()
    value = float(statistic(np.arange(n_docs)))
    replicates = (
        [float(statistic(half_sample_indices(n_docs, s))) for s in ctx.seeds()]
        if n_docs > 1
        else []
    )
    low, high = half_sample_interval(value, replicates, ctx.confidence)
    info = {
        "protocol": HALF_SAMPLE,
        "replicate_size": max(1, n_docs // 2),
        "n_replicates": len(replicates),
    }
    return _result(
        metric, value, low, high, n_docs, ctx.seed, replicates, info | (details or {}), started
    )


def seeded_subsamples(
    metric: Any,
    corpus: Corpus,
    statistic: SubsampleStatistic,
    ctx: MetricContext,
    sample_size: int | None = None,
) -> MetricResult:
    """Mean ± t-interval of ``statistic`` over ``ctx.n_seeds`` seeded fixed-size subsamples of
    ``sample_size`` documents (a metric's own override) or else ``ctx.sample_size``."""
    if len(corpus) == 0:
        raise ValueError(f"metric {metric.name!r}: the corpus is empty")
    started = time.perf_counter()
    wanted = sample_size if sample_size is not None else ctx.sample_size
    size = len(corpus) if wanted is None else min(wanted, len(corpus))
    values, per_seed_details = [], []
    for i, seed in enumerate(ctx.seeds()):
        if ctx.progress is not None:
            ctx.progress(metric.name, i, ctx.n_seeds)
        value, info = statistic(corpus.sample(size, seed), seed)
        values.append(float(value))
        per_seed_details.append(info)
    mean, low, high = mean_ci(values, ctx.confidence)
    info = {
        "protocol": SUBSAMPLE,
        "sample_size": size,
        "seeds": ctx.seeds(),
        "per_seed_details": per_seed_details,
    }
    return _result(metric, mean, low, high, size, ctx.seed, values, info, started)


def _result(
    metric: Any,
    value: float,
    low: float,
    high: float,
    n: int,
    seed: int,
    per_seed: list[float],
    details: dict[str, Any],
    started: float,
) -> MetricResult:
    return MetricResult(
        name=metric.name,
        version=metric.version,
        value=value,
        ci_low=low,
        ci_high=high,
        n=n,
        seed=seed,
        higher_is_more_diverse=metric.higher_is_more_diverse,
        per_seed=per_seed,
        details={"params": metric.params.model_dump(mode="json")} | details,
        seconds=time.perf_counter() - started,
    )
