"""The Llama-style decoder: presets from one size dial, built with transformers' LlamaForCausalLM.

Using the transformers class (RMSNorm, RoPE, SwiGLU, SDPA attention) means every checkpoint is a
plain Hugging Face directory that lm-eval and vLLM load as is.

Presets (docs/method.md §4, context 2048, multi-head attention, head dim 64):

| preset | hidden | intermediate | layers | heads | embeddings | params (vocab 49152) |
|--------|--------|--------------|--------|-------|------------|----------------------|
| tiny   | 64     | 256          | 2      | 4     | tied       | ~3.3M (CPU tests)    |
| 350m   | 960    | 2560         | 28     | 15    | tied       | ~357M                |
| 1b     | 2048   | 8192         | 16     | 32    | untied     | ~1.28B               |

The paper's "1.4B" cannot be reproduced exactly from its table with a ~50k vocabulary; untied
embeddings give the closest count and are what most 1B-class Llama models use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from synthdiv.train.config import ModelSpec


@dataclass(frozen=True)
class Preset:
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    tie_embeddings: bool


PRESETS: dict[str, Preset] = {
    "tiny": Preset(64, 256, 2, 4, True),
    "350m": Preset(960, 2560, 28, 15, True),
    "1b": Preset(2048, 8192, 16, 32, False),
}


def llama_config(
    spec: ModelSpec,
    vocab_size: int,
    *,
    bos_id: int | None = None,
    eos_id: int | None = None,
    attention: str = "sdpa",
) -> Any:
    """The ``LlamaConfig`` for a spec: the preset, then any per-dimension override."""
    from transformers import LlamaConfig

    preset = PRESETS[spec.preset]
    heads = spec.num_heads or preset.num_heads
    hidden = spec.hidden_size or preset.hidden_size
    if hidden % heads:
        raise ValueError(f"hidden_size {hidden} is not divisible by num_heads {heads}")
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=spec.intermediate_size or preset.intermediate_size,
        num_hidden_layers=spec.num_layers or preset.num_layers,
        num_attention_heads=heads,
        num_key_value_heads=spec.num_kv_heads or heads,
        max_position_embeddings=spec.context_length,
        tie_word_embeddings=preset.tie_embeddings
        if spec.tie_embeddings is None
        else spec.tie_embeddings,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        hidden_act="silu",
        initializer_range=0.02,
        attention_dropout=0.0,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        use_cache=False,
    )
    config._attn_implementation = attention
    return config


def build_model(config: Any, seed: int) -> torch.nn.Module:
    """A freshly initialised model; the same seed gives the same weights on every worker."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def count_parameters(config: Any) -> int:
    """Exact parameter count without allocating weights (built on the meta device)."""
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    # Tied embeddings share one tensor; parameters() yields it once.
    return sum(p.numel() for p in model.parameters())


def expected_parameters(config: Any) -> int:
    """The closed-form count, so tests can check the built model against the architecture."""
    h, i, n, v = (
        config.hidden_size,
        config.intermediate_size,
        config.num_hidden_layers,
        config.vocab_size,
    )
    kv = h // config.num_attention_heads * config.num_key_value_heads
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * i + 2 * h  # q,o + k,v + SwiGLU + 2 RMSNorms
    embeddings = v * h * (1 if config.tie_word_embeddings else 2)
    return n * per_layer + embeddings + h  # + final norm


def save_hf_directory(
    config: Any, model_state: dict[str, torch.Tensor], tokenizer_dir: str, out_dir: str
) -> None:
    """Weights (a full state dict) + config + tokenizer as a Hugging Face directory that lm-eval
    and vLLM load as is."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    export = LlamaForCausalLM(config)
    export.load_state_dict(model_state)
    export.config.use_cache = True
    export.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out_dir)
