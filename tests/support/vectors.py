"""Corpora whose embeddings are given vectors, served by document id as the score stage does."""

from __future__ import annotations

import numpy as np

from synthdiv.corpus import Corpus
from synthdiv.metrics import MetricContext


def vector_corpus(
    vectors: np.ndarray, texts: list[str] | None = None, **ctx_args
) -> tuple[Corpus, MetricContext]:
    """A corpus whose ``ctx.embeddings`` serves the given rows by document id (as the score
    stage does), so subsamples get their own rows."""
    ids = [f"d{i}" for i in range(len(vectors))]
    row = {doc_id: i for i, doc_id in enumerate(ids)}
    corpus = Corpus(ids=ids, texts=texts or ["text"] * len(ids))
    ctx = MetricContext(embeddings=lambda sub: vectors[[row[i] for i in sub.ids]], **ctx_args)
    return corpus, ctx
