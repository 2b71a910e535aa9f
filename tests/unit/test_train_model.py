"""Model presets: exact parameter counts (meta device, no memory), overrides, MFU formula."""

from __future__ import annotations

import pytest

from synthdiv.train.config import ModelSpec
from synthdiv.train.mfu import PEAK_FLOPS, flops_per_token, mfu, peak_for, required_tokens_per_s
from synthdiv.train.model import PRESETS, count_parameters, expected_parameters, llama_config

VOCAB = 49152  # SmolLM2 tokenizer


@pytest.mark.parametrize(
    "preset, expected",
    [
        ("tiny", 3_277_120),
        ("350m", 356_898_240),  # tied embeddings, docs/method.md's 960/2560/28/15
        ("1b", 1_275_136_000),  # untied, 2048/8192/16/32
    ],
)
def test_preset_parameter_counts(preset, expected):
    config = llama_config(ModelSpec(preset=preset), VOCAB)
    assert count_parameters(config) == expected == expected_parameters(config)


def test_presets_match_method_table():
    assert (
        PRESETS["350m"].hidden_size,
        PRESETS["350m"].intermediate_size,
        PRESETS["350m"].num_layers,
        PRESETS["350m"].num_heads,
    ) == (960, 2560, 28, 15)
    assert (
        PRESETS["1b"].hidden_size,
        PRESETS["1b"].intermediate_size,
        PRESETS["1b"].num_layers,
        PRESETS["1b"].num_heads,
    ) == (2048, 8192, 16, 32)
    config = llama_config(ModelSpec(preset="350m"), VOCAB)
    assert config.max_position_embeddings == 2048 and config.hidden_act == "silu"


def test_overrides_change_one_dimension():
    config = llama_config(ModelSpec(preset="tiny", num_layers=3, num_kv_heads=2), VOCAB)
    assert config.num_hidden_layers == 3 and config.num_key_value_heads == 2
    assert count_parameters(config) == expected_parameters(config)


def test_heads_must_divide_hidden():
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        llama_config(ModelSpec(preset="tiny", num_heads=5), VOCAB)


def test_flops_per_token_is_nanogpt_formula():
    config = llama_config(ModelSpec(preset="350m"), VOCAB)
    attention = 12 * 28 * 15 * 64 * 2048
    assert flops_per_token(config, 2048) == 6 * 356_898_240 + attention
    untied = llama_config(ModelSpec(preset="1b"), VOCAB)
    # the input embedding of an untied model is a lookup, not a matmul
    assert (
        flops_per_token(untied, 2048)
        == 6 * (1_275_136_000 - VOCAB * 2048) + 12 * 16 * 32 * 64 * 2048
    )


def test_peak_lookup_and_mfu():
    assert peak_for("NVIDIA A100-SXM4-80GB") == ("A100", 312e12)
    assert peak_for("NVIDIA H100 PCIe")[0] == "H100 PCIe"
    assert peak_for("cpu") == ("cpu", PEAK_FLOPS["cpu"])
    with pytest.raises(KeyError, match="no peak FLOP/s"):
        peak_for("Mystery GPU 9000")
    needed = required_tokens_per_s(1e9, 312e12, 0.5)
    assert mfu(needed, 1e9, 312e12, 1) == pytest.approx(0.5)
