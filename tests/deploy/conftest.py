"""Offline chart tooling for the deploy tests: tool paths, a stubbed chart copy, rendering.

The KubeRay operator chart (a dependency) cannot be downloaded in CI. Helm matches dependencies
by name in charts/, so the tests copy the chart to a temp dir and drop a stub chart named
kuberay-operator there. What this does NOT check: the operator's own manifests and CRDs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "synthdiv"
SCHEMAS = Path(__file__).parent / "schemas"
VALUES_FILES = {
    "default": None,
    "gpu": CHART / "ci" / "gpu-values.yaml",
    "external": CHART / "ci" / "external-values.yaml",
}
SETUP_HINT = "run `bash scripts/setup_k8s_tools.sh` (called by `scripts/setup.sh --dev`)"


def tool(name: str) -> str:
    """Path of a deploy tool; a missing tool FAILS the test (CI must not silently skip)."""
    candidates = [
        REPO / ".tools" / "bin" / name,
        Path(sys.executable).parent / name,
        REPO / ".tools" / "checkov-venv" / "bin" / name,
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


def stub_dependency(chart_copy: Path) -> None:
    """Write test-only stubs named like each dependency, at the pinned version."""
    meta = yaml.safe_load((chart_copy / "Chart.yaml").read_text())
    for dep in meta.get("dependencies", []):
        stub = chart_copy / "charts" / dep["name"]
        (stub / "templates").mkdir(parents=True, exist_ok=True)
        (stub / "Chart.yaml").write_text(
            yaml.safe_dump({"apiVersion": "v2", "name": dep["name"], "version": dep["version"],
                            "description": "TEST-ONLY stub; the real chart is not rendered"})
        )


@pytest.fixture(scope="session")
def chart_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("chart") / "synthdiv"
    shutil.copytree(CHART, dest, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    stub_dependency(dest)
    print(
        "\nNOTE: helm lint/template run against a stub kuberay-operator chart. Not checked here: "
        "the KubeRay operator's own manifests, CRDs and RBAC (only its name/version pin)."
    )
    return dest


def helm_template(chart: Path, values: Path | None, *extra: str) -> list[dict]:
    cmd = [tool("helm"), "template", "rel", str(chart), "--namespace", "synthdiv"]
    if values is not None:
        cmd += ["-f", str(values)]
    out = run(cmd + list(extra)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="session")
def rendered(chart_copy: Path) -> dict[str, list[dict]]:
    """Objects rendered with each values file (default, gpu, external)."""
    return {name: helm_template(chart_copy, path) for name, path in VALUES_FILES.items()}
