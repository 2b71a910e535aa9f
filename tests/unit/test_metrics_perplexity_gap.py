"""The perplexity gap's value and sign, on stand-in language models with known losses (the real
models run in tests/integration/test_metrics_model_based.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthdiv.corpus import Corpus
from synthdiv.metrics import MetricContext
from synthdiv.metrics.model_based import CausalLM, NLLTotals, Perplexity, PerplexityGap


class FixedLossLM(CausalLM):
    """Every scored token costs ``loss`` nats; a document of w words scores w − 1 tokens."""

    def __init__(self, name: str, loss: float):
        super().__init__(model=None, tokenizer=self, path=name)
        self.loss = loss

    def get_vocab(self) -> dict[str, int]:  # the tokenizer interface the metric checks
        return {}

    def nll(self, texts: list[str], batch_size: int, max_length: int) -> NLLTotals:
        tokens = sum(len(t.split()) - 1 for t in texts)
        return NLLTotals(self.loss * tokens, tokens)


def gap(small_loss: float, large_loss: float):
    ctx = MetricContext(n_seeds=3, sample_size=4)
    for name, loss in (("small-lm", small_loss), ("large-lm", large_loss)):
        ctx.resources[("causal_lm", name, "float32")] = FixedLossLM(name, loss)
    texts = [f"document {i} has a few words" for i in range(6)]
    corpus = Corpus(ids=[f"d{i}" for i in range(6)], texts=texts)
    return PerplexityGap(small_model="small-lm", large_model="large-lm").compute(corpus, ctx)


@pytest.mark.parametrize(("small_loss", "large_loss"), [(2.5, 2.0), (2.0, 2.5)])
def test_the_gap_is_the_absolute_difference_and_the_sign_is_kept(small_loss, large_loss):
    result = gap(small_loss, large_loss)
    signed = math.exp(small_loss) - math.exp(large_loss)
    assert result.value == pytest.approx(abs(signed))  # the paper's gap, whichever model wins
    assert result.per_seed == pytest.approx([abs(signed)] * 3)
    for seed_details in result.details["per_seed_details"]:
        assert seed_details["signed_gap"] == pytest.approx(
            seed_details["ppl_small"] - seed_details["ppl_large"]
        )
    assert result.details["signed_gap"] == pytest.approx(signed)
    assert result.version != "1"  # version 1 reported the signed difference


class PerDocumentLM(FixedLossLM):
    """Like FixedLossLM, but a document's loss per token grows with its number (``doc <i> ...``),
    and the per-document NLL is reported as the real forward pass reports it."""

    def nll(self, texts: list[str], batch_size: int, max_length: int) -> NLLTotals:
        tokens = np.array([len(t.split()) - 1 for t in texts])
        per_token = np.array([self.loss + 0.1 * int(t.split()[1]) for t in texts])
        doc_nll = per_token * tokens
        return NLLTotals(float(doc_nll.sum()), int(tokens.sum()), doc_nll, tokens)


def per_document_ctx(n_seeds: int) -> MetricContext:
    ctx = MetricContext(n_seeds=n_seeds, sample_size=2000)  # the quickstart's: the whole corpus
    for name, loss in (("small-lm", 2.5), ("large-lm", 2.0)):
        ctx.resources[("causal_lm", name, "float32")] = PerDocumentLM(name, loss)
    return ctx


TEXTS = [f"doc {i} " + "word " * (3 + i % 4) for i in range(8)]
CORPUS = Corpus(ids=[f"d{i}" for i in range(8)], texts=TEXTS)


@pytest.mark.parametrize(
    "metric",
    [Perplexity(model="small-lm"), PerplexityGap(small_model="small-lm", large_model="large-lm")],
    ids=lambda m: m.name,
)
def test_the_interval_comes_from_documents_when_every_seed_reads_the_whole_corpus(metric):
    """Item 9: the seeds all read the same 8 documents, so their t-interval has zero width; the
    per-document NLL of the same forward passes gives the interval instead."""
    result = metric.compute(CORPUS, per_document_ctx(2))
    assert result.per_seed[0] == result.per_seed[1]  # same subsample: no spread over seeds
    assert result.ci_low < result.value < result.ci_high
    assert result.details["seed_ci"] == [result.value, result.value]
    assert "documents" in result.details["ci_method"]
    # as narrow with 2 seeds as with 10: the interval does not hinge on the seed count
    ten = metric.compute(CORPUS, per_document_ctx(10))
    assert (ten.ci_high - ten.ci_low) == pytest.approx(result.ci_high - result.ci_low, rel=0.25)
