"""The one sampling protocol of every size-dependent metric, and its intervals.

Corpora of different sizes are compared on equal footing (the paper: one equal-size subsample
per corpus): for seed s in ``ctx.seeds()``, every metric reads the *same* seeded subsample of
``m = min(ctx.sample_size, n)`` documents (:func:`subsample_indices`, the draw of
``Corpus.sample``), and the value is the mean over seeds. How the interval is obtained depends on
the cost of the metric:

- :func:`subsample_with_half_sample_ci` — cheap metrics (lexical, Vendi, pairwise cosine,
  remote-clique). The interval comes from ``ctx.n_resamples`` seeded half-samples: replicate r
  takes ⌊m/2⌋ documents without replacement from seed ``r mod B``'s subsample. A with-replacement
  bootstrap would duplicate documents, which fakes repetition in distinct-n, self-repetition and
  compression. For a mean, an m/2-of-m draw has variance σ²/m (finite-population correction), the
  variance of a size-m estimate, so the interval is ``value ± t · sd(replicates)``: it reflects
  which documents a size-m sample holds, which is also what separates seeds when n ≫ m. Hundreds
  of replicates cost milliseconds here, so the interval does not depend on ``n_seeds`` (a
  Student-t over 2 seeds multiplies the SD by 12.7). Size-dependent statistics have half-sample
  values shifted from ``value``; only their spread is used.
- :func:`seeded_subsamples` — costly metrics (a language model, k-means, the cluster-agent): the
  metric once per seed on the same subsamples, mean and Student-t interval over seeds
  (:func:`synthdiv.metrics.base.mean_ci`), the paper's protocol.

Both fill ``n`` (= m), ``seed``, ``per_seed`` and ``details["protocol"]``, so every result says
how it was obtained.
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

HALF_SAMPLE = "subsample_mean+half_sample_ci"
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


def subsample_size(n_docs: int, wanted: int | None) -> int:
    """Documents per seeded subsample: ``wanted`` (the score stage's sample_size), at most n."""
    return n_docs if wanted is None else min(wanted, n_docs)


def subsample_indices(n_docs: int, size: int, seed: int) -> np.ndarray:
    """The sorted document indices of seed ``seed``'s subsample: the very draw of
    ``Corpus.sample(size, seed)``, so cheap and costly metrics read the same documents."""
    if size >= n_docs:
        return np.arange(n_docs)
    return np.sort(np.random.default_rng(seed).choice(n_docs, size=size, replace=False))


def half_sample_indices(n_docs: int, seed: int | list[int]) -> np.ndarray:
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


def half_sample_replicates(
    sizes: list[int], statistic: Callable[[int, np.ndarray], float], ctx: MetricContext
) -> list[float]:
    """``ctx.n_resamples`` values of ``statistic(j, half)``: replicate r reads a seeded half of
    seed ``j = r mod B``'s subsample (``half`` indexes into it). Empty when a subsample has a
    single document (no spread to estimate)."""
    if not sizes or min(sizes) < 2:
        return []
    out = []
    for r in range(ctx.n_resamples):
        j = r % len(sizes)
        out.append(float(statistic(j, half_sample_indices(sizes[j], [ctx.seed, r]))))
    return out


def subsample_with_half_sample_ci(
    metric: Any,
    n_docs: int,
    statistic: IndexStatistic,
    ctx: MetricContext,
    details: dict[str, Any] | None = None,
) -> MetricResult:
    """Mean of ``statistic`` over the seeds' subsamples, interval from ``ctx.n_resamples``
    half-samples of them (see module doc). ``statistic`` takes indices into the corpus."""
    if n_docs == 0:
        raise ValueError(f"metric {metric.name!r}: the corpus is empty")
    started = time.perf_counter()
    size = subsample_size(n_docs, ctx.sample_size)
    subsamples = [subsample_indices(n_docs, size, s) for s in ctx.seeds()]
    if size == n_docs:  # every seed draws the whole corpus: compute it once
        per_seed = [float(statistic(subsamples[0]))] * len(subsamples)
    else:
        per_seed = [float(statistic(idx)) for idx in subsamples]
    value = float(np.mean(per_seed))
    replicates = half_sample_replicates(
        [size] * len(subsamples), lambda j, half: statistic(subsamples[j][half]), ctx
    )
    low, high = half_sample_interval(value, replicates, ctx.confidence)
    info = {
        "protocol": HALF_SAMPLE,
        "sample_size": size,
        "corpus_size": n_docs,
        "seeds": ctx.seeds(),
        "seed_sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
        "replicate_size": max(1, size // 2),
        "n_replicates": len(replicates),
        "replicate_sd": float(np.std(replicates, ddof=1)) if len(replicates) > 1 else 0.0,
    }
    if size < 4:  # a replicate of one document: pairwise and Vendi cannot vary, say so
        info["ci_note"] = f"half-samples of {max(1, size // 2)} document(s): degenerate interval"
    return _result(
        metric, value, low, high, size, ctx.seed, per_seed, info | (details or {}), started
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
    size = subsample_size(len(corpus), sample_size if sample_size is not None else ctx.sample_size)
    values, per_seed_details = [], []
    for i, seed in enumerate(ctx.seeds()):
        if ctx.progress is not None:
            ctx.progress(metric.name, i, ctx.n_seeds)
        idx = subsample_indices(len(corpus), size, seed)
        subsample = corpus if size == len(corpus) else corpus.take(idx.tolist())
        value, info = statistic(subsample, seed)
        values.append(float(value))
        per_seed_details.append(info)
    mean, low, high = mean_ci(values, ctx.confidence)
    info = {
        "protocol": SUBSAMPLE,
        "sample_size": size,
        "corpus_size": len(corpus),
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
