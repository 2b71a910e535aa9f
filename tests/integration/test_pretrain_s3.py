"""Pretraining with every output on S3 (moto on loopback): checkpoints, resume, the exported model.

`synthdiv pretrain` runs as a subprocess so its own Ray workers inherit the AWS_* settings, as
pods on a cluster do; the driver, Ray Train's storage and the workers all write through S3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def _pretrain(cfg: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / f"pretrain-{cfg['train']['schedule']['max_steps']}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cli = Path(sys.executable).with_name("synthdiv")
    return subprocess.run(
        [str(cli), "pretrain", "-c", str(path)],
        cwd=tmp_path,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_checkpoints_and_model_on_s3_and_a_relaunch_resumes_from_them(
    s3_bucket, mlflow_server, tmp_path
):
    import s3fs

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"text": f"river {i} flows into the sea " * 8}) + "\n" for i in range(60)
        )
    )
    cfg = {
        "runtime": {
            "storage_uri": f"{s3_bucket}/runs",
            "tracking_uri": mlflow_server,
            "experiment": "pretrain-s3",
            "job_id": "pretrain-s3",
        },
        "model": {"preset": "tiny"},
        "data": {
            "corpora": [{"corpus": {"path": str(corpus)}}],
            "seq_len": 32,
            "tokenize_with_ray": False,
        },
        "train": {
            "schedule": {"global_batch_size": 4, "micro_batch_size": 2, "max_steps": 4},
            "scale": {"num_workers": 2, "cpus_per_worker": 0.5},
            "checkpoint": {"every_steps": 2, "num_to_keep": 2},
        },
    }
    first = _pretrain(cfg, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    fs = s3fs.S3FileSystem(
        skip_instance_cache=True
    )  # this module's moto endpoint, not a cached one
    root = f"{s3_bucket}/runs/pretrain/pretrain-s3"
    steps = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{root}/ray/train") if "step_" in p)
    assert steps == ["step_00000002", "step_00000004"]
    for step in steps:  # each rank wrote its own shard straight to S3, the marker came last
        names = {p.rsplit("/", 1)[-1] for p in fs.ls(f"{root}/ray/train/{step}")}
        assert {"_COMPLETE", ".metadata", "__0_0.distcp", "__1_0.distcp"} <= names
    assert fs.exists(f"{root}/model/_SUCCESS") and fs.exists(f"{root}/model/model.safetensors")

    cfg["train"]["schedule"]["max_steps"] = 6  # the same job, longer: resumes from S3
    second = _pretrain(cfg, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("pretrain-s3")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.tags["synthdiv.train.resumed_from_step"] == "4"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train/loss")) == list(
        range(1, 7)
    )
