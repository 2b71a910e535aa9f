"""Embedding throughput: the Ray Data actor pool (synthdiv.embed) vs a plain single-process
``SentenceTransformer.encode`` on the same documents, in the same run. Target: ratio >= 0.9.

    .venv/bin/python benchmarks/bench_embed.py --n 10000

Both sides are timed end to end, model loading included (the Ray side also includes actor
start-up and writing the Parquet shards; ``ray.init`` itself is excluded). The encode-only rate of
the plain side is printed as well, so the fixed start-up cost is visible at small ``n``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from synthdiv.config import CorpusConfig, RuntimeConfig
from synthdiv.corpus import Corpus, example_corpus_path, read_corpus
from synthdiv.embed import EmbedConfig, run_embedding
from synthdiv.models import minilm_path
from synthdiv.runtime import ray_session


def make_docs(n: int) -> Corpus:
    """``n`` documents cycled from the example corpus, each made unique by a short suffix."""
    base = read_corpus(CorpusConfig(path=example_corpus_path()))[0].texts
    texts = [f"{base[i % len(base)]} (note {i // len(base)})" for i in range(n)]
    return Corpus([f"b{i}" for i in range(n)], texts)


def bench_plain(corpus: Corpus, batch_size: int) -> tuple[float, float]:
    """(seconds including model load, seconds of encode only)."""
    from sentence_transformers import SentenceTransformer

    start = time.perf_counter()
    model = SentenceTransformer(str(minilm_path()), device="cpu")
    loaded = time.perf_counter()
    model.encode(
        corpus.texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    done = time.perf_counter()
    return done - start, done - loaded


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000, help="documents to embed")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-actors", type=int, default=2)
    parser.add_argument("--cpus-per-actor", type=float, default=0.5)
    parser.add_argument("--threads-per-actor", type=int, default=None)
    parser.add_argument("--shard-size", type=int, default=2_000)
    args = parser.parse_args()

    corpus = make_docs(args.n)
    cfg = EmbedConfig(
        batch_size=args.batch_size,
        num_actors=args.num_actors,
        cpus_per_actor=args.cpus_per_actor,
        threads_per_actor=args.threads_per_actor,
        shard_size=args.shard_size,
    )
    plain_total, plain_encode = bench_plain(corpus, args.batch_size)
    with ray_session(RuntimeConfig()), tempfile.TemporaryDirectory() as out:
        result = run_embedding(corpus, cfg, out)
    plain_rate, ray_rate = args.n / plain_total, args.n / result.seconds
    print(
        f"n={args.n} batch_size={args.batch_size} num_actors={args.num_actors} "
        f"cpus_per_actor={args.cpus_per_actor} cores={os.cpu_count()}"
    )
    print(f"plain encode (incl. load): {plain_rate:8.1f} docs/s  ({plain_total:.1f} s)")
    print(
        f"plain encode (encode only): {args.n / plain_encode:7.1f} docs/s  ({plain_encode:.1f} s)"
    )
    print(
        f"ray data pipeline:          {ray_rate:7.1f} docs/s  ({result.seconds:.1f} s, "
        f"{result.shards_written} shards)"
    )
    print(f"ratio ray / plain (end to end): {ray_rate / plain_rate:.2f}  (target >= 0.9)")
    print(f"ratio ray / plain encode-only:  {ray_rate / (args.n / plain_encode):.2f}")


if __name__ == "__main__":
    main()
