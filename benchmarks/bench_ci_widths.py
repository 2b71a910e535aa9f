"""CI width of every cheap metric vs the spread of values between corpora (issue 16 item 9).

Scores each corpus with the score stage's protocol at the quickstart's settings (n_seeds 2,
sample_size 2000) and prints, per metric, value [CI] per corpus, the mean CI width and the range
of values between corpora. Run it under two checkouts to compare protocols:

    PYTHONPATH=<checkout> .venv/bin/python benchmarks/bench_ci_widths.py CORPUS.jsonl ...

A corpus may be a .jsonl file or a directory of shards. No model is loaded except the packaged
SmolLM2 tokenizer (context_length); embedding metrics use MiniLM only with --embeddings.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from synthdiv.config import CorpusConfig
from synthdiv.corpus import read_corpus
from synthdiv.metrics import MetricContext, create

CHEAP = ["context_length", "distinct_n", "ngram_diversity", "self_repetition", "compression_ratio"]
EMBEDDING = ["vendi", "pairwise_cosine_distance"]


def context(args: argparse.Namespace, embeddings) -> MetricContext:
    fields = {f.name for f in dataclasses.fields(MetricContext)}
    extra = {"n_resamples": args.resamples} if "n_resamples" in fields else {}
    return MetricContext(
        seed=0, n_seeds=args.n_seeds, sample_size=args.sample_size, embeddings=embeddings, **extra
    )


def minilm_embeddings():
    from sentence_transformers import SentenceTransformer

    from synthdiv.models import minilm_path

    model = SentenceTransformer(str(minilm_path()), device="cpu")
    return lambda corpus: model.encode(corpus.texts, batch_size=32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+")
    parser.add_argument("--n-seeds", type=int, default=2)
    parser.add_argument("--sample-size", type=int, default=2000)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--embeddings", action="store_true")
    args = parser.parse_args()
    names = CHEAP + (EMBEDDING if args.embeddings else [])
    embeddings = minilm_embeddings() if args.embeddings else None
    corpora = [(Path(p).stem or p, read_corpus(CorpusConfig(path=p))[0]) for p in args.corpora]
    print("corpus sizes:", {name: len(c) for name, c in corpora})
    print("| metric | " + " | ".join(n for n, _ in corpora) + " | mean CI width | value range |")
    print("|---" * (len(corpora) + 3) + "|")
    for metric in names:
        results = [create(metric).compute(c, context(args, embeddings)) for _, c in corpora]
        widths = [r.ci_high - r.ci_low for r in results]
        values = [r.value for r in results]
        cells = [f"{r.value:.4g} [{r.ci_low:.4g}, {r.ci_high:.4g}]" for r in results]
        spread = max(values) - min(values)
        print(f"| {metric} | " + " | ".join(cells) + f" | {np.mean(widths):.4g} | {spread:.4g} |")


if __name__ == "__main__":
    main()
