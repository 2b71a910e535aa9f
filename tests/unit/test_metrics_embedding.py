"""Embedding metrics: formulas on synthetic vectors, reference (vendi-score) agreement, params
validation and the protocols. Direction on real MiniLM embeddings is an integration test
(tests/integration/test_metrics_embedding_minilm.py): unit tests load no model."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from synthdiv.config import ConfigError
from synthdiv.corpus import Corpus
from synthdiv.metrics import MetricContext, available, create
from synthdiv.metrics.embedding import (
    MIN_DOCS_PER_CLUSTER,
    KMeansScore,
    PairwiseCosineDistance,
    RemoteClique,
    VendiScore,
    hill_number,
    mean_pairwise_cosine_distance,
    remote_clique,
    unit_rows,
    vendi_dual,
    vendi_kernel,
)
from tests.support.vectors import vector_corpus

GOLDEN = json.loads((Path(__file__).parent / "golden" / "vendi.json").read_text())
# k below the topic counts: k-means residual spread grows with topics only once topics exceed k.
ALL = [VendiScore(), PairwiseCosineDistance(), RemoteClique(), KMeansScore(k=2)]


def topic_vectors(
    n_topics: int, n: int = 240, dim: int = 32, spread: float = 0.15, seed: int = 0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_topics, dim))
    return (centres[np.arange(n) % n_topics] + spread * rng.standard_normal((n, dim))).astype(
        np.float32
    )


def cosine_distance_matrix(x: np.ndarray) -> np.ndarray:
    u = unit_rows(x)
    return 1.0 - u @ u.T


# --- formulas -------------------------------------------------------------------------------------


def test_vendi_dual_matches_reference_package():
    x = unit_rows(np.asarray(GOLDEN["vectors"]))
    assert vendi_dual(x, q=1) == pytest.approx(GOLDEN["score_dual"]["q=1"], abs=1e-6)
    assert vendi_dual(x, q=2) == pytest.approx(GOLDEN["score_dual"]["q=2"], abs=1e-6)
    assert vendi_kernel(x, q=1) == pytest.approx(GOLDEN["score_X"], abs=1e-6)


@pytest.mark.parametrize("q", [0.5, 1, 2, "inf"])
def test_vendi_dual_equals_kernel_form(q):
    x = unit_rows(topic_vectors(5, n=80, dim=16))
    assert vendi_dual(x, q) == pytest.approx(vendi_kernel(x, q), rel=1e-9)


def test_vendi_bounds_identical_and_orthogonal():
    assert vendi_dual(unit_rows(np.ones((10, 4)))) == pytest.approx(1.0)
    assert vendi_dual(np.eye(6)) == pytest.approx(6.0)  # n mutually orthogonal documents
    assert hill_number(np.array([0.5, 0.5, 0.0]), 2) == pytest.approx(2.0)


def test_pairwise_distance_and_remote_clique_match_the_full_matrix():
    x = topic_vectors(3, n=50)
    d = cosine_distance_matrix(x)
    n = len(x)
    assert mean_pairwise_cosine_distance(unit_rows(x)) == pytest.approx(
        d.sum() / (n * (n - 1)), abs=1e-12
    )
    assert remote_clique(unit_rows(x)) == pytest.approx(
        d.mean(axis=1).mean(), abs=1e-12
    )  # self included
    assert mean_pairwise_cosine_distance(unit_rows(np.ones((5, 3)))) == pytest.approx(
        0.0, abs=1e-12
    )
    assert mean_pairwise_cosine_distance(np.eye(4)) == pytest.approx(1.0)


def test_kmeans_identical_points_score_zero():
    corpus, ctx = vector_corpus(np.tile(np.arange(1, 9, dtype=np.float32), (50, 1)), n_seeds=2)
    result = KMeansScore(k=5).compute(corpus, ctx)
    assert result.value == pytest.approx(0.0, abs=1e-6)
    assert result.details["per_seed_details"][0]["nonempty_clusters"] == 1


def test_kmeans_chooses_k_from_the_corpus_size():
    # 20 documents, default k=100: k = 20 // 5 = 4 clusters of ~5, whose residual spread is the
    # within-topic spread, not the float noise of one document per centroid (k = n: ~1e-8).
    x = topic_vectors(4, n=20)
    result = KMeansScore().compute(*vector_corpus(x, n_seeds=2))
    assert [d["k"] for d in result.details["per_seed_details"]] == [20 // MIN_DOCS_PER_CLUSTER] * 2
    u = unit_rows(x)
    centres = unit_rows(np.stack([u[t::4].sum(axis=0) for t in range(4)]))
    within_topic = float(np.mean(1 - np.einsum("ij,ij->i", u, centres[np.arange(20) % 4])))
    # k clusters leave at least about the spread around the k topic means (a local optimum of
    # k-means leaves more); the old k = n left ~1e-8
    assert result.value > 0.5 * within_topic
    smaller = KMeansScore(k=3).compute(*vector_corpus(x, n_seeds=1))
    assert smaller.details["per_seed_details"][0]["k"] == 3  # a configured k below the cap stays


def test_kmeans_is_undefined_below_two_clusters_worth_of_documents():
    n = 2 * MIN_DOCS_PER_CLUSTER
    corpus, ctx = vector_corpus(topic_vectors(2, n=n - 1), n_seeds=2)
    result = KMeansScore().compute(corpus, ctx)
    assert math.isnan(result.value) and all(math.isnan(v) for v in result.per_seed)
    assert f"needs >= {n} documents" in result.details["undefined"]
    defined = KMeansScore().compute(*vector_corpus(topic_vectors(2, n=n), n_seeds=2))
    assert math.isfinite(defined.value) and "undefined" not in defined.details


# --- direction -----------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ALL, ids=lambda m: m.name)
def test_more_topics_score_more_diverse_on_synthetic_vectors(metric):
    values = []
    for n_topics in (1, 3, 12):
        corpus, ctx = vector_corpus(topic_vectors(n_topics), n_seeds=3, sample_size=200)
        values.append(metric.compute(corpus, ctx).value)
    assert values[0] < values[1] < values[2]


# --- params, protocol ----------------------------------------------------------------------------


def test_registered_with_validated_params():
    assert {"vendi", "pairwise_cosine_distance", "remote_clique", "kmeans"} <= set(available())
    assert create("vendi", q="inf").params.q == "inf"
    assert create("kmeans", k=7).params.k == 7
    with pytest.raises(ConfigError, match="clusters"):
        create("kmeans", clusters=7)
    with pytest.raises(ConfigError, match="k"):
        KMeansScore(k=1)


def test_missing_embeddings_is_a_clear_error():
    for metric in ALL:
        with pytest.raises(ValueError, match="needs embeddings"):
            metric.compute(Corpus(ids=["a"], texts=["x"]), MetricContext())


def test_misaligned_embeddings_are_rejected():
    corpus = Corpus(ids=["a", "b"], texts=["x", "y"])
    ctx = MetricContext(embeddings=lambda sub: np.ones((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="3 embeddings for 2 documents"):
        VendiScore().compute(corpus, ctx)


@pytest.mark.parametrize("metric", ALL, ids=lambda m: m.name)
def test_interval_brackets_value_and_is_deterministic(metric):
    x = topic_vectors(6, n=300)
    runs = []
    for seed in (3, 3, 4):
        corpus, ctx = vector_corpus(x, seed=seed, n_seeds=4, sample_size=150)
        runs.append(metric.compute(corpus, ctx))
    first, again, other = runs
    assert first.ci_low < first.value < first.ci_high
    assert (first.value, first.per_seed) == (again.value, again.per_seed)
    assert first.per_seed != other.per_seed and len(first.per_seed) == 4 and first.seed == 3
    assert first.n == 150  # every metric: the seeds' subsamples of sample_size


@pytest.mark.parametrize("metric", [VendiScore(), PairwiseCosineDistance()], ids=lambda m: m.name)
def test_sample_size_gives_the_subsample_kmeans_and_the_lexical_metrics_read(metric):
    """Item 8: per seed, the metric on ``Corpus.sample(m, seed)`` (what k-means, perplexity and the
    lexical metrics read), not on the whole corpus; the value is their mean."""
    x = topic_vectors(6, n=300)
    corpus, ctx = vector_corpus(x, seed=2, n_seeds=3, sample_size=40)
    result = metric.compute(corpus, ctx)
    alone = []
    for s in ctx.seeds():
        sub = corpus.sample(40, s)
        one = dataclasses.replace(ctx, n_seeds=1, sample_size=None)
        alone.append(metric.compute(sub, one).value)
    assert result.per_seed == pytest.approx(alone, rel=1e-9)
    assert result.value == pytest.approx(np.mean(alone), rel=1e-9) and result.n == 40
