"""Plain manifests for users without Helm: k8s/base (the chart's default render) + GPU overlay."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.deploy.conftest import REPO, run, tool
from tests.deploy.crds import validate
from tests.deploy.pods import pod_specs, ray_objects


@pytest.fixture(scope="module")
def gpu_overlay() -> list[dict]:
    out = run([tool("kubectl"), "kustomize", str(REPO / "k8s" / "overlays" / "gpu")]).stdout
    return [o for o in yaml.safe_load_all(out) if o]


def test_base_matches_the_chart_render() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "k8s" / "generate_base.py"), "--check"],
        capture_output=True,
        text=True,
        env=dict(os.environ, HELM=tool("helm")),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_gpu_overlay_renders_offline_with_gpu_workers(gpu_overlay: list[dict]) -> None:
    cluster = next(o for o in gpu_overlay if o["kind"] == "RayCluster")
    worker = cluster["spec"]["workerGroupSpecs"][0]
    assert worker["groupName"] == "train-h100"
    assert worker["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert all(o["metadata"].get("namespace") == "synthdiv" for o in gpu_overlay)
    template = next(o for o in ray_objects(gpu_overlay) if o["kind"] == "RayJob")
    groups = {g["groupName"] for g in template["spec"]["rayClusterSpec"]["workerGroupSpecs"]}
    assert groups == {"train-h100", "infer-l4"}


def test_gpu_overlay_objects_are_valid_and_locked_down(gpu_overlay: list[dict], tmp_path) -> None:
    for obj in ray_objects(gpu_overlay):
        validate(obj)
    files = []
    for i, obj in enumerate(o for o in gpu_overlay if o["apiVersion"] != "ray.io/v1"):
        files.append(str(tmp_path / f"{i:02d}.yaml"))
        (tmp_path / f"{i:02d}.yaml").write_text(yaml.safe_dump(obj))
    run([tool("kubernetes-validate"), "--strict", *files])
    for obj in gpu_overlay:
        for where, spec in pod_specs(obj):
            assert spec["securityContext"]["runAsNonRoot"] is True, where
            for c in spec["containers"]:
                assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], where


def test_k8s_readme_creates_every_secret_the_chart_generates(rendered) -> None:
    """k8s/base ships no Secrets (the chart makes them random): the README's commands must create
    every one the workloads reference, with the same keys."""
    readme = (REPO / "k8s" / "README.md").read_text()
    secrets = [o for o in rendered["default"] if o["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        name = secret["metadata"]["name"].removeprefix("rel-")  # release "synthdiv" drops it
        assert f"secret {name} " in readme, name
        line = next(ln for ln in readme.splitlines() if f"secret {name} " in ln)
        block = readme[readme.index(line) :].split("\nsecret ", 1)[0]
        for key in secret["data"]:
            assert f"{key}=" in block, (name, key)
