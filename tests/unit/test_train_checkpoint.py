"""Checkpoints: sharded per rank (DCP), the marker is written last, torn or truncated ones are
never loaded, and a resume restores every rank's state exactly."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from synthdiv.train import checkpoint
from synthdiv.train.checkpoint import CorruptCheckpointError
from synthdiv.train.config import ModelSpec, OptimSpec, ScaleSpec


def _write(root, step):
    tensors = {"model": {"w": torch.full((64,), float(step))}, "optimizer": {}}
    checkpoint.save(str(root / checkpoint.dir_name(step)), tensors, {"step": step, "n": step * 10})


def test_latest_complete_checkpoint_wins_and_torn_ones_are_skipped(tmp_path):
    _write(tmp_path, 2)
    _write(tmp_path, 4)
    torn = tmp_path / checkpoint.dir_name(6)
    torn.mkdir()
    (torn / "__0_0.distcp").write_bytes(b"partial")  # killed mid-write: no .metadata, no marker
    ref, skipped = checkpoint.latest_complete(str(tmp_path))
    assert ref.step == 4 and checkpoint.read_trainer_state(ref.uri) == {"step": 4, "n": 40}
    assert len(skipped) == 1 and "step_00000006" in skipped[0]
    assert torch.equal(checkpoint.load_model_state(ref.uri)["w"], torch.full((64,), 4.0))


def test_a_shard_that_does_not_match_its_marker_is_refused(tmp_path):
    _write(tmp_path, 2)
    _write(tmp_path, 4)
    (shard,) = (tmp_path / checkpoint.dir_name(4)).glob("*.distcp")
    shard.write_bytes(shard.read_bytes()[:100])  # truncated upload
    with pytest.raises(CorruptCheckpointError, match="do not match its marker"):
        checkpoint.load(str(tmp_path / checkpoint.dir_name(4)), {"model": {"w": torch.zeros(64)}})
    ref, skipped = checkpoint.latest_complete(str(tmp_path))
    assert ref.step == 2 and skipped


def test_missing_marker_is_refused(tmp_path):
    _write(tmp_path, 2)
    (tmp_path / checkpoint.dir_name(2) / checkpoint.MARKER).unlink()
    with pytest.raises(CorruptCheckpointError, match="no _COMPLETE marker"):
        checkpoint.load_model_state(str(tmp_path / checkpoint.dir_name(2)))
    assert checkpoint.latest_complete(str(tmp_path))[0] is None


def test_load_fills_the_given_tensors_in_place(tmp_path):
    _write(tmp_path, 3)
    target = {"model": {"w": torch.zeros(64)}, "optimizer": {}}
    before = target["model"]["w"].data_ptr()
    state = checkpoint.load(str(tmp_path / checkpoint.dir_name(3)), target)
    assert state["step"] == 3 and torch.equal(target["model"]["w"], torch.full((64,), 3.0))
    assert target["model"]["w"].data_ptr() == before  # no second copy of the state


def test_rng_state_roundtrip():
    state = checkpoint.rng_state()
    first = torch.rand(3)
    checkpoint.restore_rng(state)
    assert torch.equal(torch.rand(3), first)


def _parallel(strategy: str):
    from synthdiv.train.model import build_model, llama_config
    from synthdiv.train.optim import build_optimizer
    from synthdiv.train.parallel import Parallelized

    model = Parallelized(
        build_model(llama_config(ModelSpec(preset="tiny"), 128), seed=0),
        ScaleSpec(strategy=strategy),
        torch.device("cpu"),
    )
    return model, build_optimizer(model.wrapped.named_parameters(), OptimSpec(lr=1e-2))


def _save_then_resume(rank: int, world: int, store: str, strategy: str, root: str) -> None:
    # A file rendezvous: a TCP port picked free and bound later by rank 0 can be taken meanwhile.
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    model, optimizer = _parallel(strategy)
    batch = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(rank))
    model(input_ids=batch, labels=batch).loss.backward()
    optimizer.step()
    uri = os.path.join(root, checkpoint.dir_name(1))
    checkpoint.save(uri, model.sharded_state(optimizer), {"step": 1} if rank == 0 else None)
    expected = model.full_state(optimizer)

    fresh, fresh_optimizer = _parallel(strategy)  # a restarted worker: new model, no Adam state
    tensors = fresh.sharded_state(fresh_optimizer)
    assert checkpoint.load(uri, tensors) == {"step": 1}
    fresh.load_sharded_state(fresh_optimizer, tensors)
    got = fresh.full_state(fresh_optimizer)
    if rank == 0:
        for name, value in expected[0].items():
            assert torch.equal(value, got[0][name]), name
        for fqn, slots in expected[1]["state"].items():
            for slot, value in slots.items():
                assert torch.equal(value, got[1]["state"][fqn][slot]), (fqn, slot)
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_each_rank_writes_its_own_shard_and_a_resume_restores_the_state(tmp_path, strategy):

    store = str(tmp_path / "rendezvous")
    mp.spawn(_save_then_resume, args=(2, store, strategy, str(tmp_path)), nprocs=2, join=True)
    marker = checkpoint.verify(str(tmp_path / checkpoint.dir_name(1)))
    shards = {n: s for n, s in marker["files"].items() if n.endswith(".distcp")}
    assert sorted(shards) == ["__0_0.distcp", "__1_0.distcp"]
    # Sharded, not replicated: neither rank wrote the whole state.
    assert all(size < 0.8 * sum(shards.values()) for size in shards.values()), shards
