"""`synthdiv submit` / `synthdiv jobs` against a real Ray head with its job server on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthdiv.cli import app
from tests.support.servers import free_port, wait_http

pytestmark = pytest.mark.slow  # a Ray head takes ~10 s to start; the jobs a few seconds each

RUNNER = CliRunner()


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head --block` on free loopback ports; stopped by PID (never `ray stop`,
    which would also kill other Ray clusters on the machine)."""
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's socket paths are bounded
    dashboard_port = free_port()
    log = open(Path(temp_dir) / "ray-start.log", "wb")  # noqa: SIM115 (closed in teardown)
    env = dict(
        os.environ,
        RAY_AUTH_MODE="disabled",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={free_port()}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard_port}",
            # Every listening port free-picked: other Ray instances may hold the defaults.
            *(
                f"--{flag}={free_port()}"
                for flag in (
                    "ray-client-server-port",
                    "dashboard-agent-listen-port",
                    "dashboard-agent-grpc-port",
                    "runtime-env-agent-port",
                    "metrics-export-port",
                    "node-manager-port",
                    "object-manager-port",
                )
            ),
            "--num-cpus=2",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard_port}"
    try:
        try:
            wait_http(f"{address}/api/version", timeout=120, proc=proc)
        except (RuntimeError, TimeoutError) as err:
            pytest.fail(
                "ray head did not start: "
                f"{err}\n{(Path(temp_dir) / 'ray-start.log').read_text()[-3000:]}"
            )
        yield address
    finally:
        # SIGTERM to `ray start --block` only: it drains and stops the processes it started.
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # our own session's group, nothing else
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "score.yaml"
    path.write_text(
        "corpus:\n  path: docs.jsonl\nmetrics:\n  distinct_n: {}\n"
    )  # a valid ScoreConfig
    return path


def invoke(*args: str):
    return RUNNER.invoke(app, list(args), catch_exceptions=False)


def flat(result) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_submitted_job_runs_to_success_with_its_config(ray_head: str, config: Path) -> None:
    # The job reads the uploaded config from its working_dir and prints an MLflow run link.
    command = (
        "python -c \"import yaml; c = yaml.safe_load(open('config.yaml')); "
        "print('metrics=', list(c['metrics'])); "
        "print('run: http://mlflow.test:5000/#/experiments/3/runs/0123abcd')\""
    )
    result = submit_score(ray_head, config, "--command", command)
    assert result.exit_code == 0, result.output
    assert "metrics= ['distinct_n']" in result.output
    assert "SUCCEEDED" in result.output
    assert "MLflow run: http://mlflow.test:5000/#/experiments/3/runs/0123abcd" in result.output
    job_id = next(line for line in result.output.splitlines() if line.startswith("synthdiv-score-"))

    status = invoke("jobs", "status", job_id, "--address", ray_head)
    assert status.exit_code == 0 and status.output.strip() == "SUCCEEDED"
    logs = invoke("jobs", "logs", job_id, "--address", ray_head)
    assert "metrics= ['distinct_n']" in logs.output


def submit_score(ray_head: str, config: Path, *extra: str):
    return invoke("submit", "score", "--config", str(config), "--address", ray_head, *extra)


def test_failing_job_exits_nonzero(ray_head: str, config: Path) -> None:
    result = submit_score(
        ray_head, config, "--command", "python -c \"import sys; print('boom'); sys.exit(3)\""
    )
    assert result.exit_code == 1, result.output
    assert "boom" in result.output and "FAILED" in result.output


def test_default_entrypoint_is_the_stage_command(ray_head: str, config: Path) -> None:
    """Without --command the head runs `synthdiv score --config config.yaml` itself."""
    result = submit_score(ray_head, config)
    job_id = next(line for line in result.output.splitlines() if line.startswith("synthdiv-score-"))
    from ray.job_submission import JobSubmissionClient

    info = JobSubmissionClient(ray_head).get_job_info(job_id)
    assert info.entrypoint == "synthdiv score --config config.yaml"
    assert info.metadata["synthdiv.stage"] == "score"
    # Whatever the stage did with this toy config, the exit code mirrors the job's status.
    assert result.exit_code == (0 if info.status.value == "SUCCEEDED" else 1)


def test_stop_a_running_job(ray_head: str, config: Path) -> None:
    from ray.job_submission import JobSubmissionClient

    sleeper = "python -c \"import time; print('started', flush=True); time.sleep(300)\""
    result = submit_score(ray_head, config, "--command", sleeper, "--no-follow")
    assert result.exit_code == 0
    job_id = result.output.strip().splitlines()[-1]
    client = JobSubmissionClient(ray_head)
    deadline = time.monotonic() + 180  # generous: CI machines are shared
    while "started" not in client.get_job_logs(job_id):
        info = client.get_job_info(job_id)
        assert info.status.value in ("PENDING", "RUNNING"), f"{info.status}: {info.message}"
        assert time.monotonic() < deadline, "job never started"
        time.sleep(0.5)
    assert invoke("jobs", "stop", job_id, "--address", ray_head).exit_code == 0
    while (
        status := invoke("jobs", "status", job_id, "--address", ray_head).output.strip()
    ) == "RUNNING":
        assert time.monotonic() < deadline + 60, "stop did not take effect"
        time.sleep(0.5)
    assert status == "STOPPED", client.get_job_info(job_id).message


def test_bad_input_is_one_line_error(tmp_path: Path) -> None:
    ray_head = "http://127.0.0.1:9"  # never contacted: the input is rejected first
    missing = invoke(
        "submit", "score", "--config", str(tmp_path / "nope.yaml"), "--address", ray_head
    )
    assert missing.exit_code == 2 and "config file not found" in flat(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    assert "must be a mapping" in flat(
        invoke("submit", "score", "--config", str(bad), "--address", ray_head)
    )
    assert "unknown stage 'bake'" in flat(
        invoke("submit", "bake", "--config", str(bad), "--address", ray_head)
    )
    invalid = tmp_path / "score.yaml"
    invalid.write_text("corpus: {path: docs.jsonl}\nmetric: {vendi: {}}\n")  # typo of metrics
    rejected = invoke("submit", "score", "--config", str(invalid), "--address", ray_head)
    assert rejected.exit_code == 2 and "metric:" in flat(rejected)
    assert str(invalid) in "".join(rejected.output.split())  # rich may wrap a long path
    both = invoke("submit", "score", "--config", str(bad), "--address", ray_head, "--rayjob")
    assert both.exit_code == 2 and "exactly one" in flat(both)
