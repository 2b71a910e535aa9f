"""Perplexity and perplexity gap with the packaged SmolLM2-135M on CPU (a handful of short docs)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from synthdiv.config import ConfigError
from synthdiv.corpus import Corpus
from synthdiv.metrics import MetricContext, create
from synthdiv.metrics.model_based import Perplexity, PerplexityGap, load_causal_lm
from synthdiv.models import ModelNotFoundError, smollm2_hf_dir

VARIED = [
    "Photosynthesis converts light energy into chemical energy stored in sugar.",
    "The central bank raised interest rates to slow down inflation.",
    "A recipe for bread needs flour, water, salt and a little yeast.",
    "The striker scored a late goal and the crowd went wild.",
    "Volcanic ash closed the airport for three days last spring.",
    "Unit tests caught a subtle bug in the date parser.",
]
REPETITIVE = ["The cat sat on the mat. " * 8] * 6


def corpus_of(texts: list[str]) -> Corpus:
    return Corpus(ids=[f"d{i}" for i in range(len(texts))], texts=texts)


@pytest.fixture(scope="module")
def ctx_resources() -> dict:
    """Shared across tests so SmolLM2 loads once for the module."""
    return {}


def make_ctx(resources: dict, **kwargs) -> MetricContext:
    return MetricContext(resources=resources, **kwargs)


@pytest.mark.slow  # forward passes on CPU; ~minutes when the machine is shared
def test_perplexity_protocol_and_direction(ctx_resources):
    metric = Perplexity(batch_size=4, max_length=64, sample_size=3)  # overrides ctx's 5
    varied = metric.compute(corpus_of(VARIED), make_ctx(ctx_resources, n_seeds=2, sample_size=5))
    assert (
        varied.n == 3
        and len(varied.per_seed) == 2
        and varied.details["protocol"] == "seeded_subsample_mean_t"
    )
    assert varied.ci_low <= varied.value <= varied.ci_high and varied.value > 1.0
    assert varied.value == pytest.approx(sum(varied.per_seed) / 2)
    assert varied.per_seed[0] != varied.per_seed[1]  # different seeds, different subsamples
    assert varied.tokens > 0 and varied.details["model_path"] == str(smollm2_hf_dir())
    repetitive = metric.compute(
        corpus_of(REPETITIVE), make_ctx(ctx_resources, n_seeds=2, sample_size=2)
    )
    assert repetitive.value < varied.value  # predictable text: lower perplexity, less diverse


@pytest.mark.slow  # forward passes on CPU; ~minutes when the machine is shared
def test_perplexity_is_token_weighted_and_batch_invariant(ctx_resources):
    import torch

    lm = load_causal_lm(None, "float32", make_ctx(ctx_resources))
    texts = VARIED[:3]
    batched = lm.nll(texts, batch_size=3, max_length=64)
    single = lm.nll(texts, batch_size=1, max_length=64)
    assert batched.tokens == single.tokens and batched.nll == pytest.approx(single.nll, rel=1e-3)
    # reference: HF's own mean loss per document, weighted by its scored tokens
    total, tokens = 0.0, 0
    for text in texts:
        ids = lm.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            loss = float(lm.model(input_ids=ids, labels=ids).loss)
        total += loss * (ids.shape[1] - 1)
        tokens += ids.shape[1] - 1
    assert batched.tokens == tokens
    assert batched.perplexity == pytest.approx(math.exp(total / tokens), rel=1e-3)  # fp32 kernels
    truncated = lm.nll(texts, batch_size=3, max_length=5)
    assert truncated.tokens == 4 * len(texts)  # 5 tokens kept, the first has no context


def test_model_loads_once_per_context(ctx_resources):
    ctx = make_ctx(ctx_resources)
    assert load_causal_lm(None, "float32", ctx) is load_causal_lm(None, "float32", ctx)


@pytest.fixture(scope="module")
def shallow_smollm2(tmp_path_factory) -> Path:
    """A weaker sibling with the same tokenizer: SmolLM2's first 4 decoder layers."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = smollm2_hf_dir()
    config = AutoConfig.from_pretrained(source)
    config.num_hidden_layers = 4
    model = AutoModelForCausalLM.from_pretrained(source, config=config)
    target = tmp_path_factory.mktemp("smollm2-4layers")
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


@pytest.mark.slow
def test_perplexity_gap_between_shallow_and_full_model(ctx_resources, shallow_smollm2):
    metric = PerplexityGap(
        small_model=str(shallow_smollm2), large_model=str(smollm2_hf_dir()), max_length=32
    )
    result = metric.compute(corpus_of(VARIED), make_ctx(ctx_resources, n_seeds=2, sample_size=3))
    assert result.details["same_tokenizer"] is True
    for seed_details, gap in zip(result.details["per_seed_details"], result.per_seed, strict=True):
        signed = seed_details["ppl_small"] - seed_details["ppl_large"]
        assert gap == pytest.approx(abs(signed)) and seed_details["signed_gap"] == signed
        assert signed > 0  # the 4-layer model predicts worse than the full one


def test_missing_models_and_bad_params_are_clear_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        Perplexity(model=str(tmp_path / "nope")).compute(corpus_of(VARIED), MetricContext())
    with pytest.raises(ModelNotFoundError, match="cannot load causal LM"):
        Perplexity(model="./").compute(corpus_of(VARIED), MetricContext())  # exists, not a model
    with pytest.raises(ConfigError, match="modle"):
        create("perplexity", modle="x")
    with pytest.raises(ConfigError, match="dtype"):
        create("perplexity_gap", dtype="int8")


def test_context_length_with_the_smollm2_tokenizer(ctx_resources):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_hf_dir())
    expected = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in VARIED) / len(
        VARIED
    )
    result = create("context_length").compute(corpus_of(VARIED), make_ctx(ctx_resources))
    assert result.value == pytest.approx(expected) and result.details["tokenizer"] == "smollm2"
