"""Scaling of the lexical and embedding metrics: time and peak memory at two corpus sizes.

Every lexical/embedding metric must scale about linearly in documents: the time ratio between
the two sizes (10×) must stay ≤ 12. Prints one row per metric and size, then the ratios.

    .venv/bin/python benchmarks/bench_metrics.py                      # 1k vs 10k documents
    .venv/bin/python benchmarks/bench_metrics.py --sizes 10000 100000 # the acceptance run

Documents are synthetic: Zipf-distributed words (vocabulary 50k), 60–140 words each; embeddings
are 384-d topic mixtures (as MiniLM's), unit-normalised float32. Time is the best of
``--repeats`` runs (the machine is shared). Peak memory is tracemalloc's
(numpy buffers included; faiss's C++ buffers are not). Settings: n_seeds=3, k-means k=100 on the
whole corpus (sample_size=None), context_length with the whitespace tokenizer.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from synthdiv.corpus import Corpus
from synthdiv.metrics import MetricContext, create

METRICS = {
    "context_length": {"tokenizer": "whitespace"},
    "distinct_n": {"n": 2},
    "ngram_diversity": {},
    "self_repetition": {},
    "compression_ratio": {},
    "vendi": {},
    "pairwise_cosine_distance": {},
    "remote_clique": {},
    "kmeans": {"k": 100, "n_iter": 10},
}
MAX_RATIO = 12.0


def synthetic_corpus(n_docs: int, seed: int = 0) -> tuple[Corpus, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(60, 140, n_docs)
    words = np.minimum(rng.zipf(1.3, lengths.sum()), 50_000)
    texts, start = [], 0
    for length in lengths:
        texts.append(" ".join(f"w{w}" for w in words[start : start + length]))
        start += length
    topics = rng.standard_normal((200, 384))
    vectors = topics[rng.integers(0, 200, n_docs)] + 0.5 * rng.standard_normal((n_docs, 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return Corpus(ids=[f"d{i}" for i in range(n_docs)], texts=texts), vectors


def measure(
    name: str, corpus: Corpus, vectors: np.ndarray, repeats: int
) -> tuple[float, float, float]:
    """Value, best-of-``repeats`` seconds (the machine is shared: the minimum is the least noisy)
    and the tracemalloc peak of one fresh metric computation."""
    row = {doc_id: i for i, doc_id in enumerate(corpus.ids)}
    best, peak, value = float("inf"), 0.0, float("nan")
    for _ in range(repeats):
        ctx = MetricContext(
            n_seeds=3, sample_size=None, embeddings=lambda sub: vectors[[row[i] for i in sub.ids]]
        )
        metric = create(name, **METRICS[name])
        tracemalloc.start()
        started = time.perf_counter()
        value = metric.compute(corpus, ctx).value
        best = min(best, time.perf_counter() - started)
        peak = max(peak, tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    return value, best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1_000, 10_000])
    parser.add_argument("--metrics", nargs="*", default=list(METRICS))
    parser.add_argument("--repeats", type=int, default=2, help="timing = best of this many runs")
    args = parser.parse_args()
    small, large = args.sizes
    corpora = {n: synthetic_corpus(n) for n in (small, large)}
    print(f"{'metric':26} {'docs':>8} {'value':>12} {'seconds':>9} {'peak MiB':>9}")
    timings: dict[str, dict[int, float]] = {}
    for name in args.metrics:
        for n in (small, large):
            value, seconds, peak = measure(name, *corpora[n], args.repeats)
            timings.setdefault(name, {})[n] = seconds
            print(f"{name:26} {n:>8} {value:>12.5f} {seconds:>9.3f} {peak:>9.1f}")
    print(
        f"\ntime ratio {large}/{small} docs (limit {MAX_RATIO:g} for {large / small:g}x documents)"
    )
    for name, t in timings.items():
        ratio = t[large] / max(t[small], 1e-9)
        print(f"{name:26} {ratio:6.2f}  {'ok' if ratio <= MAX_RATIO else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
