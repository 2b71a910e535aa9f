"""The perplexity gap's value and sign, on stand-in language models with known losses (the real
models run in tests/integration/test_metrics_model_based.py)."""

from __future__ import annotations

import math

import pytest

from synthdiv.corpus import Corpus
from synthdiv.metrics import MetricContext
from synthdiv.metrics.model_based import CausalLM, NLLTotals, PerplexityGap


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
