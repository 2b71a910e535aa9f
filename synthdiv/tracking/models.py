"""Trained models in MLflow: a logged model per (run, name), optionally registered.

Restart-safe like runs: a rerun of the same job finds its READY logged model by
``source_run_id`` + name and reuses it instead of logging a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

TAG_MODEL_ID = "synthdiv.model_id"
PENDING = "pending"  # a model whose logging waits in the tracking journal


@dataclass
class LoggedModelRef:
    model_id: str
    model_uri: str  # models:/<id>, loadable by MLflow and registrable
    registered_version: str | None = None


if TYPE_CHECKING:
    from synthdiv.tracking.tracker import Tracker


def _existing(tracker: Tracker, experiment_id: str, name: str) -> Any | None:
    found = tracker.client.search_logged_models(
        [experiment_id],
        filter_string=f"source_run_id = '{tracker.run_id}' AND name = '{name}'",
        max_results=10,
    )
    ready = [m for m in found if str(m.status).endswith("READY")]
    return ready[0] if ready else None


def log_hf_model(
    tracker: Tracker,
    local_dir: str | Path,
    *,
    name: str,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    register_as: str | None = None,
) -> LoggedModelRef:
    """Log a Hugging Face model directory as an MLflow logged model of the tracker's run.

    While the server is away the call is journaled (the directory stays on storage) and the
    returned ref says ``pending``; the model is logged when the journal is replayed.
    """
    ref = tracker.journaled_call(
        "log_model", local_dir=str(local_dir), name=name, register_as=register_as,
        tags={k: str(v) for k, v in (tags or {}).items()},
        params={k: str(v) for k, v in (params or {}).items()},
    )  # fmt: skip
    return ref if ref is not None else LoggedModelRef(PENDING, PENDING)


def log_hf_model_now(
    tracker: Tracker,
    local_dir: str,
    *,
    name: str,
    tags: dict[str, str],
    params: dict[str, str],
    register_as: str | None,
) -> LoggedModelRef:
    client = tracker.client
    experiment_id = client.get_run(tracker.run_id).info.experiment_id
    model = _existing(tracker, experiment_id, name)
    if model is None:
        model = client.create_logged_model(
            experiment_id,
            name=name,
            source_run_id=tracker.run_id,
            tags=tags,
            params=params,
            model_type="hf-causal-lm",
        )
        client.log_model_artifacts(model.model_id, local_dir)
        client.finalize_logged_model(model.model_id, "READY")
    ref = LoggedModelRef(model.model_id, f"models:/{model.model_id}")
    tracker.set_tags({TAG_MODEL_ID: model.model_id})
    if register_as:
        ref.registered_version = _register(tracker, ref, register_as)
    return ref


def _register(tracker: Tracker, ref: LoggedModelRef, name: str) -> str:
    client = tracker.client
    import mlflow

    try:
        client.create_registered_model(name)
    except mlflow.exceptions.MlflowException:
        pass  # already registered: add a version
    for version in client.search_model_versions(f"name = '{name}'"):
        if getattr(version, "model_id", None) == ref.model_id:
            return str(version.version)
    version = client.create_model_version(
        name, source=ref.model_uri, run_id=tracker.run_id, model_id=ref.model_id
    )
    return str(version.version)


def logged_models_of_run(tracker: Tracker) -> list[Any]:
    client = tracker.client
    experiment_id = client.get_run(tracker.run_id).info.experiment_id
    return list(
        client.search_logged_models(
            [experiment_id], filter_string=f"source_run_id = '{tracker.run_id}'"
        )
    )
