"""Model FLOPs utilisation (MFU) against a named peak, with nanoGPT's formula.

FLOPs per token = 6·N + 12·L·H·Q·T
  N = parameters doing matmuls (all parameters, minus the input embedding when it is not tied
      to the output head: a lookup costs no FLOPs), L layers, H heads, Q head dim, T sequence
      length. 6·N is forward + backward of the matmuls; 12·L·H·Q·T is attention's QKᵀ and AV.
MFU = FLOPs per token × tokens/s ÷ (peak FLOP/s per device × devices).

Peaks are dense bf16 tensor-core figures from the vendors' data sheets. The ``cpu`` entry is a
*nominal* 100 GFLOP/s per worker so CPU runs print a number; it is not a measured peak and CPU
MFU figures mean nothing beyond "the plumbing reports MFU".
"""

from __future__ import annotations

from typing import Any

PEAK_FLOPS: dict[str, float] = {
    "H200": 989e12,
    "H100 SXM": 989e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 125e12,
    "A10": 125e12,
    "L4": 121e12,
    "V100": 125e12,  # fp16 tensor cores (no bf16)
    "RTX 4090": 165e12,
    "cpu": 100e9,  # nominal, see module docstring
}


def flops_per_token(config: Any, seq_len: int) -> float:
    """nanoGPT's estimate for one token of training (forward + backward) at context ``seq_len``."""
    from synthdiv.train.model import count_parameters

    n_params = count_parameters(config)
    if not config.tie_word_embeddings:
        n_params -= config.vocab_size * config.hidden_size
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    head_dim = config.hidden_size // heads
    return 6 * n_params + 12 * layers * heads * head_dim * seq_len


def peak_for(device_name: str) -> tuple[str, float]:
    """(table key, peak FLOP/s) for a device name such as ``torch.cuda.get_device_name()``.

    The longest key contained in the name wins ("H100 PCIe" before "H100"). Unknown GPUs raise,
    because an MFU against a guessed peak would be misleading."""
    if device_name == "cpu":
        return "cpu", PEAK_FLOPS["cpu"]
    for key in sorted(PEAK_FLOPS, key=len, reverse=True):
        if key != "cpu" and key.lower() in device_name.lower():
            return key, PEAK_FLOPS[key]
    raise KeyError(
        f"no peak FLOP/s known for device {device_name!r}; add it to synthdiv.train.mfu.PEAK_FLOPS"
    )


def current_device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def mfu(tokens_per_s: float, flops_token: float, peak: float, n_devices: int) -> float:
    return tokens_per_s * flops_token / (peak * n_devices)


def required_tokens_per_s(flops_token: float, peak: float, target_mfu: float) -> float:
    """Tokens/s per device needed to reach ``target_mfu``."""
    return target_mfu * peak / flops_token
