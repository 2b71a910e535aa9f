"""`synthdiv submit --rayjob` and `synthdiv jobs --rayjob` against a loopback Kubernetes API.

The RayJob template comes from the real chart render, so these tests also prove the chart and
the CLI agree; the RayJob the CLI creates is validated against the real KubeRay RayJob CRD.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from synthdiv.cli import app
from synthdiv.jobs_kuberay import chart_fullname
from tests.deploy.conftest import REPO, run, tool
from tests.deploy.crds import validate
from tests.deploy.fake_kube_api import FakeKube, Scenario

RUNNER = CliRunner()
LINK = "http://mlflow.synthdiv.svc:5000/#/experiments/7/runs/9f8e7d6c"
INIT = {"jobDeploymentStatus": "Initializing", "rayClusterName": "rc-1"}
RUNNING = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING", "rayClusterName": "rc-1"}


@pytest.fixture(scope="module")
def chart_objects(rendered: dict) -> list[dict]:
    return rendered["default"]


def make_kube(chart_objects: list[dict], scenario: Scenario) -> FakeKube:
    kube = FakeKube(scenario)
    template = next(
        o for o in chart_objects if o["metadata"]["name"] == "rel-synthdiv-rayjob-template"
    )
    kube.configmaps[template["metadata"]["name"]] = template
    return kube.start()


CONFIG = {
    "model": {"preset": "tiny"},
    "data": {"corpora": [{"corpus": {"path": "s3://b/c"}}]},
    "runtime": {"experiment": "paper"},
}  # a valid PretrainConfig


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def submit(kube: FakeKube, tmp_path: Path, config: Path, *extra: str, stage: str = "pretrain"):
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")
    args = [
        "submit",
        stage,
        "--config",
        str(config),
        "--rayjob",
        "--namespace",
        "synthdiv",
        "--release",
        "rel",
        "--kubeconfig",
        str(kubeconfig),
        *extra,
    ]
    result = RUNNER.invoke(app, args, catch_exceptions=False)
    return result, " ".join(result.output.split())


def test_rayjob_success_creates_valid_job_and_links_mlflow(chart_objects, tmp_path, config) -> None:
    done = {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "rayClusterName": "rc-1"}
    kube = make_kube(
        chart_objects,
        Scenario([INIT, RUNNING, done], submitter_log=f"step 10 loss 3.2\nrun link: {LINK}\n"),
    )
    try:
        result, text = submit(kube, tmp_path, config)
    finally:
        kube.stop()
    assert result.exit_code == 0, result.output
    assert f"MLflow run: {LINK}" in text and "SUCCEEDED" in text and "step 10 loss 3.2" in text

    ((name, job),) = kube.rayjobs.items()
    validate(job)
    assert job["spec"]["entrypoint"] == "synthdiv pretrain --config /etc/synthdiv/config.yaml"
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert {"name": "synthdiv-config", "configMap": {"name": f"{name}-config"}} in head["volumes"]
    cm = kube.configmaps[f"{name}-config"]
    assert yaml.safe_load(cm["data"]["config.yaml"]) == CONFIG
    assert (
        cm["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    )  # GC'd with the job


def test_client_uses_only_what_the_chart_role_grants(chart_objects, tmp_path, config) -> None:
    done = {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "rayClusterName": "rc-1"}
    kube = make_kube(chart_objects, Scenario([INIT, done], submitter_log="ok\n"))
    try:
        submit(kube, tmp_path, config)
    finally:
        kube.stop()
    role = next(
        o
        for o in chart_objects
        if o["metadata"]["name"] == "rel-synthdiv-submitter" and o["kind"] == "Role"
    )
    granted = {
        (verb, res) for rule in role["rules"] for res in rule["resources"] for verb in rule["verbs"]
    }
    used = {(verb, res) for verb, res, _ in kube.requests}
    assert used <= granted, used - granted
    assert ("watch", "rayjobs") in used and ("get", "pods/log") in used


@pytest.mark.parametrize(
    "final, reason",
    [
        (
            {
                "jobDeploymentStatus": "Failed",
                "jobStatus": "FAILED",
                "reason": "AppFailed",
                "message": "Job exited with code 1",
            },
            "AppFailed",
        ),
        (
            {
                "jobDeploymentStatus": "Failed",
                "reason": "DeadlineExceeded",
                "message": "The RayJob has passed the activeDeadlineSeconds.",
            },
            "DeadlineExceeded",
        ),
    ],
)
def test_rayjob_failure_states_exit_nonzero(chart_objects, tmp_path, config, final, reason) -> None:
    kube = make_kube(
        chart_objects, Scenario([INIT, RUNNING, final], submitter_log="Traceback: boom\n")
    )
    try:
        result, text = submit(kube, tmp_path, config)
    finally:
        kube.stop()
    assert result.exit_code == 1, result.output
    assert "FAILED" in text and reason in text and final["message"] in text


def test_image_pull_error_fails_fast_and_cleans_up(chart_objects, tmp_path, config) -> None:
    kube = make_kube(chart_objects, Scenario([INIT], cluster_pod_waiting="ImagePullBackOff"))
    try:
        result, text = submit(kube, tmp_path, config, "--image", "registry.invalid/synthdiv:nope")
    finally:
        kube.stop()
    assert result.exit_code == 1, result.output
    assert "ImagePullBackOff" in text and "rc-1-head" in text
    deleted = [r for r in kube.requests if r[0] == "delete" and r[1] == "rayjobs"]
    assert len(deleted) == 1 and not kube.rayjobs  # no cluster left idling until the deadline


def test_image_override_reaches_every_pod(chart_objects, tmp_path, config) -> None:
    kube = make_kube(chart_objects, Scenario([INIT]))
    try:
        result, _ = submit(
            kube, tmp_path, config, "--image", "example.org/synthdiv:1.2", "--no-follow"
        )
        (job,) = kube.rayjobs.values()
    finally:
        kube.stop()
    assert result.exit_code == 0
    spec = job["spec"]
    templates = [spec["rayClusterSpec"]["headGroupSpec"]["template"], spec["submitterPodTemplate"]]
    templates += [g["template"] for g in spec["rayClusterSpec"]["workerGroupSpecs"]]
    assert {c["image"] for t in templates for c in t["spec"]["containers"]} == {
        "example.org/synthdiv:1.2"
    }


def test_jobs_status_and_stop_with_rayjob(chart_objects, tmp_path, config) -> None:
    kube = make_kube(chart_objects, Scenario([RUNNING]))
    kubeconfig = str(kube.kubeconfig(tmp_path / "kc"))
    try:
        result, _ = submit(kube, tmp_path, config, "--no-follow")
        name = result.output.strip().splitlines()[-1]
        kube.advance(name)
        status = RUNNER.invoke(
            app, ["jobs", "status", name, "--rayjob", "-n", "synthdiv", "--kubeconfig", kubeconfig]
        )
        assert status.exit_code == 0 and status.output.startswith("RUNNING\tRunning")
        stop = RUNNER.invoke(
            app, ["jobs", "stop", name, "--rayjob", "-n", "synthdiv", "--kubeconfig", kubeconfig]
        )
        assert stop.exit_code == 0 and name not in kube.rayjobs
        again = RUNNER.invoke(
            app, ["jobs", "stop", name, "--rayjob", "-n", "synthdiv", "--kubeconfig", kubeconfig]
        )
        assert again.exit_code == 2 and "HTTP 404" in again.output
    finally:
        kube.stop()


def test_missing_chart_is_a_clear_error(tmp_path, config) -> None:
    kube = FakeKube(Scenario([INIT])).start()
    try:
        result, text = submit(kube, tmp_path, config)
    finally:
        kube.stop()
    assert result.exit_code == 2
    assert "rel-synthdiv-rayjob-template" in text and "is the chart installed?" in text
    assert not kube.rayjobs


@pytest.mark.parametrize("release", ["rel", "synthdiv", "team-synthdiv-prod"])
def test_cli_derives_the_charts_template_name(chart, release) -> None:
    out = run(
        [
            tool("helm"),
            "template",
            release,
            str(chart),
            "--show-only",
            "templates/rayjob-template-configmap.yaml",
        ]
    ).stdout
    assert yaml.safe_load(out)["metadata"]["name"] == f"{chart_fullname(release)}-rayjob-template"


def test_invalid_config_is_rejected_before_the_cluster_is_contacted(
    chart_objects, tmp_path
) -> None:
    bad = tmp_path / "pretrain.yaml"
    bad.write_text("model: {size: tiny}\nruntime: {experiment: paper}\n")  # size: not a key
    kube = make_kube(chart_objects, Scenario([INIT]))
    try:
        result, text = submit(kube, tmp_path, bad, "--no-follow")  # no hang if it got through
    finally:
        kube.stop()
    assert result.exit_code == 2, result.output
    assert "model.size" in text and "data: Field required" in text
    assert str(bad) in "".join(result.output.split())  # rich may wrap a long path
    assert not kube.requests and not kube.rayjobs


@pytest.mark.parametrize(
    "stage, argv",
    [
        ("run", ["synthdiv", "run", "/etc/synthdiv/config.yaml"]),
        (
            "validate-metrics",
            ["synthdiv", "validate-metrics", "--config", "/etc/synthdiv/config.yaml"],
        ),
    ],
)
def test_stages_beyond_the_old_list_are_submittable(chart_objects, tmp_path, stage, argv) -> None:
    """`submit run` (README, docs/study.md, the paper examples) and the other config commands."""
    config = REPO / "examples" / "paper_topics_gens.yaml" if stage == "run" else tmp_path / "v.yaml"
    if stage != "run":
        config.write_text("repeats: 2\n")
    kube = make_kube(chart_objects, Scenario([INIT]))
    try:
        result, _ = submit(kube, tmp_path, config, "--no-follow", stage=stage)
        (job,) = kube.rayjobs.values()
    finally:
        kube.stop()
    assert result.exit_code == 0, result.output
    assert job["spec"]["entrypoint"].split() == argv
    assert job["metadata"]["labels"]["synthdiv.io/stage"] == stage
    validate(job)
