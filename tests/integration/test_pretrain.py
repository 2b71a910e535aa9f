"""Pretraining on Ray Train with 2 gloo workers and a tiny model: loss, resume, faults, MLflow."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from safetensors.torch import load_file

from synthdiv.config import parse_config
from synthdiv.stage import run_stage
from synthdiv.tracking import TAG_DATASET, TAG_JOB
from synthdiv.train.config import PretrainConfig
from synthdiv.train.pretrain import PretrainStage
from synthdiv.train.trainer import TrainingDivergedError

pytestmark = pytest.mark.slow

WORDS = "the cat sat on a mat while dogs ran over green hills and rivers flow into seas".split()
WORDS += "under bright skies".split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small repetitive JSONL corpus (id/text rows): easy to learn, so the loss must fall."""
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    rows = [
        {"id": f"d{i}", "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))}
        for i in range(150)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def config(runtime, corpus: str, ray_data: bool = False, **train) -> PretrainConfig:
    block = {
        "optim": {"lr": 3e-3, "warmup_steps": 1},
        "schedule": {"global_batch_size": 8, "micro_batch_size": 2, "max_steps": 6},
        "scale": {"num_workers": 2, "cpus_per_worker": 0.5},
        "checkpoint": {"every_steps": 2, "num_to_keep": 3},
    }
    for key, value in train.items():
        block[key] = {**block.get(key, {}), **value}
    return parse_config(
        {
            "runtime": runtime.model_dump(),
            "data": {
                "corpora": [{"corpus": {"path": corpus}}],
                "seq_len": 32,
                "tokenize_with_ray": ray_data,
            },
            "model": {"preset": "tiny"},
            "train": block,
            "diversity_scores": {"cluster_agent": 3.9},
        },
        PretrainConfig,
    )


@pytest.fixture(scope="module")
def module_runtime(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str):
    from synthdiv.config import RuntimeConfig

    root = tmp_path_factory.mktemp("pretrain-shared")
    return RuntimeConfig(
        tracking_uri=mlflow_server, experiment=f"test-{root.name}", storage_uri=str(root / "runs")
    )


@pytest.fixture(scope="module")
def clean_ddp(ray_local, module_runtime, corpus):
    """One uninterrupted DDP run of the default config: the reference several tests compare
    against (its weights) or reuse (its finished run)."""
    return run_stage(PretrainStage(config(module_runtime, corpus)), reuse=True)


def weights(result) -> dict:
    return load_file(str(Path(result.outputs["model"]) / "model.safetensors"))


def test_loss_falls_model_logged_and_relaunch_resumes(ray_local, runtime, corpus, mlflow_server):
    from transformers import AutoModelForCausalLM

    cfg = config(runtime.model_copy(update={"job_id": "pretrain-resume"}), corpus, ray_data=True)
    first = run_stage(PretrainStage(cfg))
    client = MlflowClient(mlflow_server)
    run_id = first.outputs["mlflow_run_id"]
    losses = [
        m.value
        for m in sorted(client.get_metric_history(run_id, "train/loss"), key=lambda m: m.step)
    ]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.5
    for key in (
        "train/lr",
        "train/grad_norm",
        "train/tokens_per_s",
        "train/mfu",
        "train/tokens_seen",
    ):
        assert client.get_metric_history(run_id, key), key
    [prepare] = client.get_metric_history(run_id, "data.prepare_seconds")
    assert prepare.value > 0 and client.get_metric_history(run_id, "data.tokens_per_s")[0].value > 0
    model = client.get_logged_model(first.outputs["model_id"])
    assert model.tags[TAG_DATASET] == client.get_run(run_id).data.tags[TAG_DATASET]
    assert model.tags["synthdiv.diversity.cluster_agent"] == "3.9"
    loaded = AutoModelForCausalLM.from_pretrained(first.outputs["model"])
    assert loaded.config.num_hidden_layers == 2

    # A torn checkpoint newer than the last good one must be skipped on relaunch.
    torn = Path(first.outputs["checkpoints"]) / "step_00000007"
    torn.mkdir()
    (torn / "__0_0.distcp").write_bytes(b"half a shard")  # no .metadata, no marker
    longer = config(
        runtime.model_copy(update={"job_id": "pretrain-resume"}),
        corpus,
        ray_data=True,
        schedule={"max_steps": 8},
    )
    second = run_stage(PretrainStage(longer))
    assert second.outputs["mlflow_run_id"] == run_id  # same MLflow run, not a duplicate
    runs = client.search_runs(
        [client.get_run(run_id).info.experiment_id],
        filter_string=f"tags.`{TAG_JOB}` = 'pretrain-resume'",
    )
    assert len(runs) == 1
    tags = client.get_run(run_id).data.tags
    assert tags["synthdiv.train.resumed_from_step"] == "6"
    steps = sorted(m.step for m in client.get_metric_history(run_id, "train/loss"))
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]
    assert len(client.get_metric_history(run_id, "data.prepare_seconds")) == 1  # store reused


def test_killed_worker_resumes_to_identical_weights(
    ray_local, runtime, corpus, mlflow_server, clean_ddp
):
    clean = clean_ddp
    faulty_cfg = config(
        runtime,
        corpus,
        checkpoint={"max_failures": 1},
        faults={"fail_at_step": 3, "fail_rank": 1, "fail_mode": "exit"},
    )
    faulty = run_stage(PretrainStage(faulty_cfg))
    assert clean.outputs["mlflow_run_id"] != faulty.outputs["mlflow_run_id"]
    tags = MlflowClient(mlflow_server).get_run(faulty.outputs["mlflow_run_id"]).data.tags
    assert tags["synthdiv.train.resumed_from_step"] == "2"  # restarted from the step-2 checkpoint
    history = MlflowClient(mlflow_server).get_metric_history(
        faulty.outputs["mlflow_run_id"], "train/loss"
    )
    steps = [m.step for m in history]
    assert sorted(steps) == list(range(1, 7))  # step 3 ran twice, but is in the curve once
    a, b = weights(clean), weights(faulty)
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] == b[name]).all(), name  # bit-identical on CPU


def test_nan_loss_stops_and_keeps_last_good_checkpoint(ray_local, runtime, corpus):
    cfg = config(runtime, corpus, faults={"nan_at_step": 3}, checkpoint={"max_failures": 1})
    with pytest.raises(TrainingDivergedError, match="non-finite at step 3") as err:
        run_stage(PretrainStage(cfg))
    assert "step_00000002" in str(err.value)


def test_missing_dataset_is_a_clear_error(ray_local, runtime, tmp_path):
    from synthdiv.train.data import TrainDataError

    cfg = config(runtime, str(tmp_path / "nope.jsonl"))
    with pytest.raises(TrainDataError, match="dataset not found"):
        run_stage(PretrainStage(cfg))


def test_every_checkpoint_is_evaluated_while_training(ray_local, runtime, corpus, mlflow_server):
    evals = {"eval": {"suite": "local", "tasks": ["local_arithmetic"], "limit": 8}, "num_cpus": 0.5}
    cfg = config(runtime, corpus, schedule={"max_steps": 4}, eval_checkpoints=evals)
    result = run_stage(PretrainStage(cfg))
    client = MlflowClient(mlflow_server)
    history = client.get_metric_history(result.outputs["mlflow_run_id"], "val/avg")
    assert sorted(m.step for m in history) == [2, 4]  # one eval per checkpoint, at its step
    assert all(0.0 <= m.value <= 1.0 for m in history)
    acc = client.get_metric_history(result.outputs["mlflow_run_id"], "val/local_arithmetic.acc")
    assert sorted(m.step for m in acc) == [2, 4]


def test_checkpoint_eval_config_is_checked_before_training(runtime, corpus):
    from synthdiv.config import ConfigError

    with pytest.raises(ConfigError, match="the model is the checkpoint"):
        config(runtime, corpus, eval_checkpoints={"eval": {"model": {"path": "x"}}})
    with pytest.raises(ConfigError, match="limit"):
        config(runtime, corpus, eval_checkpoints={"eval": {"limit": 0}})


def test_fsdp2_inside_ray_train_reaches_the_ddp_weights(ray_local, runtime, corpus, clean_ddp):
    fsdp = run_stage(PretrainStage(config(runtime, corpus, scale={"strategy": "fsdp"})))
    a, b = weights(clean_ddp), weights(fsdp)
    assert a.keys() == b.keys()
    for name in a:  # same data, seeds and math; only the reduction order differs
        assert torch.allclose(a[name], b[name], atol=1e-5), name


def test_a_worker_dying_of_a_signal_fails_the_stage_with_its_crash_report(
    ray_local, runtime, corpus, mlflow_server
):
    from synthdiv.errors import EngineCrashError
    from synthdiv.tracking import TAG_ERROR

    cfg = config(runtime, corpus, faults={"fail_at_step": 1, "fail_rank": 0, "fail_mode": "abort"})
    with pytest.raises(EngineCrashError) as caught:
        run_stage(PretrainStage(cfg))
    err = caught.value
    assert err.signal == "SIGABRT" and "pretrain training worker died with SIGABRT" in str(err)
    assert err.log and "before_step" in Path(err.log).read_text()  # the stack of the dying call
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name(runtime.experiment)
    (run,) = client.search_runs(
        [exp.experiment_id], filter_string="tags.`synthdiv.stage` = 'pretrain'"
    )
    assert run.info.status == "FAILED" and "SIGABRT" in run.data.tags[TAG_ERROR]


def test_new_scores_or_worker_count_reuse_the_finished_pretrain(
    ray_local, module_runtime, corpus, clean_ddp
):
    first = clean_ddp
    moved = config(module_runtime, corpus, scale={"num_workers": 1, "cpus_per_worker": 1})
    moved = moved.model_copy(update={"diversity_scores": {"cluster_agent": 4.4}})
    again = run_stage(PretrainStage(moved), reuse=True)
    assert (
        again.extra.get("reused")
        and again.outputs["mlflow_run_id"] == first.outputs["mlflow_run_id"]
    )
    assert again.outputs["model"] == first.outputs["model"]
