"""A real `mlflow server` that goes away and comes back: the work goes on, nothing is lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
from mlflow.tracking import MlflowClient
from pydantic import Field
from typer.testing import CliRunner

from synthdiv.config import RuntimeConfig, StrictModel
from synthdiv.stage import BaseStage, StageContext, StageResult, run_stage
from synthdiv.tracking import TAG_JOB, pending_journals, stage_run
from synthdiv.tracking import journal as journal_mod
from tests.support.servers import MlflowServer


class _Cfg(StrictModel):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    value: int = 1


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHDIV_TRACKING_JOURNAL", str(tmp_path / "journal"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast: the test kills it
    monkeypatch.setattr(journal_mod, "PROBE_SECONDS", 0.0)
    srv = MlflowServer(tmp_path / "mlflow").start()
    yield srv
    srv.stop()


def _only_run(uri: str, experiment: str):
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return client, runs[0]


def test_a_tracker_sent_to_a_worker_journals_beside_the_driver(tmp_path, monkeypatch):
    import pickle

    from synthdiv.tracking import Tracker

    monkeypatch.delenv("SYNTHDIV_TRACKING_JOURNAL", raising=False)
    monkeypatch.chdir(tmp_path)
    driver = Tracker("http://127.0.0.1:9", "run1")
    monkeypatch.chdir("/")  # a Ray worker runs in another working directory
    worker = pickle.loads(pickle.dumps(driver))
    assert worker.guard.journal.path == driver.guard.journal.path
    assert str(driver.guard.journal.path).startswith(str(tmp_path))


def test_calls_made_while_the_server_is_away_are_replayed_in_order(server, tmp_path):
    runtime = RuntimeConfig(
        tracking_uri=server.uri, experiment="outage", storage_uri=str(tmp_path / "out")
    )
    with stage_run("score", _Cfg(runtime=runtime), runtime) as tracker:
        tracker.log_metrics({"loss": 3.0}, step=0)
        server.stop()
        tracker.log_metrics({"loss": 2.0}, step=1)  # fails, journaled; the stage goes on
        tracker.log_text("written during the outage", "notes/outage.txt")
        assert tracker.guard.offline
        assert [e["op"] for e in tracker.guard.journal.entries()] == ["log_metrics", "log_text"]
        assert "tracking-sync" in tracker.link()  # says where the calls wait and how to replay
        server.start()
        tracker.log_metrics({"loss": 1.0}, step=2)  # back: the journal goes first, then this
    client, run = _only_run(server.uri, "outage")
    assert run.info.status == "FINISHED"
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss"))
    assert history == [(0, 3.0), (1, 2.0), (2, 1.0)]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "notes")}
    assert artifacts == {"notes/outage.txt"}
    # the gap is recorded: how many calls waited, and what they were
    assert run.data.tags[journal_mod.GAP_TAG] == "2"
    record = Path(client.download_artifacts(run.info.run_id, "tracking", str(tmp_path / "dl")))
    ops = [
        json.loads(line)["op"]
        for f in record.glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert ops == ["log_metrics", "log_text"]
    assert pending_journals() == []


class _WritesAFile(BaseStage):
    name: ClassVar[str] = "writer"
    needs_ray: ClassVar[bool] = False

    def run(self, ctx: StageContext) -> StageResult:
        out = Path(ctx.output_dir) / "result.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("the work")
        return StageResult(metrics={"rows": 7.0}, outputs={"result": str(out)})


def test_a_stage_started_while_the_server_is_down_does_its_work_and_syncs_later(server, tmp_path):
    runtime = RuntimeConfig(
        tracking_uri=server.uri, experiment="down", storage_uri=str(tmp_path / "out")
    )
    server.stop()
    result = run_stage(_WritesAFile(_Cfg(runtime=runtime)), reuse=True)  # reuse lookup cannot ask
    assert Path(result.outputs["result"]).read_text() == "the work"
    assert result.outputs["mlflow_run_id"].startswith(journal_mod.OFFLINE_PREFIX)
    [pending] = pending_journals()

    from synthdiv.cli import app

    refused = CliRunner().invoke(app, ["tracking-sync", "--tracking-uri", server.uri])
    assert refused.exit_code == 2 and "unreachable" in refused.output
    assert pending_journals() == [pending]  # kept for later

    server.start()
    synced = CliRunner().invoke(app, ["tracking-sync", "--tracking-uri", server.uri])
    assert synced.exit_code == 0, synced.output
    client, run = _only_run(server.uri, "down")
    assert run.info.status == "FINISHED" and run.data.metrics["rows"] == 7.0
    assert run.data.tags[TAG_JOB] == f"writer-{_job_digest(runtime)}"
    assert run.data.tags["synthdiv.output.result"] == result.outputs["result"]
    assert int(run.data.tags[journal_mod.GAP_TAG]) >= 5  # open, tags, params, config, metrics, end
    assert pending_journals() == []
    # and a rerun now finds the finished run instead of doing the work again
    again = run_stage(_WritesAFile(_Cfg(runtime=runtime)), reuse=True)
    assert again.extra.get("reused") and again.outputs["mlflow_run_id"] == run.info.run_id


def _job_digest(runtime: RuntimeConfig) -> str:
    from synthdiv.config import config_digest

    return config_digest(_Cfg(runtime=runtime))


_OTHER_NODE = """
import pickle, sys
from synthdiv.tracking import Tracker
driver = pickle.loads(open(sys.argv[1], "rb").read())  # as Ray ships it to a worker
# this node cannot reach the server: its calls go to the journal
worker = Tracker("http://127.0.0.1:9", driver.run_id, driver.journal_id, driver.journal_root)
worker.log_metrics({"train/loss": 2.5}, step=7)
worker.set_tags({"synthdiv.train.resumed_from_step": "6"})
"""


def test_the_driver_replays_what_a_worker_on_another_node_journaled(server, s3_bucket, tmp_path):
    import os
    import pickle
    import subprocess
    import sys

    import s3fs

    runtime = RuntimeConfig(
        tracking_uri=server.uri, experiment="shared", storage_uri=f"{s3_bucket}/runs"
    )
    with stage_run("pretrain", _Cfg(runtime=runtime), runtime) as driver:
        assert driver.journal_root == f"{s3_bucket}/runs/.synthdiv/tracking_gaps"
        (tmp_path / "tracker.pkl").write_bytes(pickle.dumps(driver))
        node = tmp_path / "node2"  # another machine: its own working dir and local journal dir
        node.mkdir()
        env = {**os.environ, "SYNTHDIV_TRACKING_JOURNAL": str(node / "journal")}
        done = subprocess.run(
            [sys.executable, "-c", _OTHER_NODE, str(tmp_path / "tracker.pkl")],
            cwd=node,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        shared = f"{driver.journal_root}/{driver.run_id}.d"
        assert len(fs.ls(shared)) == 2 and not (node / "journal").exists()
        driver.log_metrics({"train/loss": 2.0}, step=8)
        fs.invalidate_cache()
        assert len(fs.ls(shared)) == 2  # the driver looked moments ago: no LIST for this call
    fs.invalidate_cache()
    assert fs.find(shared) == []  # the end of the run looked, and replayed them
    client, run = _only_run(server.uri, "shared")
    loss = client.get_metric_history(run.info.run_id, "train/loss")
    history = sorted((m.step, m.value) for m in loss)
    assert history == [(7, 2.5), (8, 2.0)]
    assert run.data.tags["synthdiv.train.resumed_from_step"] == "6"
    assert run.data.tags[journal_mod.GAP_TAG] == "2"


def test_tracking_sync_replays_a_job_journaled_on_shared_storage(server, s3_bucket):
    from synthdiv.cli import app
    from synthdiv.tracking.shared_journal import shared_journal_root

    storage = f"{s3_bucket}/sync"
    runtime = RuntimeConfig(tracking_uri=server.uri, experiment="shared-sync", storage_uri=storage)
    server.stop()
    with stage_run("score", _Cfg(runtime=runtime), runtime) as tracker:  # opened offline
        tracker.log_metrics({"rows": 7.0}, step=0)
        assert f"tracking-sync --storage-uri {storage}" in tracker.link()
    assert pending_journals() == []  # nothing waits on this machine: it is all on S3
    [pending] = pending_journals(shared_journal_root(storage))

    sync = ["tracking-sync", "--tracking-uri", server.uri, "--storage-uri", storage]
    refused = CliRunner().invoke(app, sync)
    assert refused.exit_code == 2 and "unreachable" in refused.output
    server.start()
    synced = CliRunner().invoke(app, sync)
    assert synced.exit_code == 0 and f"{pending}: replayed" in synced.output, synced.output
    _, run = _only_run(server.uri, "shared-sync")
    assert run.info.status == "FINISHED" and run.data.metrics["rows"] == 7.0
    assert int(run.data.tags[journal_mod.GAP_TAG]) >= 5  # open, tags, params, config, metric, end
    assert pending_journals(shared_journal_root(storage)) == []
