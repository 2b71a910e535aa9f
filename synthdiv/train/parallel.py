"""Parallelism applied to a single-device model from outside (torchtitan style).

DDP (default) or FSDP2 (``fully_shard`` per decoder layer, then the root), bf16 via autocast for
DDP or a mixed-precision policy for FSDP2, optional ``torch.compile``. Model code never knows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.nn.parallel import DistributedDataParallel

from synthdiv.train.config import ScaleSpec

_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def compute_dtype(scale: ScaleSpec, device: torch.device) -> torch.dtype | None:
    """bf16 when asked, or on GPU under ``auto``; None = plain fp32."""
    if scale.precision == "bf16" or (scale.precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


class Parallelized:
    """A model wrapped for data parallel training, with the few operations the loop needs."""

    def __init__(self, model: torch.nn.Module, scale: ScaleSpec, device: torch.device):
        self.scale, self.device = scale, device
        self.dtype = compute_dtype(scale, device)
        model.to(device)
        if scale.strategy == "fsdp":
            self.wrapped = self._fully_shard(model)
        else:
            ids = [device.index] if device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(model, device_ids=ids)
        self.forward_module = torch.compile(self.wrapped) if scale.compile else self.wrapped

    def _fully_shard(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = (
            MixedPrecisionPolicy(param_dtype=self.dtype, reduce_dtype=torch.float32)
            if self.dtype
            else MixedPrecisionPolicy()
        )
        for layer in model.model.layers:
            fully_shard(layer, mp_policy=policy)
        fully_shard(model, mp_policy=policy)
        return model

    def __call__(self, **batch: torch.Tensor) -> Any:
        # FSDP2 casts through its policy; DDP needs autocast for bf16 matmuls.
        use_autocast = self.dtype is not None and self.scale.strategy == "ddp"
        with torch.autocast(
            self.device.type, dtype=self.dtype or torch.float32, enabled=use_autocast
        ):
            return self.forward_module(**batch)

    @contextlib.contextmanager
    def gradient_sync(self, enabled: bool) -> Iterator[None]:
        """Skip the all-reduce on all but the last micro batch of a gradient accumulation."""
        if enabled:
            yield
        elif isinstance(self.wrapped, DistributedDataParallel):
            with self.wrapped.no_sync():
                yield
        else:
            self.wrapped.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                self.wrapped.set_requires_gradient_sync(True)

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return self.wrapped.parameters()

    def clip_grad_norm(self, max_norm: float | None) -> float:
        norm = torch.nn.utils.clip_grad_norm_(
            list(self.parameters()), max_norm if max_norm else float("inf")
        )
        if hasattr(norm, "full_tensor"):  # FSDP2 returns a DTensor
            norm = norm.full_tensor()
        return float(norm)

    def full_state(self, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
        """Unsharded model and optimizer state on CPU (a collective: every rank calls it)."""
        return get_state_dict(self.wrapped, optimizer, options=_FULL)

    def full_model_state(self) -> dict:
        """Unsharded model weights on CPU, without the optimizer state (a collective)."""
        return get_model_state_dict(self.wrapped, options=_FULL)

    def sharded_state(self, optimizer: torch.optim.Optimizer) -> dict[str, dict]:
        """This rank's model and optimizer state as views of the live tensors (FSDP2: DTensor
        shards; DDP: the replicated tensors), for ``torch.distributed.checkpoint`` to write from
        or load into: no gathered copy. Optimizer state not yet created is created here."""
        model_state, optim_state = get_state_dict(self.wrapped, optimizer)
        return {"model": model_state, "optimizer": optim_state}

    def load_sharded_state(self, optimizer: torch.optim.Optimizer, state: dict[str, dict]) -> None:
        set_state_dict(
            self.wrapped,
            optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
        )
