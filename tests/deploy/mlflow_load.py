"""One writer of the concurrent-writers check (tests/integration/test_mlflow_reliability.py):
a separate process logging params, a 100-step metric and an artifact as a job would, with
MLflow's HTTP retries off, so every failed call is counted rather than retried away."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

PARAMS, STEPS = 10, 100


def expected_metric(writer: int, step: int) -> float:
    return writer * 1000.0 + step * 0.5


def artifact_text(writer: int) -> str:
    return f"writer {writer}\n" * 50


def write(uri: str, user: str, password: str, experiment_id: str, writer: int, start: Any):
    """Returns (run_id, calls, failures, seconds spent logging)."""
    os.environ.update(
        MLFLOW_TRACKING_USERNAME=user,
        MLFLOW_TRACKING_PASSWORD=password,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
    )
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    calls = failures = 0

    def call(fn, *args, **kwargs):
        nonlocal calls, failures
        calls += 1
        try:
            return fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - any failure counts; the run is checked afterwards
            failures += 1
            return None

    start.wait()  # a shared Barrier: all writers start together
    began = time.monotonic()
    run = call(client.create_run, experiment_id, run_name=f"writer-{writer}")
    if run is None:
        return None, calls, failures, time.monotonic() - began
    run_id = run.info.run_id
    for i in range(PARAMS):
        call(client.log_param, run_id, f"p{i}", f"w{writer}-v{i}")
    for step in range(STEPS):
        call(client.log_metric, run_id, "loss", expected_metric(writer, step), step=step)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "notes.txt"
        path.write_text(artifact_text(writer))
        call(client.log_artifact, run_id, str(path))
    call(client.set_terminated, run_id)
    return run_id, calls, failures, time.monotonic() - began
