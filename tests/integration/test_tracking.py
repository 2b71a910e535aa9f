"""MLflow conventions against a real `mlflow server` on loopback."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from mlflow.tracking import MlflowClient

from synthdiv.tracking import TAG_CONFIG, TAG_DATASET, TAG_JOB, TAG_STAGE, stage_run
from tests.support.configs import TinyConfig


def _runs(uri, experiment):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def test_rerun_reuses_the_run_and_logs_everything(runtime, tmp_path):
    cfg = TinyConfig(runtime=runtime)
    with stage_run("score", cfg, runtime) as tracker:
        tracker.log_metrics({"div.x.value": 1.5, "weird key!": 2.0}, step=0)
        tracker.log_dataset(name="c", digest="abc123", source="/data/c.jsonl", n_rows=10)
        first = tracker.run_id
    with stage_run("score", cfg, runtime) as tracker:
        tracker.log_metrics({"div.x.value": 1.6}, step=1)
        assert tracker.run_id == first
    runs = _runs(runtime.tracking_uri, runtime.experiment)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags[TAG_STAGE] == "score"
    assert run.data.tags[TAG_JOB].startswith("score-")
    assert run.data.tags[TAG_CONFIG]
    assert run.data.tags[TAG_DATASET] == "abc123"
    assert run.data.params["alpha"] == "0.5" and run.data.params["nested.k"] == "3"
    assert run.data.metrics["weird key_"] == 2.0
    client = MlflowClient(runtime.tracking_uri)
    history = client.get_metric_history(first, "div.x.value")
    assert [m.value for m in history] == [1.5, 1.6]
    assert run.inputs.dataset_inputs[0].dataset.digest == "abc123"
    files = [f.path for f in client.list_artifacts(first, "config")]
    assert files == ["config/resolved.yaml"]


def test_exception_ends_run_failed_and_other_config_is_new_job(runtime):
    with pytest.raises(RuntimeError):
        with stage_run("score", TinyConfig(runtime=runtime, alpha=0.1), runtime):
            raise RuntimeError("boom")
    with stage_run("score", TinyConfig(runtime=runtime, alpha=0.2), runtime):
        pass
    statuses = sorted(r.info.status for r in _runs(runtime.tracking_uri, runtime.experiment))
    assert statuses == ["FAILED", "FINISHED"]


def test_sigterm_ends_run_killed(runtime, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, time
        from synthdiv.config import RuntimeConfig
        from synthdiv.tracking import stage_run
        from tests.support.configs import TinyConfig
        rt = RuntimeConfig(tracking_uri={runtime.tracking_uri!r}, experiment={runtime.experiment!r})
        with stage_run("train", TinyConfig(runtime=rt), rt):
            print("started", flush=True)
            time.sleep(60)
    """)
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    run = _runs(runtime.tracking_uri, runtime.experiment)[0]
    assert run.info.status == "KILLED"


def test_tracker_link_points_at_the_ui(runtime):
    with stage_run("score", TinyConfig(runtime=runtime), runtime) as tracker:
        link = tracker.link()
    assert link.startswith(runtime.tracking_uri) and tracker.run_id in link
