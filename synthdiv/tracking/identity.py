"""A stage job's identity in MLflow: the tags that name it, and the run found (or created) for it,
so a rerun or a resumed job logs into the same run instead of creating a duplicate."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from synthdiv.config import RuntimeConfig, config_digest

TAG_STAGE = "synthdiv.stage"
TAG_JOB = "synthdiv.job_id"
TAG_CONFIG = "synthdiv.config_digest"
TAG_DATASET = "synthdiv.dataset_digest"
TAG_PARENT = "mlflow.parentRunId"
TAG_ERROR = "synthdiv.error"  # why the run FAILED; cleared when a rerun reopens it


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    artifact_location = None
    if tracking_uri.startswith("sqlite:///"):
        # A local store keeps artifacts beside the database, not in whatever CWD a worker has.
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        artifact_location = (db.parent / "artifacts" / name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except mlflow.exceptions.MlflowException:  # created concurrently by another process
        return client.get_experiment_by_name(name).experiment_id


def find_run(client: MlflowClient, experiment_id: str, job_id: str, stage: str) -> str | None:
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_JOB}` = '{job_id}' and tags.`{TAG_STAGE}` = '{stage}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


def job_id_for(stage: str, config: BaseModel, runtime: RuntimeConfig | None) -> str:
    if runtime is not None and runtime.job_id:
        return runtime.job_id
    return f"{stage}-{config_digest(config)}"


def open_run(
    client: MlflowClient,
    uri: str,
    experiment: str,
    job_id: str,
    stage: str,
    run_name: str,
    tags: dict[str, str],
) -> str:
    """The run of (job, stage) in ``experiment``, reopened as RUNNING, or a new one."""
    exp_id = ensure_experiment(client, experiment, uri)
    run_id = find_run(client, exp_id, job_id, stage)
    if run_id is None:
        return client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
    client.update_run(run_id, status="RUNNING")
    if TAG_ERROR in client.get_run(run_id).data.tags:  # the failure it records is history now
        client.delete_tag(run_id, TAG_ERROR)
    return run_id
