"""Driver side shared by pretraining and SFT: launch Ray Train, interpret the outcome, log the
model.

The Ray Train run lives at ``<stage output>/ray/train``: relaunching the same job (same output
directory) finds its checkpoints and resumes, and ``FailureConfig(max_failures)`` restarts the
worker group from the latest complete checkpoint after a worker dies.
"""

from __future__ import annotations

import json
import os
import posixpath
import time
from typing import Any

from synthdiv import crash
from synthdiv.errors import SynthdivError
from synthdiv.shards import filesystem, is_remote, local_path
from synthdiv.stage import StageContext
from synthdiv.tracking import Tracker
from synthdiv.train import checkpoint
from synthdiv.train.config import TrainBlock
from synthdiv.train.loop import DIVERGED_FILE, WORKER_ENGINE, LoopSpec, train_worker
from synthdiv.train.mfu import flops_per_token
from synthdiv.train.store import localize

RAY_RUN_NAME = "train"


class TrainingDivergedError(SynthdivError, RuntimeError):
    """The loss (or gradient norm) became non-finite; the last good checkpoint is kept."""


class TrainingFailedError(SynthdivError, RuntimeError):
    """Workers failed more often than ``checkpoint.max_failures`` allows."""


def loop_spec(
    stage: str, paths: dict[str, str], cfg: Any, total_steps: int, model_config: Any, **model: Any
) -> LoopSpec:
    """The training loop's spec from a stage's paths and config (``cfg.data.seq_len``,
    ``cfg.train``); ``model`` says where the weights start (a config dict, or a pretrained dir)."""
    return LoopSpec(
        stage=stage,
        data_uri=paths["data"],
        run_root=paths["run_root"],
        state_uri=paths["state"],
        model_out_uri=paths["model"],
        total_steps=total_steps,
        seq_len=cfg.data.seq_len,
        flops_per_token=flops_per_token(model_config, cfg.data.seq_len),
        train=cfg.train,
        **model,
    )


def absolute_output(ctx: StageContext) -> str:
    # Ray Train needs an absolute storage path; URIs (s3://) pass through.
    return absolute_uri(ctx.output_dir)


def absolute_uri(path: str) -> str:
    """Workers run in their own working directories: hand them absolute paths (URIs as is)."""
    return path if is_remote(path) else os.path.abspath(local_path(path))


def layout(output: str) -> dict[str, str]:
    """Where a training job keeps its parts, all under the stage output."""
    return {
        "data": posixpath.join(output, "data"),
        "ray_storage": posixpath.join(output, "ray"),
        "run_root": posixpath.join(output, "ray", RAY_RUN_NAME),
        "state": posixpath.join(output, "state"),
        "model": posixpath.join(output, "model"),
        "quarantine": posixpath.join(output, "quarantine"),
    }


def steps_for(train: TrainBlock, n_rows: int, seq_len: int, default_epochs: float) -> int:
    """max_steps, else train_tokens / tokens per step, else epochs over the rows (≥ 1)."""
    schedule = train.schedule
    if schedule.max_steps:
        return schedule.max_steps
    if schedule.train_tokens:
        return max(1, schedule.train_tokens // (schedule.global_batch_size * seq_len))
    epochs = schedule.epochs or default_epochs
    return max(1, round(epochs * n_rows / schedule.global_batch_size))


def run_training(spec: LoopSpec, tracker: Tracker | None) -> dict[str, Any]:
    """Fit on Ray Train; return the metrics of the final checkpoint."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from synthdiv.train.checkpoint_eval import validation_config

    train = spec.train
    paths_fs, state_root = filesystem(spec.state_uri)
    diverged_path = posixpath.join(state_root, DIVERGED_FILE)
    if paths_fs.exists(diverged_path):  # a relaunch after a NaN stop starts a fresh attempt
        paths_fs.rm(diverged_path)
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"spec": spec.model_dump(mode="json"), "tracker": tracker},
        scaling_config=ray.train.ScalingConfig(
            num_workers=train.scale.num_workers,
            use_gpu=train.scale.use_gpu,
            resources_per_worker={"CPU": train.scale.cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            name=RAY_RUN_NAME,
            storage_path=posixpath.dirname(spec.run_root),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=train.checkpoint.num_to_keep),
            failure_config=ray.train.FailureConfig(max_failures=train.checkpoint.max_failures),
        ),
        validation_config=validation_config(spec, tracker),
    )
    started = time.time()
    try:
        result = trainer.fit()
    except Exception as err:
        if crash.find_report(WORKER_ENGINE, started) is not None:  # a worker died of a signal
            raise crash.crash_error(
                WORKER_ENGINE,
                f"{spec.stage} training worker",
                since=started,
                cause=str(err).splitlines()[0],
            ) from err
        raise TrainingFailedError(
            f"{spec.stage} failed (max_failures={train.checkpoint.max_failures}): {err}"
        ) from err
    if paths_fs.exists(diverged_path):
        record = json.loads(paths_fs.cat_file(diverged_path))
        complete, _ = checkpoint.list_checkpoints(spec.run_root)
        kept = complete[-1].uri if complete else "none (diverged before the first checkpoint)"
        raise TrainingDivergedError(
            f"{spec.stage}: loss became non-finite at step {record['step']} "
            f"(loss={record['loss']}, grad_norm={record['grad_norm']}); training stopped, last "
            f"good checkpoint kept: {kept}"
        )
    return dict(result.metrics or {})


def log_trained_model(
    ctx: StageContext,
    spec: LoopSpec,
    *,
    name: str,
    tags: dict[str, Any],
    params: dict[str, Any],
    register_as: str | None,
) -> dict[str, str]:
    """Log the exported HF directory as an MLflow logged model; returns ids for the result."""
    from synthdiv.tracking.models import log_hf_model

    fs, root = filesystem(spec.model_out_uri)
    if not fs.exists(posixpath.join(root, "_SUCCESS")):
        raise TrainingFailedError(f"{spec.stage}: no exported model at {spec.model_out_uri}")
    ref = log_hf_model(
        ctx.tracker,
        localize(spec.model_out_uri),
        name=name,
        tags=tags,
        params=params,
        register_as=register_as,
    )
    out = {"model_id": ref.model_id, "model_uri": ref.model_uri}
    if ref.registered_version:
        out["registered_version"] = ref.registered_version
    return out
