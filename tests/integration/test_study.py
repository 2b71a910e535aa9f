"""A whole (tiny) study end to end, its resume, and the HTML report in headless Chromium.

The generator is a real OpenAI-compatible server on loopback that always answers validly: this
test is about the study's DAG, lineage and resume; generation on the packaged SmolLM2 (which
rejects a share of its own samples) is tested in test_generate_embedded.py.
"""

import base64
import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from synthdiv.config import ConfigError, CorpusConfig, parse_config
from synthdiv.report import write_report
from synthdiv.score import example_corpus_path
from synthdiv.study import StudyConfig, plan_study, run_study
from synthdiv.tracking import Tracker
from tests.support.browser import render, screenshot
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.samples import valid_answer
from tests.support.study_configs import two_sample_generate

TINY_STUDY = {
    "name": "tiny",
    "generate": two_sample_generate(
        {
            "name": "scripted",
            "llm": {
                "backend": "openai",
                "base_url": "set-by-test",
                "model": "gen",
                "max_retries": 1,
                "timeout_s": 30,
            },
        }
    ),
    "corpora": [
        {"name": "one", "generate": {}},
        {
            "name": "two",
            "generate": {"n_topics": 2, "generations_per_topic": 1, "family": "topic_style"},
        },
    ],
    "score": {"n_seeds": 1, "metrics": {"distinct_n": {}, "vendi": {}}},
    "pretrain": {
        "data": {"seq_len": 64},
        "train": {
            "schedule": {"global_batch_size": 4, "micro_batch_size": 4, "max_steps": 3},
            "scale": {"num_workers": 1},
            "checkpoint": {"every_steps": 3},
        },
    },
    "sft": None,
    "eval": {"suite": "local", "tasks": ["local_arithmetic"], "limit": 8},
    "correlate": {"n_boot": 100},
}


def _cfg(runtime, base_url="http://127.0.0.1:9/v1", **changes):
    data = TINY_STUDY | {"runtime": runtime.model_dump()} | changes
    data["generate"] = data["generate"] | {
        "generators": [
            {
                "name": "scripted",
                "llm": {
                    "backend": "openai",
                    "base_url": base_url,
                    "model": "gen",
                    "max_retries": 1,
                    "timeout_s": 30,
                },
            }
        ]
    }
    return parse_config(data, StudyConfig)


def test_conflicting_stage_configs_fail_before_anything_runs(runtime):
    bad = TINY_STUDY | {"pretrain": {"data": {"seq_len": 4096}}}
    with pytest.raises(ConfigError, match=r"pretrain \(corpus one, size tiny\): data.seq_len 4096"):
        plan_study(parse_config(bad | {"runtime": runtime.model_dump()}, StudyConfig))
    with pytest.raises(ConfigError, match="at least two corpora"):
        parse_config(TINY_STUDY | {"corpora": [{"name": "solo"}]}, StudyConfig)


def test_grid_expands_to_one_corpus_per_cell():
    cfg = parse_config(
        TINY_STUDY
        | {"corpora": [], "grid": {"n_topics": [1, 2], "family": ["topic", "topic_style"]}},
        StudyConfig,
    )
    assert [c.name for c in cfg.corpora] == [
        "n_topics-1_family-topic",
        "n_topics-1_family-topic_style",
        "n_topics-2_family-topic",
        "n_topics-2_family-topic_style",
    ]


def _check_report(
    page: str, uri: str, experiment_id: str, metrics: set[str], downloads: Path
) -> None:
    """The study's report leads with its correlation figures and keeps the config for last."""
    client = MlflowClient(uri)
    sections = re.findall(r"<section id='(\w+)'><h2>([^<]+)</h2>", page)
    assert [key for key, _ in sections] == [
        "answer",
        "scores",
        "training",
        "evals",
        "samples",
        "config",
    ]
    assert sections[0][1] == "Diversity vs accuracy"
    config = page[page.index("<section id='config'>") :]
    assert config.count("<details>") == 1 and "<details open" not in config  # collapsed

    # every figure the correlate stage wrote (nested under its artifact dir) is on the page
    (run,) = client.search_runs(
        [experiment_id], filter_string="tags.`synthdiv.stage` = 'correlate'"
    )
    pngs = [p for p in Tracker(uri, run.info.run_id).list_artifact_files() if p.endswith(".png")]
    names = {Path(p).name for p in pngs}
    assert names == {f"scatter_{m}.png" for m in metrics} | {"ranking.png"}, names
    answer = page[: page.index("<section id='scores'>")]
    for path in pngs:
        png = Path(client.download_artifacts(run.info.run_id, path, str(downloads))).read_bytes()
        assert (
            f'alt="{path}" src="data:image/png;base64,{base64.b64encode(png).decode()}"' in answer
        )
    assert "no correlation artifacts" not in page
    # two corpora: the page says plainly that this is no evidence
    assert re.search(
        r"<p class='trust'><strong>[^<]*</strong> Too few corpora for a claim \(n = 2 corpora",
        answer,
    )


def _stages(client: MlflowClient, experiment: str, stage: str, status: str = "FINISHED") -> list:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`synthdiv.stage` = '{stage}' and attributes.status = '{status}'",
    )


def _run_until_a_pretrain_finished_then_kill(path: Path, runtime, cwd: Path) -> set[str]:
    """`synthdiv run` in a subprocess, SIGTERMed once a pretrain finished: it exits with one line
    and its study run ends KILLED. Returns the ids of the stage runs finished before the kill."""
    import signal
    import subprocess
    import sys
    import time

    cli = Path(sys.executable).with_name("synthdiv")
    proc = subprocess.Popen(
        [str(cli), "run", str(path)], cwd=cwd, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    client = MlflowClient(runtime.tracking_uri)
    deadline = time.monotonic() + 300
    while not _stages(client, runtime.experiment, "pretrain") and proc.poll() is None:
        assert time.monotonic() < deadline, "no pretrain finished within 300 s"
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()
    done_before = {
        r.info.run_id
        for stage in ("generate", "score", "pretrain")
        for r in _stages(client, runtime.experiment, stage)
    }
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith("stopped (received signal 15)") and "rerun the same command" in last
    assert len(_stages(client, runtime.experiment, "study", "KILLED")) == 1
    return done_before


@pytest.mark.slow
def test_a_killed_study_resumes_runs_to_the_end_and_reports(ray_local, runtime, tmp_path, request):
    """Killed mid-study, rerun: every stage that had finished is reused (same run ids, none run
    twice), the rest runs, and the report and the MLflow UI show the whole study."""
    import yaml

    server = ScriptedOpenAIServer({"": [{"content": valid_answer("study", 1)}]}).__enter__()
    request.addfinalizer(lambda: server.__exit__(None, None, None))
    cfg = _cfg(
        runtime,
        server.base_url,
        real_data=CorpusConfig(path=example_corpus_path()).model_dump(),
        mix={"weights": {"real": 1.0, "synthetic": 1.0}, "total_tokens": 3000},
    )
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    done_before = _run_until_a_pretrain_finished_then_kill(path, runtime, tmp_path)

    first = run_study(cfg)
    client = MlflowClient(runtime.tracking_uri)
    exp = client.get_experiment_by_name(runtime.experiment)
    runs = client.search_runs([exp.experiment_id])
    assert all(r.info.status == "FINISHED" for r in runs)
    assert done_before <= {r.info.run_id for r in runs}  # finished stages were reused, not redone
    jobs = [r.data.tags["synthdiv.job_id"] for r in runs]
    assert len(jobs) == len(set(jobs))  # no stage ran twice under a new run
    stages = sorted(r.data.tags["synthdiv.stage"] for r in runs)
    assert stages == sorted(
        ["study", "correlate"] + ["generate", "score", "mix", "pretrain", "eval"] * 2
    )
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == first["parent_run_id"]]
    assert len(children) == len(runs) - 1  # every stage is a child of the study run
    assert set(first["corpora"]) == {"one", "two"}

    # what `synthdiv run`/`quickstart` prints at the end: per-corpus table and the correlations
    from synthdiv.cli import common
    from synthdiv.cli.study import _print_summary

    with common.out.capture() as printed, common.console.capture():
        _print_summary(first)
    assert "Study: diversity and accuracy per corpus" in printed.get()
    assert "Metrics ranked by" in printed.get() and "MLflow parent run:" in printed.get()

    # a rerun of the finished study reuses every stage: no new runs, same ids
    second = run_study(cfg)
    assert second["parent_run_id"] == first["parent_run_id"]
    assert len(client.search_runs([exp.experiment_id])) == len(runs)

    html = write_report(runtime.tracking_uri, runtime.experiment, tmp_path / "report.html")
    _check_report(
        html.read_text(),
        runtime.tracking_uri,
        exp.experiment_id,
        set(TINY_STUDY["score"]["metrics"]),
        tmp_path / "artifacts",
    )
    dom, shot = screenshot(html.as_uri(), tmp_path / "report")
    assert "Diversity vs accuracy" in dom and shot.stat().st_size > 20_000  # rendered, not blank

    # the MLflow UI (a real server) shows the study's parent run with its children
    exp_url = f"{runtime.tracking_uri}/#/experiments/{exp.experiment_id}/runs"
    dom, shot = render(exp_url, tmp_path / "ui")
    parent_name = client.get_run(first["parent_run_id"]).info.run_name
    assert parent_name == "tiny" and parent_name in dom, "study run not listed in the MLflow UI"
    assert shot.stat().st_size > 20_000
