"""The eval stage: one model, the selected tasks, scores + lineage in MLflow, results on storage.

Everything that can be checked before loading a model is checked first (task files, checkpoint
layout), so bad input fails in a second with its cause, not after minutes of model loading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from synthdiv.evaluate.checkpoint import resolve_model
from synthdiv.evaluate.config import EvalConfig
from synthdiv.evaluate.harness import EvalReport, apply_offline_mode, parse_results, run_harness
from synthdiv.evaluate.suites import task_specs
from synthdiv.shards import write_json_atomic
from synthdiv.stage import BaseStage, StageContext, StageResult, local_artifact_dir, run_stage
from synthdiv.tracking import TAG_DATASET, Tracker

STAGE_NAME = "eval"
METRIC_PREFIX = "eval"
TAG_MODEL_SIZE = "synthdiv.model_size"
TAG_VARIANT = "synthdiv.variant"
TAG_CHECKPOINT_RUN = "synthdiv.checkpoint_run_id"
TAG_CORPUS_NAME = "synthdiv.corpus_name"
TAG_MODEL_PATH = "synthdiv.model_path"
TAG_SUITE = "synthdiv.eval_suite"
RESULTS_FILE = "results.json"


def lineage_tags(cfg: EvalConfig) -> dict[str, str]:
    lineage = cfg.lineage
    tags = {
        TAG_DATASET: lineage.dataset_digest,
        TAG_MODEL_SIZE: lineage.model_size,
        TAG_VARIANT: lineage.variant,
        TAG_CHECKPOINT_RUN: lineage.checkpoint_run_id,
        TAG_CORPUS_NAME: lineage.corpus_name,
        TAG_MODEL_PATH: cfg.model.path,
        TAG_SUITE: cfg.suite or "custom",
    }
    return {k: v for k, v in tags.items() if v}


def resolve_and_evaluate(cfg: EvalConfig, specs: list[Any]) -> tuple[dict[str, Any], Any]:
    """Resolve (download if remote) the model, run the harness: lm-eval's raw result, the model."""
    model = resolve_model(cfg.model)
    return run_harness(cfg, model, specs), model


def harness_task_options(cfg: EvalConfig) -> dict[str, float] | None:
    """Ray task options for an eval on GPUs; None = run in this process (CPU)."""
    if not cfg.model.device.startswith("cuda"):
        return None
    return {"num_gpus": cfg.model.num_gpus, "num_cpus": 1}


class EvalStage(BaseStage):
    name: ClassVar[str] = STAGE_NAME

    @property
    def needs_ray(self) -> bool:  # type: ignore[override]
        """Only a GPU eval needs Ray (to reach a GPU node); on CPU lm-eval runs in-process and
        skips Ray's start-up cost."""
        return harness_task_options(self.config) is not None

    def run(self, ctx: StageContext) -> StageResult:
        cfg = self.config
        apply_offline_mode(cfg)
        specs = task_specs(cfg)  # validates task files before any model is loaded
        ctx.tracker.set_tags(lineage_tags(cfg))
        options = harness_task_options(cfg)
        if options is None:
            raw, model = resolve_and_evaluate(cfg, specs)
        else:  # resolved there too: an s3:// model is downloaded on the GPU node, not here
            import ray

            raw, model = ray.get(ray.remote(**options)(resolve_and_evaluate).remote(cfg, specs))
        report = parse_results(raw, specs)
        summary = report.summary() | {
            "model": model.source,
            "model_dir": model.path,
            "limit": cfg.limit,
            "lineage": cfg.lineage.model_dump(),
            "task_sources": {s.name: s.source for s in specs},
        }
        results_uri = write_json_atomic(f"{ctx.output_dir.rstrip('/')}/{RESULTS_FILE}", summary)
        artifacts = _write_artifacts(
            report, summary, raw, local_artifact_dir(ctx.output_dir, "eval")
        )
        return StageResult(
            metrics=report.metrics(METRIC_PREFIX),
            outputs={"results": results_uri},
            tables={"eval_scores": [_row(t) for t in summary["tasks"]]},
            artifacts={"eval": artifacts},
            extra={"report": report},
        )


def _row(task: dict[str, Any]) -> dict[str, Any]:
    return {k: task[k] for k in ("task", "metric", "score", "stderr", "n")}


def _write_artifacts(
    report: EvalReport, summary: dict[str, Any], raw: dict[str, Any], out: Path
) -> Path:
    (out / RESULTS_FILE).write_text(json.dumps(summary, indent=2, default=str))
    lm_eval_view = {
        k: raw.get(k) for k in ("results", "configs", "versions", "n-shot", "n-samples")
    }
    (out / "lm_eval_results.json").write_text(json.dumps(lm_eval_view, indent=2, default=str))
    lines = ["| task | metric | score | stderr | n |", "|---|---|---|---|---|"]
    lines += [
        f"| {t.task} | {t.metric} | {t.score:.4f} | "
        f"{'' if t.stderr is None else f'{t.stderr:.4f}'} | {t.n} |"
        for t in report.tasks
    ]
    avg_err = report.average_stderr
    lines.append(
        f"| **average** | | {report.average:.4f} | "
        f"{'' if avg_err is None else f'{avg_err:.4f}'} | |"
    )
    (out / "scores.md").write_text("\n".join(lines) + "\n")
    samples = out / "samples"
    samples.mkdir(exist_ok=True)
    for task, rows in report.samples.items():
        (samples / f"{task}.jsonl").write_text(
            "".join(json.dumps(r, default=str) + "\n" for r in rows)
        )
    return out


def preflight(config: EvalConfig) -> None:
    """Fail on bad task files or an unusable checkpoint before Ray or MLflow are touched."""
    apply_offline_mode(config)
    task_specs(config)
    resolve_model(config.model)


def evaluate_model(
    config: EvalConfig, parent: Tracker | None = None, reuse: bool = False
) -> StageResult:
    """Evaluate one model as a tracked stage: the library entry point behind ``synthdiv eval``."""
    preflight(config)
    return run_stage(EvalStage(config), parent=parent, reuse=reuse)
