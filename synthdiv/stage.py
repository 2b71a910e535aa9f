"""One interface for every stage: ``load config → build stage → stage.run(ctx) → record``.

A stage is a pure function of its config and inputs that writes its outputs under
``ctx.output_dir`` (per-shard files, a completion marker written last) and returns a
:class:`StageResult`. :func:`run_stage` adds Ray, MLflow and the record; stages never open runs.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from synthdiv.config import RuntimeConfig
from synthdiv.progress import ProgressFn, no_progress
from synthdiv.runtime import raise_if_stopped, ray_session
from synthdiv.shards import filesystem, is_remote, local_path
from synthdiv.tracking import Tracker, finished_run, job_id_for, stage_run

OUTPUT_TAG = "synthdiv.output."


@dataclass
class StageContext:
    runtime: RuntimeConfig
    tracker: Tracker
    job_id: str
    output_dir: str  # local path or s3:// URI, unique per (stage, job)


@dataclass
class StageResult:
    metrics: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # name → path/URI of what was written
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name → rows
    artifacts: dict[str, Path] = field(default_factory=dict)  # artifact dir → local file/dir
    extra: dict[str, Any] = field(default_factory=dict)  # for in-process callers; not recorded


class Stage(Protocol):
    name: ClassVar[str]
    config: BaseModel

    @property
    def runtime(self) -> RuntimeConfig: ...

    def run(self, ctx: StageContext) -> StageResult: ...


class BaseStage:
    """The shape every stage shares: a config whose ``runtime`` block says where it runs, and a
    progress callback (a no-op unless the CLI passes rich bars)."""

    name: ClassVar[str]
    needs_ray: ClassVar[bool] = True

    def __init__(self, config: Any, progress: ProgressFn = no_progress):
        self.config = config
        self.progress = progress

    @property
    def runtime(self) -> RuntimeConfig:
        return self.config.runtime


def local_artifact_dir(output_dir: str, prefix: str) -> Path:
    """Where a stage writes files for MLflow: ``<output_dir>/artifacts`` when the outputs are local
    (kept with them), a fresh temp dir when they live on s3:// (uploaded to MLflow only)."""
    if is_remote(output_dir):
        return Path(tempfile.mkdtemp(prefix=f"synthdiv-{prefix}-"))
    out = Path(local_path(output_dir)) / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    return out


def output_dir_for(runtime: RuntimeConfig, stage: str, job_id: str) -> str:
    root = runtime.storage_uri.rstrip("/")
    return f"{root}/{stage}/{job_id}"


def record(tracker: Tracker, result: StageResult) -> None:
    tracker.log_metrics(result.metrics)
    for name, rows in result.tables.items():
        tracker.log_table_rows(rows, f"tables/{name}.jsonl")
    for artifact_dir, path in result.artifacts.items():
        tracker.log_artifact(path, artifact_dir or None)
    if result.outputs:
        tracker.set_tags({f"{OUTPUT_TAG}{k}": v for k, v in result.outputs.items()})


def reusable_result(stage: Stage) -> StageResult | None:
    """The recorded result of an identical, finished job whose outputs still exist, else None.

    Identity is the config digest (runtime excluded), so a crashed study skips what it finished.
    """
    job_id = job_id_for(stage.name, stage.config, stage.runtime)
    run = finished_run(stage.runtime, job_id, stage.name)
    if run is None:
        return None
    outputs = {
        k.removeprefix(OUTPUT_TAG): v for k, v in run.data.tags.items() if k.startswith(OUTPUT_TAG)
    }
    for value in outputs.values():
        if value.startswith(("/", "s3://", "./")) and not filesystem(value)[0].exists(value):
            return None  # the record says done but the files are gone: run it again
    outputs["mlflow_run_id"] = run.info.run_id
    return StageResult(
        metrics=dict(run.data.metrics), outputs=outputs, extra={"reused": True, "run": run}
    )


def run_stage(stage: Stage, parent: Tracker | None = None, reuse: bool = False) -> StageResult:
    """Run ``stage`` inside Ray and its MLflow run. ``reuse=True`` (studies) returns the recorded
    result of an identical finished job instead of running it again."""
    raise_if_stopped()
    if reuse and (previous := reusable_result(stage)) is not None:
        return previous
    runtime = stage.runtime
    job_id = job_id_for(stage.name, stage.config, runtime)
    # Stages that never touch Ray (eval, correlate) say so and skip its start-up cost.
    ray_ctx = (
        ray_session(runtime) if getattr(stage, "needs_ray", True) else contextlib.nullcontext()
    )
    with ray_ctx, stage_run(stage.name, stage.config, runtime, parent=parent) as tracker:
        ctx = StageContext(runtime, tracker, job_id, output_dir_for(runtime, stage.name, job_id))
        result = stage.run(ctx)
        record(tracker, result)
        result.outputs.setdefault("mlflow_run_id", tracker.run_id)
        result.extra.setdefault("run_link", tracker.link())
        return result


@contextlib.contextmanager
def parent_run(stage: Stage, run_name: str | None = None) -> Iterator[Tracker]:
    """The run of a stage whose work is other stages (a study, a generate grid): Ray starts once
    for all of them, and their runs are children of this one (``run_stage(..., parent=)``)."""
    raise_if_stopped()
    with (
        ray_session(stage.runtime),
        stage_run(stage.name, stage.config, stage.runtime, run_name=run_name) as tracker,
    ):
        yield tracker
