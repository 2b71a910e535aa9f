"""`synthdiv eval` end to end: the packaged SmolLM2 through lm-eval on local tasks, results and
lineage in a real MLflow server; bad input fails before any model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from synthdiv.cli import app
from synthdiv.evaluate import EvalConfig, Lineage, ModelConfig, evaluate_model
from synthdiv.models import smollm2_hf_dir

TASKS = ["local_arithmetic", "local_world_facts"]
LIMIT = 20


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    return smollm2_hf_dir()


def _without_tokenizer(src: Path, dst: Path) -> Path:
    """A checkpoint as a training loop might save it: config and weights, no tokenizer."""
    dst.mkdir(parents=True)
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        (dst / name).symlink_to(src / name)
    return dst


@pytest.mark.slow
def test_eval_logs_scores_and_lineage(
    ray_local, runtime, tmp_path, smollm2_dir, capfd, monkeypatch
):
    monkeypatch.setenv("TQDM_DISABLE", "1")  # as the CLI sets it
    ckpt = _without_tokenizer(smollm2_dir, tmp_path / "ckpt")
    cfg = EvalConfig(
        runtime=runtime,
        model=ModelConfig(path=str(ckpt), tokenizer=str(smollm2_dir)),  # tokenizer fallback
        tasks=TASKS,
        limit=LIMIT,
        lineage=Lineage(
            dataset_digest="abc123",
            model_size="135M",
            variant="base",
            checkpoint_run_id="train-run-1",
            corpus_name="topics",
        ),
    )
    result = evaluate_model(cfg)
    assert "Running loglikelihood requests" not in capfd.readouterr().err  # lm-eval's bars off
    report = result.extra["report"]
    assert [t.task for t in report.tasks] == TASKS
    for t in report.tasks:
        assert t.n == LIMIT and 0.0 <= t.score <= 1.0 and t.metric == "acc"
        assert t.stderr is not None and 0 < t.stderr < 0.2
    # the packaged model knows some capitals; a 4-way guess would be 0.25
    assert report.average > 0.25

    client = MlflowClient(runtime.tracking_uri)
    run = client.get_run(result.outputs["mlflow_run_id"])
    metrics, tags = run.data.metrics, run.data.tags
    assert tags["synthdiv.stage"] == "eval" and run.info.status == "FINISHED"
    assert tags["synthdiv.dataset_digest"] == "abc123"
    assert (tags["synthdiv.model_size"], tags["synthdiv.variant"]) == ("135M", "base")
    assert tags["synthdiv.checkpoint_run_id"] == "train-run-1"
    for t in report.tasks:
        assert metrics[f"eval.{t.task}.acc"] == pytest.approx(t.score)
        assert metrics[f"eval.{t.task}.acc_stderr"] == pytest.approx(t.stderr)
    assert metrics["eval.avg"] == pytest.approx(sum(t.score for t in report.tasks) / 2)
    arts = {f.path for f in client.list_artifacts(run.info.run_id, "eval")}
    assert {
        "eval/results.json",
        "eval/scores.md",
        "eval/lm_eval_results.json",
        "eval/samples",
    } <= arts
    stored = json.loads(Path(result.outputs["results"]).read_text())
    assert stored["average"] == pytest.approx(report.average)
    samples = client.download_artifacts(run.info.run_id, "eval/samples/local_world_facts.jsonl")
    rows = [json.loads(line) for line in Path(samples).read_text().splitlines()]
    assert len(rows) == LIMIT
    assert all(r["context"].startswith("Question: ") for r in rows)  # no chat template for base
    assert sum(r["pred"] == r["target"] for r in rows) / LIMIT == pytest.approx(
        report.tasks[1].score
    )


@pytest.mark.slow
def test_sft_models_are_evaluated_with_their_system_prompt(
    ray_local, runtime, tmp_path, smollm2_dir
):
    cfg = EvalConfig(
        runtime=runtime,
        model=ModelConfig(path=str(smollm2_dir)),
        tasks=["local_sequences"],
        limit=6,
        system_instruction="You are a careful tutor.",
        apply_chat_template=True,
        lineage=Lineage(variant="sft"),
    )
    result = evaluate_model(cfg)
    run_id = result.outputs["mlflow_run_id"]
    path = MlflowClient(runtime.tracking_uri).download_artifacts(
        run_id, "eval/samples/local_sequences.jsonl"
    )
    first = json.loads(Path(path).read_text().splitlines()[0])
    assert first["context"].startswith("<|im_start|>system\nYou are a careful tutor.<|im_end|>")
    assert "<|im_start|>assistant" in first["context"]


def test_cli_reports_checkpoint_without_tokenizer(tmp_path, smollm2_dir):
    ckpt = _without_tokenizer(smollm2_dir, tmp_path / "ckpt")
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "--model",
            str(ckpt),
            "--limit",
            "2",
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'm.db'}",
        ],
    )
    assert res.exit_code == 2
    assert f"checkpoint {ckpt} has no tokenizer" in " ".join(res.output.split())


def test_cli_reports_malformed_task_row(tmp_path, smollm2_dir):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "t.yaml").write_text(
        "task: t\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: t.jsonl\n"
        "output_type: multiple_choice\ntest_split: test\ndoc_to_text: '{{question}}'\n"
        "doc_to_choice: '{{choices}}'\ndoc_to_target: answer\nmetric_list:\n  - metric: acc\n"
    )
    (tasks / "t.jsonl").write_text(
        '{"question": "a?", "choices": ["x", "y"], "answer": '
        '0}\n{"question": "b?", "choices": ["x", "y"]}\n'
    )
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "--model",
            str(smollm2_dir),
            "--task-dir",
            str(tasks),
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'm.db'}",
        ],
    )
    assert res.exit_code == 2
    assert f"{tasks / 't.jsonl'}:2: 'answer' must be the integer index" in " ".join(
        res.output.split()
    )


def test_the_gpu_path_sends_the_whole_eval_to_a_ray_task(ray_local, smollm2_dir):
    """On cuda the eval runs as a Ray task requesting the GPUs; what it sends and returns must
    cross processes. Here the same task runs on CPU (no GPU to request)."""
    import ray

    from synthdiv.evaluate.stage import EvalStage, harness_task_options, resolve_and_evaluate
    from synthdiv.evaluate.suites import task_specs

    gpu = EvalConfig(
        model=ModelConfig(path=str(smollm2_dir), device="cuda", num_gpus=2), tasks=TASKS, limit=4
    )
    assert harness_task_options(gpu) == {"num_gpus": 2.0, "num_cpus": 1}
    assert EvalStage(gpu).needs_ray
    cpu = gpu.model_copy(update={"model": gpu.model.model_copy(update={"device": "cpu"})})
    assert harness_task_options(cpu) is None and not EvalStage(cpu).needs_ray
    raw, model = ray.get(ray.remote(num_cpus=1)(resolve_and_evaluate).remote(cpu, task_specs(cpu)))
    assert model.path == str(smollm2_dir) and set(TASKS) <= set(raw["results"])
