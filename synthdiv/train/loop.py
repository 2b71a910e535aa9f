"""The training loop every Ray Train worker runs, shared by pretraining and SFT.

Per optimizer step: micro batches with gradient accumulation (sync on the last only), a global
mean loss (all-reduced, so every rank agrees when it is not finite), clipping, AdamW, LR schedule.
Rank 0 logs to MLflow and writes checkpoints; every rank calls ``ray.train.report`` equally often.
A non-finite loss stops every rank before the optimizer step, so the last checkpoint stays good.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
import time
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from pydantic import BaseModel

from synthdiv import crash
from synthdiv.shards import filesystem
from synthdiv.train import checkpoint
from synthdiv.train.config import FaultSpec, TrainBlock
from synthdiv.train.mfu import current_device_name, mfu, peak_for
from synthdiv.train.optim import build_optimizer, build_scheduler
from synthdiv.train.packing import batch_arrays
from synthdiv.train.parallel import Parallelized
from synthdiv.train.store import BatchSampler, ShardedRows, load_arrays, localize

DIVERGED_FILE = "diverged.json"


class LoopSpec(BaseModel):
    """Everything a worker needs, resolved on the driver (plain data: it crosses to Ray)."""

    stage: str
    model_config_dict: dict[str, Any] | None = None  # a fresh model from this LlamaConfig
    pretrained_dir: str | None = None  # …or continue from this HF directory
    data_uri: str
    run_root: str  # Ray Train run directory holding step_* checkpoints
    state_uri: str  # fault markers and the divergence record
    model_out_uri: str
    total_steps: int
    seq_len: int
    flops_per_token: float
    train: TrainBlock


def initial_model(spec: LoopSpec) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    from synthdiv.train.model import build_model

    torch.manual_seed(spec.train.schedule.seed)
    if spec.pretrained_dir:
        model = LlamaForCausalLM.from_pretrained(
            str(localize(spec.pretrained_dir)),
            dtype=torch.float32,
            attn_implementation=spec.train.scale.attention,
        )
        model.config.use_cache = False
        return model
    config = LlamaConfig.from_dict(spec.model_config_dict)
    config._attn_implementation = spec.train.scale.attention
    return build_model(config, spec.train.schedule.seed)


WORKER_ENGINE = "train-worker"  # the crash reports' file prefix (synthdiv.crash)


class FaultHooks:
    """Config-driven faults for recovery tests; a marker file makes each fire once per run."""

    def __init__(self, spec: FaultSpec, state_uri: str, rank: int):
        self.spec, self.rank = spec, rank
        self.fs, self.root = filesystem(state_uri)

    def _fire_once(self, name: str) -> bool:
        marker = posixpath.join(self.root, "faults", name)
        if self.fs.exists(marker):
            return False
        self.fs.makedirs(posixpath.dirname(marker), exist_ok=True)
        self.fs.pipe_file(marker, b"fired")
        return True

    def before_step(self, step: int) -> None:
        spec = self.spec
        if spec.fail_at_step != step or spec.fail_rank != self.rank:
            return
        if self._fire_once(f"fail_at_{step}"):
            if spec.fail_mode == "exit":
                os._exit(1)
            if spec.fail_mode == "abort":
                os.abort()
            raise RuntimeError(f"injected fault at step {step} on rank {self.rank}")

    def corrupt_loss(self, step: int, loss: torch.Tensor) -> torch.Tensor:
        # Every rank decides from the same marker check, so all of them see the NaN.
        if self.spec.nan_at_step == step:
            dist.barrier()
            fired = self.rank == 0 and self._fire_once(f"nan_at_{step}")
            flag = torch.tensor([1.0 if fired else 0.0], device=loss.device)
            dist.broadcast(flag, src=0)
            if flag.item():
                return loss * float("nan")
        return loss


def tokenizer_dir(spec: LoopSpec) -> str:
    """The tokenizer the data was made with (saved beside the token store)."""
    return str(localize(posixpath.join(spec.data_uri, "tokenizer")))


def _batch(
    arrays: dict[str, ShardedRows], rows: np.ndarray, device: torch.device
) -> tuple[dict[str, torch.Tensor], int]:
    """Model inputs of ``rows`` on ``device`` and their real (non-padding) token count."""
    batch, real_tokens = batch_arrays(arrays, rows)
    return {k: torch.from_numpy(v).to(device) for k, v in batch.items()}, real_tokens


def train_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point: ``config = {"spec": LoopSpec dict, "tracker": Tracker | None}``."""
    import ray.train
    import ray.train.torch

    crash.arm(WORKER_ENGINE)
    spec = LoopSpec.model_validate(config["spec"])
    tracker = config.get("tracker")
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(spec.train.scale.threads_per_worker)
    device = ray.train.torch.get_device()
    train = spec.train

    model = Parallelized(initial_model(spec), train.scale, device)
    optimizer = build_optimizer(model.wrapped.named_parameters(), train.optim)
    scheduler = build_scheduler(optimizer, train.optim, spec.total_steps)
    start, tokens_seen = _resume(spec, model, optimizer, scheduler, rank, tracker)

    arrays = load_arrays(spec.data_uri)  # memory-mapped shards (downloaded once from S3)
    sampler = BatchSampler(
        len(arrays["input_ids"]),
        train.schedule.global_batch_size,
        train.schedule.micro_batch_size,
        world,
        rank,
        train.schedule.seed,
    )
    faults = FaultHooks(train.faults, spec.state_uri, rank)
    try:
        peak_name, peak = peak_for(current_device_name())
    except KeyError as err:  # an unlisted GPU: report no MFU rather than a wrong one
        peak_name, peak = "unknown", float("nan")
        print(f"[synthdiv] {err}")
    if rank == 0 and tracker is not None:
        tracker.set_tags({"synthdiv.train.mfu_peak": f"{peak_name}={peak:.3g}"})
    last: dict[str, float] = {}
    every = log_interval(train.schedule.log_every, spec.total_steps)
    logged_until = _logged_until(tracker) if rank == 0 and tracker is not None and start else 0

    for step in range(start, spec.total_steps):
        faults.before_step(step)
        began = time.perf_counter()
        sums = torch.zeros(2, device=device, dtype=torch.float64)  # loss, real tokens
        for micro in range(sampler.accumulation_steps):
            with model.gradient_sync(micro == sampler.accumulation_steps - 1):
                batch, real_tokens = _batch(arrays, sampler.rows(step, micro), device)
                loss = model(**batch).loss
                loss = faults.corrupt_loss(step, loss) / sampler.accumulation_steps
                loss.backward()
            sums[0] += loss.detach().double()
            sums[1] += real_tokens
        dist.all_reduce(sums)  # one collective: the step's loss and its tokens over all ranks
        mean_loss, tokens_per_step = sums[0].item() / world, int(sums[1].item())
        grad_norm = model.clip_grad_norm(train.optim.grad_clip)
        if not (np.isfinite(mean_loss) and np.isfinite(grad_norm)):
            _record_divergence(spec, rank, step, mean_loss, grad_norm, tracker)
            return
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens_seen += tokens_per_step
        seconds = time.perf_counter() - began
        last = {
            "train/loss": mean_loss,
            "train/lr": scheduler.get_last_lr()[0],
            "train/grad_norm": grad_norm,
            "train/tokens_per_s": tokens_per_step / seconds,
            "train/tokens_seen": tokens_seen,
            "train/step_seconds": seconds,
        }
        if np.isfinite(peak):
            last["train/mfu"] = mfu(tokens_per_step / seconds, spec.flops_per_token, peak, world)
        done = step + 1
        if (
            rank == 0
            and tracker is not None
            and done > logged_until
            and (done % every == 0 or done == spec.total_steps)
        ):
            tracker.log_metrics(last, step=done)
        if done % train.checkpoint.every_steps == 0 or done == spec.total_steps:
            trainer_state = {"scheduler": scheduler.state_dict(), "step": done}
            trainer_state["tokens_seen"] = tokens_seen
            _save_checkpoint(spec, model, optimizer, trainer_state, last, rank)

    _export_model(spec, model, rank)


def log_interval(log_every: int | None, total_steps: int) -> int:
    """Steps between logged points: as configured, else about 1000 points per run."""
    return log_every or max(1, total_steps // 1000)


def _logged_until(tracker: Any) -> int:
    """The last step already in MLflow: a run resumed from an earlier checkpoint replays steps
    it had logged, and logs only those after them (no step twice in the curve)."""
    try:
        return max((step for step, _ in tracker.metric_history("train/loss")), default=0)
    except Exception:  # noqa: BLE001 -- MLflow away (journaled run): nothing known, log all
        return 0


def _resume(
    spec: LoopSpec,
    model: Parallelized,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rank: int,
    tracker: Any,
) -> tuple[int, int]:
    """Load the newest complete checkpoint, if any, into this rank's state (a collective);
    returns (step, tokens seen)."""
    ref, skipped = checkpoint.latest_complete(spec.run_root)
    if rank == 0 and skipped:
        print(f"[synthdiv] skipped unusable checkpoints: {skipped}")
    if ref is None:
        return 0, 0
    tensors = model.sharded_state(optimizer)
    trainer_state = checkpoint.load(ref.uri, tensors)
    model.load_sharded_state(optimizer, tensors)
    scheduler.load_state_dict(trainer_state["scheduler"])
    checkpoint.restore_rng(trainer_state["rng"])
    if rank == 0 and tracker is not None:
        tracker.set_tags({"synthdiv.train.resumed_from_step": trainer_state["step"]})
    return trainer_state["step"], trainer_state["tokens_seen"]


def _save_checkpoint(
    spec: LoopSpec,
    model: Parallelized,
    optimizer: torch.optim.Optimizer,
    trainer_state: dict[str, Any],
    metrics: dict[str, float],
    rank: int,
) -> None:
    """Every rank writes its shard straight into the run directory (no local copy, no upload
    by Ray); rank 0 then reports the finished directory to Ray Train, which keeps
    ``num_to_keep`` of them and runs checkpoint evals on it."""
    import ray.train
    from ray.train import CheckpointUploadMode

    report = {**metrics, "step": trainer_state["step"], "tokens_seen": trainer_state["tokens_seen"]}
    name = checkpoint.dir_name(trainer_state["step"])
    checkpoint.save(
        posixpath.join(spec.run_root, name),
        model.sharded_state(optimizer),
        {**trainer_state, "rng": checkpoint.rng_state()} if rank == 0 else None,
    )
    ckpt = None
    if rank == 0:
        storage = ray.train.get_context().get_storage()
        ckpt = ray.train.Checkpoint(
            storage.build_checkpoint_path_from_name(name), filesystem=storage.storage_filesystem
        )
    ray.train.report(
        report,
        checkpoint=ckpt,
        checkpoint_dir_name=name,
        checkpoint_upload_mode=CheckpointUploadMode.NO_UPLOAD,
        validation=spec.train.eval_checkpoints is not None and ckpt is not None,
    )  # rank 0 holds it


def _record_divergence(
    spec: LoopSpec, rank: int, step: int, loss: float, grad_norm: float, tracker: Any
) -> None:
    if rank != 0:
        return
    fs, root = filesystem(spec.state_uri)
    fs.makedirs(root, exist_ok=True)
    record = {"step": step, "loss": str(loss), "grad_norm": str(grad_norm)}
    fs.pipe_file(posixpath.join(root, DIVERGED_FILE), json.dumps(record).encode())
    if tracker is not None:
        tracker.set_tags({"synthdiv.train.diverged_at_step": step})


def _export_model(spec: LoopSpec, model: Parallelized, rank: int) -> None:
    """The final weights as a Hugging Face directory (+ tokenizer), ``_SUCCESS`` last."""
    from synthdiv.train.model import save_hf_directory

    model_state = model.full_model_state()  # collective; weights only, no optimizer state
    if rank != 0:
        return
    hf_model = model.wrapped.module if hasattr(model.wrapped, "module") else model.wrapped
    fs, root = filesystem(spec.model_out_uri)
    with tempfile.TemporaryDirectory(prefix="synthdiv-model-") as tmp:
        save_hf_directory(hf_model.config, model_state, tokenizer_dir(spec), tmp)
        if fs.exists(root):
            fs.rm(root, recursive=True)
        fs.makedirs(root, exist_ok=True)
        fs.put(tmp.rstrip("/") + "/", root.rstrip("/") + "/", recursive=True)
    fs.pipe_file(posixpath.join(root, "_SUCCESS"), json.dumps({"steps": spec.total_steps}).encode())
