"""Send stages to a cluster: the Ray Jobs API (a running RayCluster, here) or a KubeRay RayJob
(:mod:`synthdiv.jobs_kuberay`).

Both paths run the same command, ``synthdiv <stage> --config <file>``, with the user's YAML
config shipped alongside: uploaded in the job's ``working_dir`` (Ray Jobs API) or mounted from a
ConfigMap (RayJob). This module holds what both share: the stage command, the config check, job
statuses and the MLflow links in a job's logs.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

STAGES = ("generate", "score", "pretrain", "sft", "eval", "study")
CONFIG_NAME = "config.yaml"
MLFLOW_RUN_LINK = re.compile(r"https?://\S+/#/experiments/\d+/runs/[0-9a-f]+")
TERMINAL_RAY_STATUSES = {"SUCCEEDED", "FAILED", "STOPPED"}


class JobError(RuntimeError):
    """A submission that cannot proceed; the message names the cause."""


def stage_entrypoint(stage: str, config_path: str) -> str:
    if stage not in STAGES:
        raise JobError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    return f"synthdiv {stage} --config {config_path}"


def read_config_text(path: Path) -> str:
    """The config as text, checked to be a YAML mapping before anything is sent."""
    if not path.is_file():
        raise JobError(f"config file not found: {path}")
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise JobError(f"config {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise JobError(f"config {path} must be a mapping at the top level")
    return text


def find_mlflow_links(logs: str) -> list[str]:
    return list(dict.fromkeys(MLFLOW_RUN_LINK.findall(logs)))


def exit_code(status: str) -> int:
    """Process exit code for a final job status: 0 only for success."""
    return {"SUCCEEDED": 0, "STOPPED": 130}.get(status, 1)


# --------------------------------------------------------------------------- Ray Jobs API


class RayJobsApi:
    """A running Ray cluster's job server (``http://HEAD:8265``)."""

    def __init__(self, address: str):
        from ray.job_submission import JobSubmissionClient

        try:
            self.client = JobSubmissionClient(address)
        except (OSError, RuntimeError, ValueError) as err:  # requests' errors are OSErrors
            raise JobError(f"cannot reach the Ray job server at {address}: {err}") from None
        self.address = address

    def submit(
        self,
        stage: str,
        config: Path,
        entrypoint: str | None = None,
        env_vars: dict[str, str] | None = None,
    ) -> str:
        """Upload the config as ./config.yaml in the job's working_dir and start the stage."""
        text = read_config_text(config)
        command = entrypoint or stage_entrypoint(stage, CONFIG_NAME)
        with tempfile.TemporaryDirectory(prefix="synthdiv-job-") as workdir:
            Path(workdir, CONFIG_NAME).write_text(text)
            runtime_env: dict[str, Any] = {"working_dir": workdir}
            if env_vars:
                runtime_env["env_vars"] = env_vars
            return self._submit_when_agent_ready(
                entrypoint=command,
                runtime_env=runtime_env,
                submission_id=f"synthdiv-{stage}-{uuid.uuid4().hex[:8]}",
                metadata={"synthdiv.stage": stage, "synthdiv.config": config.name},
            )

    def _submit_when_agent_ready(self, agent_wait_s: float = 60.0, **job: Any) -> str:
        """A fresh head answers before its job agent is up ("No available agent"): retry that
        one error for a bounded time; anything else is reported at once."""
        deadline = time.monotonic() + agent_wait_s
        while True:
            try:
                return self.client.submit_job(**job)
            except RuntimeError as err:
                if "No available agent" not in str(err) or time.monotonic() > deadline:
                    raise JobError(f"job submission to {self.address} failed: {err}") from None
                time.sleep(1.0)

    def status(self, job_id: str) -> str:
        return str(self.client.get_job_status(job_id).value)

    def logs(self, job_id: str) -> str:
        return self.client.get_job_logs(job_id)

    def stop(self, job_id: str) -> bool:
        return self.client.stop_job(job_id)

    def follow(self, job_id: str, on_text: Callable[[str], None]) -> str:
        """Stream the job's logs to ``on_text`` until it ends; return its final status."""

        async def tail() -> None:
            async for chunk in self.client.tail_job_logs(job_id):
                on_text(chunk)

        asyncio.run(tail())
        # The log stream closes when the job ends; the status can lag it by a beat.
        status = self.status(job_id)
        while status not in TERMINAL_RAY_STATUSES:
            time.sleep(0.5)
            status = self.status(job_id)
        return status

