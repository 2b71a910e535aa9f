"""``synthdiv pretrain`` and ``synthdiv sft``: load the config, run the stage, print the result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from synthdiv.cli import app
from synthdiv.cli.common import fail, load_or_fail, print_rows

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML config (see examples/).")]
JobOpt = Annotated[
    str | None,
    typer.Option(
        "--job-id", help="Stable job id: relaunching with the same id resumes its checkpoints."
    ),
]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage", help="Override runtime.storage_uri (local dir or s3://bucket/prefix)."
    ),
]
StepsOpt = Annotated[
    int | None, typer.Option("--max-steps", help="Override train.schedule.max_steps.")
]


def _common(job_id: str | None, storage: str | None, max_steps: int | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if job_id:
        overrides["runtime.job_id"] = job_id
    if storage:
        overrides["runtime.storage_uri"] = storage
    if max_steps:
        overrides["train.schedule.max_steps"] = max_steps
    return overrides


def _run(stage: Any) -> None:
    from synthdiv.stage import run_stage
    from synthdiv.train.trainer import TrainingDivergedError, TrainingFailedError

    try:
        result = run_stage(stage)
    except (TrainingDivergedError, TrainingFailedError, FileNotFoundError, ValueError) as err:
        fail(str(err) or type(err).__name__, code=1)
        return
    print_rows(
        f"{stage.name} result",
        [
            {
                **result.metrics,
                **{k: v for k, v in result.outputs.items() if k in ("model", "model_uri")},
            }
        ],
    )


@app.command("pretrain")
def pretrain(
    config: ConfigOpt,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", help="Corpus path(s) replacing data.corpora (repeat for a mixture)."
        ),
    ] = None,
    job_id: JobOpt = None,
    storage: StorageOpt = None,
    max_steps: StepsOpt = None,
) -> None:
    """Pretrain a Llama-style model on Ray Train (tiny on CPU, 350m/1b on GPUs).

    Tokenizes and packs the corpora once, trains with DDP/FSDP2, checkpoints with a completeness
    marker, logs curves and the final model to MLflow. Rerun the same command to resume.
    """
    from synthdiv.train.config import PretrainConfig
    from synthdiv.train.pretrain import PretrainStage

    overrides = _common(job_id, storage, max_steps)
    if data:
        overrides["data.corpora"] = [{"corpus": {"path": p}} for p in data]
    _run(PretrainStage(load_or_fail(config, PretrainConfig, overrides)))


@app.command("sft")
def sft(
    config: ConfigOpt,
    base_model: Annotated[
        str | None,
        typer.Option("--base-model", help="Pretrained HF dir (a pretrain run's model/ output)."),
    ] = None,
    data: Annotated[str | None, typer.Option("--data", help="JSONL chat file or dir.")] = None,
    job_id: JobOpt = None,
    storage: StorageOpt = None,
    max_steps: StepsOpt = None,
) -> None:
    """Fine-tune a pretrained checkpoint on chat data (loss on assistant turns only)."""
    from synthdiv.train.config import SftConfig
    from synthdiv.train.sft import SftStage

    overrides = _common(job_id, storage, max_steps)
    if base_model:
        overrides["base_model"] = base_model
    if data:
        overrides["data.path"] = data
    _run(SftStage(load_or_fail(config, SftConfig, overrides)))
