"""DDP and FSDP2 (applied by train/parallel.py) give the same update on 2 gloo CPU processes."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from synthdiv.train.config import ModelSpec, OptimSpec, ScaleSpec


def _one_step(rank: int, world: int, port: int, strategy: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    from synthdiv.train.model import build_model, llama_config
    from synthdiv.train.optim import build_optimizer
    from synthdiv.train.parallel import Parallelized

    model = Parallelized(
        build_model(llama_config(ModelSpec(preset="tiny"), 128), seed=0),
        ScaleSpec(strategy=strategy),
        torch.device("cpu"),
    )
    optimizer = build_optimizer(model.wrapped.named_parameters(), OptimSpec(lr=1e-2))
    batches = torch.randint(0, 128, (2, 2, 16), generator=torch.Generator().manual_seed(rank))
    for micro in range(2):  # gradient accumulation: sync on the last micro batch only
        with model.gradient_sync(micro == 1):
            (model(input_ids=batches[micro], labels=batches[micro]).loss / 2).backward()
    norm = model.clip_grad_norm(1.0)
    optimizer.step()
    state, optim_state = model.full_state(optimizer)
    if rank == 0:
        torch.save({"model": state, "norm": norm, "optim_keys": sorted(optim_state["state"])}, out)
    dist.destroy_process_group()


def _run(strategy: str, tmp_path, port: int) -> dict:
    out = str(tmp_path / f"{strategy}.pt")
    mp.spawn(_one_step, args=(2, port, strategy, out), nprocs=2, join=True)
    return torch.load(out, weights_only=False)


@pytest.mark.slow
def test_fsdp2_matches_ddp(tmp_path):
    from tests.support.servers import free_port

    ddp = _run("ddp", tmp_path, free_port())
    fsdp = _run("fsdp", tmp_path, free_port())
    assert ddp["model"].keys() == fsdp["model"].keys()
    assert "model.layers.0.self_attn.q_proj.weight" in fsdp["optim_keys"]  # FQNs, not indices
    assert fsdp["norm"] == pytest.approx(ddp["norm"], rel=1e-4)
    for name, value in ddp["model"].items():
        assert torch.allclose(value, fsdp["model"][name], atol=1e-5), name
