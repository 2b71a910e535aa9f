"""Peak host RSS per rank while a training checkpoint is saved and loaded (DDP, gloo on CPU).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_checkpoint_rss.py --preset 350m --layers 4
    PYTHONPATH=/path/to/old/checkout .venv/bin/python benchmarks/bench_checkpoint_rss.py ...

Two spawned ranks build the preset (``--layers`` overrides its depth so it fits a small host),
take ``--steps`` AdamW steps (so the Adam state exists), then save a checkpoint with whatever
``synthdiv.train.checkpoint`` on PYTHONPATH provides: the sharded DCP one (``save``/``load``) or
the older single ``torch.save`` on rank 0 (``write_local``/``latest_loadable``). Two fresh ranks
then resume from it, as restarted workers do. Each phase resets the kernel's RSS high-water mark
(``/proc/self/clear_refs``) and reads ``VmHWM`` after it, so the figures are true peaks per
process: "before" is the RSS when the phase starts, "peak" its maximum during the phase.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Phase:
    """RSS at the start and the peak RSS of one phase of this process, in MiB."""

    def __enter__(self) -> Phase:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        self.before = _rss_kib("VmRSS") / 1024
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = _rss_kib("VmHWM") / 1024


def _build(args: argparse.Namespace):
    from synthdiv.train.config import ModelSpec, OptimSpec, ScaleSpec
    from synthdiv.train.model import build_model, llama_config
    from synthdiv.train.optim import build_optimizer
    from synthdiv.train.parallel import Parallelized

    spec = ModelSpec(preset=args.preset, num_layers=args.layers)
    model = Parallelized(
        build_model(llama_config(spec, args.vocab), seed=0), ScaleSpec(), torch.device("cpu")
    )
    return model, build_optimizer(model.wrapped.named_parameters(), OptimSpec())


def _save(model, optimizer, root: str, rank: int) -> str:
    from synthdiv.train import checkpoint

    uri = os.path.join(root, checkpoint.dir_name(1))
    if hasattr(checkpoint, "save"):  # sharded (DCP)
        trainer_state = {"step": 1, "tokens_seen": 0} if rank == 0 else None
        checkpoint.save(uri, model.sharded_state(optimizer), trainer_state)
        return "sharded DCP"
    model_state, optim_state = model.full_state(optimizer)  # the old path, as loop.py had it
    if rank == 0:
        state = {"model": model_state, "optimizer": optim_state, "step": 1}
        checkpoint.write_local(Path(uri), state, 1)
    dist.barrier()
    return "torch.save on rank 0"


def _load(model, optimizer, root: str) -> None:
    from synthdiv.train import checkpoint

    if hasattr(checkpoint, "latest_complete"):
        ref, _ = checkpoint.latest_complete(root)
        tensors = model.sharded_state(optimizer)
        checkpoint.load(ref.uri, tensors)
        model.load_sharded_state(optimizer, tensors)
    else:
        _ref, state, _ = checkpoint.latest_loadable(root)
        model.load_full_state(optimizer, state["model"], state["optimizer"])


def _worker(rank: int, args: argparse.Namespace, port: int, root: str, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=args.workers)
    torch.set_num_threads(1)
    model, optimizer = _build(args)
    if args.phase == "save":
        gen = torch.Generator().manual_seed(rank)
        for _ in range(args.steps):
            batch = torch.randint(0, args.vocab, (1, args.seq_len), generator=gen)
            model(input_ids=batch, labels=batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        with Phase() as phase:
            kind = _save(model, optimizer, root, rank)
    else:
        kind = ""
        with Phase() as phase:
            _load(model, optimizer, root)
    out[rank] = (kind, phase.before, phase.peak)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="350m")
    parser.add_argument("--layers", type=int, default=None, help="override the preset's depth")
    parser.add_argument("--vocab", type=int, default=49152, help="SmolLM2's vocabulary")
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import synthdiv

    print(f"synthdiv from {Path(synthdiv.__file__).parent.parent}; {vars(args)}")
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as root, mp.Manager() as manager:
        results = {}
        for phase in ("save", "load"):
            out = manager.dict()
            args.phase = phase
            mp.spawn(_worker, args=(args, _free_port(), root, out), nprocs=args.workers, join=True)
            results[phase] = dict(out)
        size = sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file())
        print(f"checkpoint: {results['save'][0][0]}, {size / 2**20:.0f} MiB on disk")
        print("phase  rank  RSS before (MiB)  peak RSS (MiB)  peak - before (MiB)")
        for phase, ranks in results.items():
            for rank, (_kind, before, peak) in sorted(ranks.items()):
                print(f"{phase:5}  {rank:4}  {before:16.0f}  {peak:14.0f}  {peak - before:19.0f}")


if __name__ == "__main__":
    main()
