"""Both Dockerfiles pass hadolint and keep the properties the chart relies on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO, run, tool

DOCKERFILES = [REPO / "docker" / "cpu.Dockerfile", REPO / "docker" / "gpu.Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile: Path) -> None:
    proc = run([tool("hadolint"), "--no-color", str(dockerfile)], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_the_charts_uid_with_pinned_bases(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] == "10001", "final user must be the chart's runAsUser"
    for base in re.findall(r"^(?:ARG BASE_IMAGE=|FROM )(\S+)", text, re.MULTILINE):
        if base.startswith("$"):
            continue
        assert re.search(r":\d+\.\d+", base), f"unpinned base image {base}"
    assert not re.search(r"(?i)(password|secret|token)\s*=", text), "no secrets in images"


def test_gpu_image_matches_project_pins() -> None:
    text = (REPO / "docker" / "gpu.Dockerfile").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    ray = re.search(r'"ray\[[^\]]*\]==([\d.]+)"', pyproject).group(1)
    torch = re.search(r'"torch==([\d.]+)"', pyproject).group(1)
    assert f"rayproject/ray:{ray}-py311-cu" in text
    assert f"torch=={torch}" in text
    chart_ray = re.search(
        r'version: "([\d.]+)"', (REPO / "helm/synthdiv/values.yaml").read_text()
    ).group(1)
    assert chart_ray == ray, "the chart's ray.version must match the image"
