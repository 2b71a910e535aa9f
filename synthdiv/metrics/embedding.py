"""Embedding baselines: Vendi score, mean pairwise cosine distance, remote-clique, k-means.

Vectors come from ``ctx.embeddings(corpus)`` (float32 rows aligned with the corpus; the score
stage serves them). They are re-normalised here in float64, since every formula below assumes
unit rows and the sums over 10⁵ rows need the precision. Each formula is O(n·d) or O(n·d²)
(k-means: O(n·k·d) per iteration), never O(n²): the cosine kernel K = XXᵀ is never built.
Definitions and directions are documented in docs/metrics.md.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from synthdiv.config import StrictModel
from synthdiv.corpus import Corpus
from synthdiv.metrics.base import MetricContext, MetricResult, register
from synthdiv.metrics.protocol import (
    ConfiguredMetric,
    seeded_subsamples,
    subsample_with_half_sample_ci,
)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    x = np.array(vectors, dtype=np.float64)  # one float64 copy, normalised in place
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"embeddings must be a non-empty 2-d array, got shape {x.shape}")
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]  # no n×d temporary
    if not np.all(norms > 0):
        raise ValueError("embeddings contain an all-zero row; cannot compute cosine metrics")
    x /= norms
    return x


def row_sum(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Σ of the rows ``idx`` (repeats counted) as one matrix-vector product: no row copies."""
    return np.bincount(idx, minlength=len(x)).astype(np.float64) @ x


def corpus_vectors(corpus: Corpus, ctx: MetricContext, metric: str) -> np.ndarray:
    if ctx.embeddings is None:
        raise ValueError(
            f"metric {metric!r} needs embeddings, but MetricContext.embeddings is not set"
        )
    vectors = ctx.embeddings(corpus)
    if len(vectors) != len(corpus):
        raise ValueError(
            f"metric {metric!r}: {len(vectors)} embeddings for {len(corpus)} documents"
        )
    return unit_rows(vectors)


def hill_number(p: np.ndarray, q: float | Literal["inf"]) -> float:
    """exp of the Rényi entropy of order q of a probability vector (q=1: Shannon)."""
    p = p[p > 0]
    if q == "inf":
        return float(1.0 / p.max())
    if q == 1:
        return float(np.exp(-(p * np.log(p)).sum()))
    return float(np.exp(np.log((p**q).sum()) / (1 - q)))


def _spectrum(matrix: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with rounding noise (|λ| below eigvalsh's precision) set to
    exactly 0: for q < 1 a zero eigenvalue's noise would otherwise count (λ^q ≫ λ)."""
    eigenvalues = np.linalg.eigvalsh(matrix)
    tolerance = len(eigenvalues) * np.finfo(np.float64).eps * max(float(eigenvalues.max()), 0.0)
    return np.where(eigenvalues > tolerance, eigenvalues, 0.0)


def vendi_dual(x: np.ndarray, q: float | Literal["inf"] = 1) -> float:
    """Vendi score of the cosine kernel via its dual: the non-zero eigenvalues of K/n = XXᵀ/n
    equal those of XᵀX/n (d×d), and they sum to 1 for unit rows. With fewer documents than
    dimensions the n×n kernel is the smaller matrix (the half-sample replicates of a small
    corpus: 200 eigendecompositions of 384×384 would cost seconds for nothing)."""
    gram = x @ x.T if len(x) < x.shape[1] else x.T @ x
    return hill_number(_spectrum(gram / len(x)), q)


def vendi_kernel(x: np.ndarray, q: float | Literal["inf"] = 1) -> float:
    """The O(n²) primal form (eigenvalues of XXᵀ/n), for cross-checks and benchmarks only."""
    return hill_number(_spectrum(x @ x.T / len(x)), q)


def mean_pairwise_cosine_distance(x: np.ndarray) -> float:
    """Mean of 1 − cos(xᵢ, xⱼ) over ordered pairs i ≠ j: 1 − (‖Σx‖² − n) / (n(n−1))."""
    return pairwise_from_sum(x.sum(axis=0), len(x))


def pairwise_from_sum(total: np.ndarray, n: int) -> float:
    return float(1.0 - (total @ total - n) / (n * (n - 1))) if n >= 2 else 0.0


def remote_clique(x: np.ndarray) -> float:
    """The `diversity` package's remote-clique: mean over i of the mean over ALL j (self
    included) of 1 − cos(xᵢ, xⱼ) = 1 − ‖mean x‖²; equals (n−1)/n × the pairwise distance."""
    return remote_clique_from_sum(x.sum(axis=0), len(x))


def remote_clique_from_sum(total: np.ndarray, n: int) -> float:
    mean = total / n
    return float(1.0 - mean @ mean)


class VendiParams(StrictModel):
    q: float | Literal["inf"] = Field(
        1.0, description="Order of the Hill number (1 = Shannon; 'inf' allowed)."
    )


@register
class VendiScore(ConfiguredMetric):
    """Vendi score of the cosine kernel (dual form): effective number of distinct documents,
    1..min(n, d)."""

    name: ClassVar[str] = "vendi"
    version: ClassVar[str] = "2"  # 2: mean over the seeds' fixed-size subsamples; half-sample CI
    higher_is_more_diverse: ClassVar[bool] = True
    Params = VendiParams

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult:
        x, q = corpus_vectors(corpus, ctx, self.name), self.params.q
        return subsample_with_half_sample_ci(
            self, len(x), lambda idx: vendi_dual(x[idx], q), ctx, {"dim": x.shape[1]}
        )


class NoParams(StrictModel):
    pass


class _FromSumVector(ConfiguredMetric):
    """Metrics exact from the sum of a subsample's unit embeddings (O(n·d), no n×n matrix)."""

    version: ClassVar[str] = "2"  # 2: mean over the seeds' fixed-size subsamples; half-sample CI
    higher_is_more_diverse: ClassVar[bool] = True
    Params = NoParams
    from_sum: ClassVar[Any]  # (sum vector, n) -> value, a staticmethod

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult:
        x = corpus_vectors(corpus, ctx, self.name)
        return subsample_with_half_sample_ci(
            self, len(x), lambda idx: self.from_sum(row_sum(x, idx), len(idx)), ctx
        )


@register
class PairwiseCosineDistance(_FromSumVector):
    """Mean pairwise cosine distance between document embeddings (exact, via the sum vector)."""

    name: ClassVar[str] = "pairwise_cosine_distance"
    from_sum = staticmethod(pairwise_from_sum)


@register
class RemoteClique(_FromSumVector):
    """Remote-clique (the `diversity` package's definition, self-pairs included): 1 − ‖mean
    embedding‖²."""

    name: ClassVar[str] = "remote_clique"
    from_sum = staticmethod(remote_clique_from_sum)


# k-means with about one document per centroid scores float noise (every document sits on its
# own centroid), so k is capped at n // MIN_DOCS_PER_CLUSTER; below 2 clusters the score is
# undefined (NaN with the reason), not a number.
MIN_DOCS_PER_CLUSTER = 5


class KMeansParams(StrictModel):
    k: int = Field(
        100,
        ge=2,
        description=f"Clusters; capped at n // {MIN_DOCS_PER_CLUSTER} for n documents per "
        "subsample.",
    )
    n_iter: int = Field(20, ge=1, description="Lloyd iterations.")
    n_redo: int = Field(1, ge=1, description="Restarts; the lowest-inertia run is kept.")


def kmeans_k(configured: int, n_docs: int) -> int:
    """The k actually used: at most ``configured``, and at least MIN_DOCS_PER_CLUSTER documents
    per cluster on average."""
    return min(configured, n_docs // MIN_DOCS_PER_CLUSTER)


def spherical_kmeans(
    x: np.ndarray, k: int, n_iter: int, n_redo: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """faiss spherical k-means; returns (cosine similarity to the assigned centroid, labels)."""
    import faiss

    data = np.ascontiguousarray(x, dtype=np.float32)
    # max_points_per_centroid=len: faiss must not subsample our (already sampled) documents.
    kmeans = faiss.Kmeans(
        data.shape[1],
        k,
        niter=n_iter,
        nredo=n_redo,
        seed=seed,
        spherical=True,
        max_points_per_centroid=max(1, len(data)),
        min_points_per_centroid=1,
        verbose=False,
    )
    kmeans.train(data)
    similarity, labels = kmeans.index.search(data, 1)  # inner product index for spherical k-means
    return similarity[:, 0].astype(np.float64), labels[:, 0]


@register
class KMeansScore(ConfiguredMetric):
    """k-means (faiss, spherical) on embeddings: mean cosine distance of documents to their
    centroid."""

    name: ClassVar[str] = "kmeans"
    version: ClassVar[str] = "2"  # 2: k capped at n // 5, undefined (NaN) below 10 documents
    higher_is_more_diverse: ClassVar[bool] = True
    Params = KMeansParams

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult:
        if ctx.embeddings is None:
            raise ValueError(
                f"metric {self.name!r} needs embeddings, but MetricContext.embeddings is not set"
            )
        result = seeded_subsamples(
            self,
            corpus,
            lambda sub, seed: self.score(corpus_vectors(sub, ctx, self.name), seed),
            ctx,
        )
        # Every subsample has the same size, so either all seeds are defined or none is.
        undefined = result.details["per_seed_details"][0].get("undefined")
        if undefined:
            result.details["undefined"] = undefined
        return result

    def score(self, x: np.ndarray, seed: int) -> tuple[float, dict[str, Any]]:
        k = kmeans_k(self.params.k, len(x))
        if k < 2:
            reason = (
                f"undefined: {len(x)} documents give k = min({self.params.k}, "
                f"{len(x)} // {MIN_DOCS_PER_CLUSTER}) = {k} < 2 clusters; "
                f"k-means needs >= {2 * MIN_DOCS_PER_CLUSTER} documents"
            )
            return math.nan, {"k": k, "undefined": reason}
        p = self.params
        similarity, labels = spherical_kmeans(x, k, p.n_iter, p.n_redo, seed)
        sizes = np.bincount(labels, minlength=k)
        shares = sizes[sizes > 0] / len(x)
        size_entropy = float(abs((shares * np.log(shares)).sum()) / np.log(k))
        details = {
            "k": k,
            "size_entropy": size_entropy,
            "nonempty_clusters": int((sizes > 0).sum()),
        }
        return float(np.mean(1.0 - np.clip(similarity, -1.0, 1.0))), details
