"""Every command a cluster job runs is a real `synthdiv` command that accepts its config.

Stages come from the CLI itself (synthdiv.jobs.stage_commands); these tests hold the chart's
RayJobs, `synthdiv submit`'s RayJobs, the docs and the examples to them, and check that submit
validates a config with the model the stage's own command uses.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from synthdiv.cli import app
from synthdiv.jobs import (
    JobError,
    config_model,
    read_stage_config,
    stage_commands,
    stage_entrypoint,
)
from synthdiv.jobs_kuberay import build_rayjob
from tests.deploy.conftest import CHART, REPO, helm_template
from tests.deploy.pods import ray_objects

RUNNER = CliRunner()
MOUNTED = "/etc/synthdiv/config.yaml"  # where RayJobs mount the config
SUBMIT = re.compile(r"synthdiv submit ([a-z][\w-]*)")


def assert_real_command(entrypoint: str) -> None:
    """`synthdiv <cmd> --help` exits 0 and the entrypoint's own arguments parse."""
    argv = shlex.split(entrypoint)
    assert argv[0] == "synthdiv", entrypoint
    helped = RUNNER.invoke(app, [argv[1], "--help"])
    assert helped.exit_code == 0, f"`synthdiv {argv[1]} --help`: {helped.output}"
    command = typer.main.get_command(app).commands[argv[1]]
    command.make_context(argv[1], argv[2:])  # raises on an unknown option or a missing argument


def test_stages_are_the_cli_commands_that_read_a_config() -> None:
    stages = stage_commands()
    # The commands issue 15 found missing (or misnamed: `study`) are now among them.
    assert {"run", "mix", "correlate", "validate-metrics"} <= set(stages)
    assert "study" not in stages and "submit" not in stages and "quickstart" not in stages
    for name in stages:
        assert_real_command(stage_entrypoint(name, MOUNTED))


def test_values_offer_every_stage(chart: Path) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["rayJobs"]["stages"]) == set(stage_commands())


def test_every_rendered_rayjob_runs_a_real_command(chart: Path) -> None:
    stages = yaml.safe_load((CHART / "values.yaml").read_text())["rayJobs"]["stages"]
    sets = [
        arg
        for name in stages
        for arg in (
            "--set",
            f"rayJobs.stages.{name}.enabled=true",
            "--set",
            f"rayJobs.stages.{name}.config=cm",
        )
    ]
    jobs = [o for o in helm_template(chart, None, *sets) if o["kind"] == "RayJob"]
    assert {j["metadata"]["labels"]["synthdiv.io/stage"] for j in jobs} == set(stages)
    for job in jobs:
        stage = job["metadata"]["labels"]["synthdiv.io/stage"]
        assert_real_command(job["spec"]["entrypoint"])
        # The chart and `synthdiv submit` run the same command for a stage.
        assert job["spec"]["entrypoint"] == stage_entrypoint(stage, MOUNTED)


def test_every_submitted_rayjob_runs_a_real_command(rendered: dict) -> None:
    (template,) = [o for o in ray_objects(rendered["default"]) if o["kind"] == "RayJob"]
    for stage in stage_commands():
        job = build_rayjob(template, f"synthdiv-{stage}-abc123", stage, "cm")
        assert_real_command(job["spec"]["entrypoint"])


class _Loaded(Exception):
    """Raised by the stand-in loader: the command got as far as loading its config."""


@pytest.mark.parametrize(
    "stage, text",
    [*((s, "{}\n") for s in sorted(stage_commands())), ("generate", "grid: {n_topics: [1, 2]}\n")],
)
def test_submit_validates_with_the_model_the_command_loads(
    stage: str, text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = []

    def record(path, model, overrides=None):
        loaded.append(model)
        raise _Loaded

    monkeypatch.setattr("synthdiv.cli.common.load_config", record)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    result = RUNNER.invoke(app, stage_commands()[stage].argv(str(path))[1:])
    assert isinstance(result.exception, _Loaded), result.output
    assert loaded == [config_model(stage, yaml.safe_load(text))]


def test_docs_and_examples_submit_real_stages_with_valid_configs() -> None:
    texts = {p: p.read_text() for p in [REPO / "README.md", *(REPO / "docs").glob("*.md")]}
    examples = {p: p.read_text() for p in (REPO / "examples").glob("*.yaml")}
    mentioned = {(m, p.name) for p, t in {**texts, **examples}.items() for m in SUBMIT.findall(t)}
    assert ("run", "study.md") in mentioned  # what issue 15 found rejected
    assert {stage for stage, _ in mentioned} <= set(stage_commands()), mentioned
    validated = {}
    for path, text in examples.items():  # an example's header names the command that runs it
        runs = re.findall(rf"synthdiv ([\w-]+) (?:--config )?examples/{path.name}", text)
        validated[path.name] = {*SUBMIT.findall(text), *runs} - {"submit"}
        for stage in validated[path.name]:
            read_stage_config(stage, path)  # raises JobError, naming the key, if invalid
    assert all(validated[p.name] == {"run"} for p in (REPO / "examples").glob("paper_*.yaml"))


def test_study_errors_name_the_nested_key_and_the_file(tmp_path: Path) -> None:
    """`run` validates every stage config of the study up front; so does submit."""
    study = yaml.safe_load((REPO / "examples" / "quickstart.yaml").read_text())
    study.setdefault("pretrain", {})["optimiser"] = {"lr": 1}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    with pytest.raises(JobError, match=rf"(?s){re.escape(str(path))}.*pretrain.*optimiser"):
        read_stage_config("run", path)


def test_submit_names_the_bad_key_and_file_and_contacts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "score.yaml"
    bad.write_text("corpus: {path: docs.jsonl}\nmetrics: [distinct_n]\n")  # metrics is a mapping
    result = RUNNER.invoke(
        app, ["submit", "score", "--config", str(bad), "--address", "http://127.0.0.1:9"]
    )  # never contacted
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "metrics" in text, text
    assert str(bad) in "".join(result.output.split())  # rich may wrap a long path
    assert "cannot reach" not in text and "submission" not in text
    unknown = RUNNER.invoke(app, ["submit", "study", "--config", str(bad), "--address", "x"])
    assert unknown.exit_code == 2 and "unknown stage 'study'" in unknown.output
    assert "validate-metrics" in unknown.output and "run" in unknown.output
