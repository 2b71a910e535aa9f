"""A whole (tiny) study end to end, its resume, and the HTML report in headless Chromium."""

import shutil
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from synthdiv.config import ConfigError, CorpusConfig, parse_config
from synthdiv.report import write_report
from synthdiv.score import example_corpus_path
from synthdiv.study import StudyConfig, plan_study, run_study

TINY_STUDY = {
    "name": "tiny",
    "generate": {
        "n_topics": 1, "generations_per_topic": 2, "family": "topic", "max_text_chars": 200,
        "generators": [{"llm": {"backend": "embedded", "max_tokens": 300, "max_retries": 1}}],
        "output": {"shard_size": 2},
    },
    "corpora": [{"name": "one", "generate": {}}, {"name": "two", "generate": {"n_topics": 2, "generations_per_topic": 1, "family": "topic_style"}}],
    "score": {"n_seeds": 1, "metrics": {"distinct_n": {}, "vendi": {}}},
    "pretrain": {
        "data": {"seq_len": 64},
        "train": {"schedule": {"global_batch_size": 4, "micro_batch_size": 4, "max_steps": 3},
                  "scale": {"num_workers": 1}, "checkpoint": {"every_steps": 3}},
    },
    "sft": None,
    "eval": {"suite": "local", "tasks": ["local_arithmetic"], "limit": 8},
    "correlate": {"n_boot": 100},
}


def _cfg(runtime, **changes):
    data = TINY_STUDY | {"runtime": runtime.model_dump()} | changes
    return parse_config(data, StudyConfig)


def test_conflicting_stage_configs_fail_before_anything_runs(runtime):
    bad = TINY_STUDY | {"pretrain": {"data": {"seq_len": 4096}}}
    with pytest.raises(ConfigError, match=r"pretrain\[one,tiny\]"):
        plan_study(parse_config(bad | {"runtime": runtime.model_dump()}, StudyConfig))
    with pytest.raises(ConfigError, match="at least two corpora"):
        parse_config(TINY_STUDY | {"corpora": [{"name": "solo"}]}, StudyConfig)


def test_grid_expands_to_one_corpus_per_cell():
    cfg = parse_config(TINY_STUDY | {"corpora": [], "grid": {"n_topics": [1, 2], "family": ["topic", "topic_style"]}}, StudyConfig)
    assert [c.name for c in cfg.corpora] == [
        "n_topics-1_family-topic", "n_topics-1_family-topic_style",
        "n_topics-2_family-topic", "n_topics-2_family-topic_style",
    ]


@pytest.mark.slow
def test_study_runs_resumes_and_reports(ray_local, runtime, tmp_path):
    cfg = _cfg(runtime, real_data=CorpusConfig(path=example_corpus_path()).model_dump(),
               mix={"weights": {"real": 1.0, "synthetic": 1.0}, "total_tokens": 3000})
    first = run_study(cfg)
    client = MlflowClient(runtime.tracking_uri)
    exp = client.get_experiment_by_name(runtime.experiment)
    runs = client.search_runs([exp.experiment_id])
    stages = sorted(r.data.tags["synthdiv.stage"] for r in runs)
    assert stages == sorted(["study", "correlate"] + ["generate", "score", "mix", "pretrain", "eval"] * 2)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == first["parent_run_id"]]
    assert len(children) == len(runs) - 1  # every stage is a child of the study run
    assert all(r.info.status == "FINISHED" for r in runs)
    assert set(first["corpora"]) == {"one", "two"}

    # a rerun (as after a crash) reuses every finished stage: no new runs, same ids
    second = run_study(cfg)
    assert second["parent_run_id"] == first["parent_run_id"]
    assert len(client.search_runs([exp.experiment_id])) == len(runs)

    html = write_report(runtime.tracking_uri, runtime.experiment, tmp_path / "report.html")
    text = html.read_text()
    for heading in ("Diversity scores", "Training curves", "Evaluation", "Diversity vs accuracy"):
        assert f"<h2>{heading}</h2>" in text
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: scripts/setup.sh --dev installs it")
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}",
         "--window-size=1400,2000", f"--screenshot={shot}", html.as_uri()],
        check=True, timeout=120, capture_output=True,
    )
    assert shot.stat().st_size > 20_000  # a rendered page with tables and plots, not a blank one
