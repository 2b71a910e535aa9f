"""AdamW with decoupled weight decay on matrices only, and linear warmup + linear decay."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from synthdiv.train.config import OptimSpec


def build_optimizer(
    named_params: Iterable[tuple[str, torch.nn.Parameter]], spec: OptimSpec
) -> torch.optim.AdamW:
    """Norm weights and biases (1-D) get no weight decay, as in nanoGPT/Llama training."""
    decay, no_decay = [], []
    for _, param in named_params:
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": spec.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=spec.lr, betas=spec.betas, eps=spec.eps)


def warmup_steps(spec: OptimSpec, total_steps: int) -> int:
    if spec.warmup_steps is not None:
        return min(spec.warmup_steps, total_steps)
    return int(spec.warmup_fraction * total_steps)


def lr_factor(step: int, warmup: int, total: int, final_fraction: float) -> float:
    """Multiplier of the peak LR for optimizer step ``step`` (0-based)."""
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return 1.0 - (1.0 - final_fraction) * progress


def build_scheduler(
    optimizer: torch.optim.Optimizer, spec: OptimSpec, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = warmup_steps(spec, total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup, total_steps, spec.final_lr_fraction)
    )
