"""A native engine that dies of a signal fails its stage with the engine, the signal and the crash
report named; the run ends FAILED with that reason; a study stops at that stage.

The crashes are real (the worker process dies of SIGSEGV or SIGABRT), injected with
``SYNTHDIV_INJECT_CRASH`` because this machine's CPU does not crash on its own. Each runs the
CLI or a fresh interpreter in a subprocess, so the engines start with the variable set.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from synthdiv.crash import ENV_CRASH_DIR, ENV_INJECT
from synthdiv.tracking import TAG_ERROR
from tests.support.study_configs import two_sample_generate

pytestmark = pytest.mark.slow
SYNTHDIV = str(Path(sys.executable).with_name("synthdiv"))

STUDY = {
    "name": "crash",
    "generate": two_sample_generate(
        {
            "llm": {
                "backend": "embedded",
                "max_tokens": 64,
                "concurrency": 2,
                "batch_size": 1,
                "max_retries": 0,
            }
        }
    ),
    "corpora": [{"name": "one", "generate": {}}, {"name": "two", "generate": {"seed": 1}}],
    "score": {"n_seeds": 1, "metrics": {"distinct_n": {}}},
    "pretrain": {
        "data": {"seq_len": 64},
        "train": {
            "schedule": {"global_batch_size": 4, "micro_batch_size": 4, "max_steps": 2},
            "scale": {"num_workers": 1},
        },
    },
    "sft": None,
    "eval": {"suite": "local", "tasks": ["local_arithmetic"], "limit": 8},
}


def _env(tmp_path: Path, inject: str) -> dict[str, str]:
    return dict(
        os.environ,
        **{ENV_INJECT: inject, ENV_CRASH_DIR: str(tmp_path / "crash"), "PYTHONPATH": os.getcwd()},
    )


def _runs(tracking_uri: str, experiment: str) -> dict[str, list]:
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    by_stage: dict[str, list] = {}
    for run in client.search_runs([exp.experiment_id]) if exp else []:
        by_stage.setdefault(run.data.tags.get("synthdiv.stage", ""), []).append(run)
    return by_stage


def _assert_crash_message(text: str, engine: str, signal: str, tmp_path: Path) -> Path:
    assert re.search(
        rf"error: {re.escape(engine)}[^\n]* died with {signal}; crash report: ", text
    ), text[-3000:]
    report = Path(text.split("crash report: ")[1].split()[0].rstrip(";"))
    assert report.parent == tmp_path / "crash" and "Fatal Python error" in report.read_text()
    return report


def test_llm_engine_crash_fails_generate_and_stops_the_study(runtime, tmp_path, smollm2_gguf):
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(STUDY | {"runtime": runtime.model_dump()}))
    out = subprocess.run(
        [SYNTHDIV, "run", str(config)],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(tmp_path, "llm-engine:SIGSEGV"),
    )
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-3000:]
    assert "Traceback" not in out.stderr  # an expected failure: the message, whole
    report = _assert_crash_message(
        out.stderr, "embedded LLM engine (llama.cpp, gguf:", "SIGSEGV", tmp_path
    )
    assert "Current thread" in out.stderr and " in answer" in out.stderr  # where it crashed
    assert " in answer" in report.read_text()  # the stack shows the call that crashed
    runs = _runs(runtime.tracking_uri, runtime.experiment)
    (generate,) = runs["generate"]  # the first corpus's; the second never started
    assert generate.info.status == "FAILED" and "SIGSEGV" in generate.data.tags[TAG_ERROR]
    assert [r.info.status for r in runs["study"]] == ["FAILED"]
    assert "score" not in runs and "pretrain" not in runs  # nothing ran on an empty corpus


def test_engine_crash_without_ray_is_an_error_in_the_caller(tmp_path, smollm2_gguf):
    code = (
        "from synthdiv.config import LLMConfig\n"
        "from synthdiv.errors import EngineCrashError\n"
        "from synthdiv.llm import build_backend\n"
        "from synthdiv.llm.base import ChatRequest\n"
        "req = ChatRequest(id='a', messages=[{'role': 'user', 'content': 'hi'}], max_tokens=4)\n"
        "try:\n"
        "    list(build_backend(LLMConfig(max_tokens=4)).run([req]))\n"
        "except EngineCrashError as err:\n"
        "    print('CAUGHT', err)\n"
        "print('caller alive')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(tmp_path, "llm-engine:SIGABRT"),
    )
    assert out.returncode == 0 and "caller alive" in out.stdout, out.stdout + out.stderr
    _assert_crash_message(
        out.stdout.replace("CAUGHT ", "error: "), "embedded LLM engine", "SIGABRT", tmp_path
    )


def test_embedding_actor_crash_fails_score_once_not_forever(runtime, tmp_path, minilm):
    config = tmp_path / "score.yaml"
    config.write_text(
        yaml.safe_dump({"runtime": runtime.model_dump(), "n_seeds": 1, "metrics": {"vendi": {}}})
    )
    out = subprocess.run(
        [SYNTHDIV, "score", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(tmp_path, "embed-actor:SIGSEGV"),
    )
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-3000:]
    _assert_crash_message(out.stderr, "embedding actor", "SIGSEGV", tmp_path)
    (score,) = _runs(runtime.tracking_uri, runtime.experiment)["score"]
    assert score.info.status == "FAILED" and "embedding actor" in score.data.tags[TAG_ERROR]
