"""A round trip through an MLflow store, for ``synthdiv doctor``."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from synthdiv.tracking import ensure_experiment

PROBE_EXPERIMENT = "synthdiv-doctor"


def store_roundtrip(tracking_uri: str, value: float) -> float | None:
    """Create a run, log ``value`` as a metric, read it back, delete the run; the value read."""
    client = MlflowClient(tracking_uri)
    run_id = client.create_run(
        ensure_experiment(client, PROBE_EXPERIMENT, tracking_uri)
    ).info.run_id
    try:
        client.log_metric(run_id, "probe", value)
        return client.get_run(run_id).data.metrics.get("probe")
    finally:
        client.delete_run(run_id)
