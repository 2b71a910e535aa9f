"""Embedding throughput: the Ray Data actor pool (synthdiv.embed) vs a plain single-process
``SentenceTransformer.encode`` on the same documents, in the same run. Target: ratio >= 0.9.

    .venv/bin/python benchmarks/bench_embed.py --n 10000

Both sides are timed end to end from cold: the plain side is a fresh process timed from importing
sentence-transformers to the last vector; the Ray side includes actor start-up (the same imports,
in every actor), model loading and writing the Parquet shards (``ray.init`` itself is excluded).
The encode-only rate of the plain side is printed as well, so the fixed start-up cost is visible.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

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


PLAIN_ENCODE = """
import json, sys, time
texts = json.load(open(sys.argv[1]))
start = time.perf_counter()
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[2], device="cpu")
loaded = time.perf_counter()
model.encode(texts, batch_size=int(sys.argv[3]), normalize_embeddings=True, show_progress_bar=False)
done = time.perf_counter()
print(json.dumps({"total": done - start, "encode": done - loaded}))
"""


def bench_plain(corpus: Corpus, batch_size: int) -> tuple[float, float]:
    """(seconds including import and model load, seconds of encode only), in a fresh process:
    the Ray side's actors start cold too, so both sides pay for importing sentence-transformers."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as fh:
        json.dump(corpus.texts, fh)
        fh.flush()
        out = subprocess.run(
            [sys.executable, "-c", PLAIN_ENCODE, fh.name, str(minilm_path()), str(batch_size)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    timing = json.loads(out.strip().splitlines()[-1])
    return timing["total"], timing["encode"]


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
