"""Evaluate checkpoints while training goes on (``train.eval_checkpoints``).

Ray Train runs :func:`evaluate_checkpoint` as its validation function: one Ray task per reported
checkpoint, with its own resources, so the trainers never wait for lm-eval. The task rebuilds a
Hugging Face directory from the checkpoint's verified weights, runs the configured eval (the same
harness as ``synthdiv eval``) and logs ``val/<task>.<metric>`` and ``val/avg`` to the training
run at the checkpoint's step. Ray Train attaches the returned metrics to the checkpoint too.
"""

from __future__ import annotations

import tempfile
from typing import Any

from synthdiv.tracking import Tracker
from synthdiv.train import checkpoint as checkpoints
from synthdiv.train.config import CheckpointEvalSpec
from synthdiv.train.loop import LoopSpec, tokenizer_dir
from synthdiv.train.store import localize

METRIC_PREFIX = "val"


def model_config(spec: LoopSpec) -> Any:
    from transformers import LlamaConfig

    if spec.model_config_dict is not None:
        return LlamaConfig.from_dict(spec.model_config_dict)
    return LlamaConfig.from_pretrained(str(localize(spec.pretrained_dir)))


def evaluate_checkpoint(
    checkpoint: Any, *, spec: dict[str, Any], tracker: dict[str, str] | None = None
) -> dict[str, float]:
    """Ray Train validation fn: ``checkpoint`` → eval metrics (also logged at its step)."""
    from synthdiv.evaluate.checkpoint import resolve_model
    from synthdiv.evaluate.config import EvalConfig
    from synthdiv.evaluate.harness import parse_results, run_harness
    from synthdiv.evaluate.suites import task_specs
    from synthdiv.train.model import save_hf_directory

    loop = LoopSpec.model_validate(spec)
    evals: CheckpointEvalSpec = loop.train.eval_checkpoints  # type: ignore[assignment]
    with checkpoint.as_directory() as local:
        weights = checkpoints.load_model_state(local)  # verified first: never a torn state
    with tempfile.TemporaryDirectory(prefix="synthdiv-val-") as model_dir:
        save_hf_directory(model_config(loop), weights, tokenizer_dir(loop), model_dir)
        del weights
        cfg = EvalConfig.model_validate(evals.eval | {"model": {"path": model_dir}})
        specs = task_specs(cfg)
        report = parse_results(run_harness(cfg, resolve_model(cfg.model), specs), specs)
    metrics = report.metrics(METRIC_PREFIX)
    if tracker:
        step = int(checkpoints.step_of(checkpoint.path))
        Tracker(**tracker).log_metrics(_slashed(metrics), step=step)
    return metrics


def _slashed(metrics: dict[str, float]) -> dict[str, float]:
    """``val.avg`` → ``val/avg``: MLflow's UI groups keys by their first slash, like train/*."""
    return {k.replace(f"{METRIC_PREFIX}.", f"{METRIC_PREFIX}/", 1): v for k, v in metrics.items()}


def validation_config(spec: LoopSpec, tracker: Tracker | None) -> Any:
    """The ``ValidationConfig`` for the trainer, or None when checkpoint evals are off."""
    evals = spec.train.eval_checkpoints
    if evals is None:
        return None
    import ray.train

    kwargs: dict[str, Any] = {"spec": spec.model_dump(mode="json")}  # JSON: Ray's requirement
    if tracker is not None:
        kwargs["tracker"] = {
            "tracking_uri": tracker.tracking_uri,
            "run_id": tracker.run_id,
            "journal_root": tracker.journal_root,
        }
    return ray.train.ValidationConfig(
        fn=evaluate_checkpoint,
        task_config=ray.train.ValidationTaskConfig(fn_kwargs=kwargs, timeout_s=evals.timeout_s),
        ray_remote_kwargs={"num_cpus": evals.num_cpus, "num_gpus": evals.num_gpus},
    )
