"""Send stages to a cluster: the Ray Jobs API (a running RayCluster, here) or a KubeRay RayJob
(:mod:`synthdiv.jobs_kuberay`).

Both paths run the stage's own command, e.g. ``synthdiv score --config <file>``, with the user's
YAML config shipped alongside: uploaded in the job's ``working_dir`` (Ray Jobs API) or mounted
from a ConfigMap (RayJob). This module holds what both share: which commands are stages and how
each takes its config, the config check, job statuses and the MLflow links in a job's logs.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import re
import shlex
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from synthdiv.errors import SynthdivError

CONFIG_NAME = "config.yaml"
MLFLOW_RUN_LINK = re.compile(r"https?://\S+/#/experiments/\d+/runs/[0-9a-f]+")
TERMINAL_RAY_STATUSES = {"SUCCEEDED", "FAILED", "STOPPED"}
# `submit` reads a --config too, but only to ship it: it is never a job's command itself.
NOT_STAGES = frozenset({"submit"})
# The model each stage command validates its config with (`load_or_fail(config, Model, …)` in
# synthdiv/cli/), as "module:attribute" so only the submitted stage's module is imported.
# tests/deploy/test_stages.py checks every entry against what the command really loads.
CONFIG_MODELS = {
    "generate": "synthdiv.generate.config:GenerateConfig",
    "score": "synthdiv.score:ScoreConfig",
    "mix": "synthdiv.generate.mix:MixConfig",
    "pretrain": "synthdiv.train.config:PretrainConfig",
    "sft": "synthdiv.train.config:SftConfig",
    "eval": "synthdiv.evaluate.config:EvalConfig",
    "correlate": "synthdiv.evaluate.correlate:CorrelateConfig",
    "validate-metrics": "synthdiv.validation:ValidateMetricsConfig",
    "run": "synthdiv.study:StudyConfig",
}
# `synthdiv generate` reads a config with a `grid:` block as a grid of corpora.
GENERATE_GRID_MODEL = "synthdiv.generate.grid:GenerateGridConfig"


class JobError(SynthdivError, RuntimeError):
    """A submission that cannot proceed; the message names the cause."""


@dataclass(frozen=True)
class StageCommand:
    """A ``synthdiv`` command that reads a stage config, and how it takes the file."""

    name: str
    config_flag: str | None  # "--config", or None when the file is a positional argument

    def argv(self, config_path: str) -> list[str]:
        flag = [self.config_flag] if self.config_flag else []
        return ["synthdiv", self.name, *flag, config_path]


@functools.cache
def stage_commands() -> dict[str, StageCommand]:
    """Every registered CLI command with a ``config`` parameter: the submittable stages.

    Read from the typer app itself, so a new stage command is submittable the day it is added
    and a renamed one cannot leave a stale name behind.
    """
    import typer

    from synthdiv.cli import app  # imported here: synthdiv.cli imports this module

    # typer ships its own click, so its classes are not click's: go by click's attributes.
    group = typer.main.get_command(app)
    stages = {}
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands") or name in NOT_STAGES:  # a sub-app, e.g. `jobs`
            continue
        for param in command.params:
            if param.name == "config":
                longs = [opt for opt in param.opts if opt.startswith("--")]
                is_option = param.param_type_name == "option"
                stages[name] = StageCommand(name, longs[0] if is_option else None)
    return stages


def stage_command(stage: str) -> StageCommand:
    stages = stage_commands()
    if stage not in stages:
        raise JobError(f"unknown stage {stage!r}; choose one of {', '.join(stages)}")
    return stages[stage]


def stage_entrypoint(stage: str, config_path: str) -> str:
    return shlex.join(stage_command(stage).argv(config_path))


def read_config_text(path: Path) -> str:
    """The config as text, checked to be a YAML mapping (all a custom ``--command`` gets)."""
    if not path.is_file():
        raise JobError(f"config file not found: {path}")
    text = path.read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise JobError(f"config {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise JobError(f"config {path} must be a mapping at the top level")
    return text


def config_model(stage: str, data: dict[str, Any]) -> type:
    """The pydantic model ``synthdiv <stage>`` validates this config's data with."""
    stage_command(stage)
    if stage not in CONFIG_MODELS:
        raise JobError(f"no config model known for stage {stage!r} (add it to CONFIG_MODELS)")
    grid = stage == "generate" and "grid" in data
    return _resolve(GENERATE_GRID_MODEL if grid else CONFIG_MODELS[stage])


def _resolve(ref: str) -> Any:
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def read_stage_config(stage: str, path: Path) -> str:
    """The config as text, validated exactly as the stage's own command will validate it, so a
    bad key fails here, naming the key and the file, instead of on the cluster."""
    from synthdiv.config import ConfigError, parse_config

    text = read_config_text(path)
    data = yaml.safe_load(text) or {}  # an empty file means all defaults, as for the command
    try:
        parse_config(data, config_model(stage, data), str(path))
    except ConfigError as err:  # its message names the file and each bad key
        raise JobError(str(err)) from None
    return text


def shipped_config(stage: str, path: Path, entrypoint: str | None = None) -> str:
    """The text a job ships: validated for the stage, or, with a custom entrypoint (a script
    reads it, not the stage), only checked to be a YAML mapping."""
    return read_config_text(path) if entrypoint else read_stage_config(stage, path)


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
        text = shipped_config(stage, config, entrypoint)
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
