"""Offline chart tooling for the deploy tests: tool paths, the chart as users install it, rendering.

The chart is rendered in place with its real, vendored KubeRay operator subchart
(helm/synthdiv/charts/kuberay-operator-<pin>.tgz): its Deployment, RBAC and CRDs are part of
what is checked. There is no stub: without the vendored chart the tests fail and say why.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.crds import operator_chart

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "synthdiv"
VALUES_FILES = {
    "default": None,
    "gpu": CHART / "ci" / "gpu-values.yaml",
    "external": CHART / "ci" / "external-values.yaml",
}
SETUP_HINT = "run `bash scripts/setup_k8s_tools.sh` (called by `scripts/setup.sh --dev`)"


@functools.cache
def _main_checkout() -> Path:
    """The main checkout when this is a git worktree (setup_k8s_tools.sh installs .tools once,
    there), else this one."""
    proc = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--path-format=absolute", "--git-common-dir"],
        capture_output=True,
        text=True,
        check=False,
    )
    return Path(proc.stdout.strip()).parent if proc.returncode == 0 else REPO


def tool(name: str) -> str:
    """Path of a deploy tool; a missing tool FAILS the test (CI must not silently skip)."""
    candidates = [Path(sys.executable).parent / name]
    for root in dict.fromkeys([REPO, _main_checkout()]):
        candidates += [
            root / ".tools" / "bin" / name,
            root / ".tools" / "checkov-venv" / "bin" / name,
        ]
    for path in candidates:
        if path.is_file():
            return str(path)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} not found: {SETUP_HINT}")


def run(cmd: list[str], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def chart() -> Path:
    """The chart directory, after checking its operator dependency is vendored."""
    if not operator_chart().is_file():
        pytest.fail(
            f"{operator_chart().relative_to(REPO)} is missing: the chart's pinned KubeRay operator "
            "must be vendored (docs/kubernetes.md, 'Air-gapped install'); no stub stands in for it"
        )
    return CHART


def helm_template(chart: Path, values: Path | None, *extra: str) -> list[dict]:
    cmd = [tool("helm"), "template", "rel", str(chart), "--namespace", "synthdiv"]
    if values is not None:
        cmd += ["-f", str(values)]
    out = run(cmd + list(extra)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="session")
def rendered(chart: Path) -> dict[str, list[dict]]:
    """Objects rendered with each values file (default, gpu, external)."""
    return {name: helm_template(chart, path) for name, path in VALUES_FILES.items()}
