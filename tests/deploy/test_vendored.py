"""The KubeRay operator chart is vendored, pinned and locked, so installs need no network.

helm/synthdiv/charts/ holds the upstream kuberay-operator tgz at Chart.yaml's pin and Chart.lock
records it. Helm itself must accept that lock: `helm dependency build` is run against a loopback
copy of the chart repository (the air-gapped mirror case) and must rebuild the same tgz.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import re
import shutil
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import CHART, run, tool
from tests.deploy.crds import crds, operator_chart

LOCK_FIELDS = ("name", "version", "repository")  # what Chart.lock records per dependency
# Helm hashes [Chart.yaml deps, Chart.lock deps] as Go's encoding/json writes chart.Dependency:
# struct field order, empty fields omitted (name and repository always written).
GO_FIELD_ORDER = (
    "name",
    "version",
    "repository",
    "condition",
    "tags",
    "enabled",
    "import-values",
    "alias",
)


def helm_lock_digest(requested: list[dict], locked: list[dict]) -> str:
    def go(dep: dict) -> dict:
        return {k: dep[k] for k in GO_FIELD_ORDER if dep.get(k) or k in ("name", "repository")}

    blob = json.dumps([[go(d) for d in requested], [go(d) for d in locked]], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def dependencies() -> list[dict]:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]


def test_operator_is_pinned_and_vendored(chart: Path) -> None:
    (dep,) = [d for d in dependencies() if d["name"] == "kuberay-operator"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", dep["version"]), "pin an exact operator version"
    assert dep["condition"] == "kuberay-operator.enabled"
    listing = run([tool("helm"), "dependency", "list", str(chart)]).stdout
    row = next(line for line in listing.splitlines() if line.startswith("kuberay-operator"))
    assert row.split()[-1] == "ok", listing  # "missing" / "wrong version" on a drifted pin
    with tarfile.open(operator_chart()) as tgz:
        files = {
            name: tgz.extractfile(f"kuberay-operator/{name}").read().decode()  # type: ignore[union-attr]
            for name in ("Chart.yaml", "LICENSE")
        }
    meta = yaml.safe_load(files["Chart.yaml"])
    assert (meta["name"], meta["version"]) == (dep["name"], dep["version"])
    assert "Apache License" in files["LICENSE"] and "Version 2.0" in files["LICENSE"]
    assert {"RayCluster", "RayJob"} <= set(crds())


def test_chart_lock_matches_chart_yaml() -> None:
    lock = yaml.safe_load((CHART / "Chart.lock").read_text())
    deps = dependencies()
    assert lock["dependencies"] == [{k: d[k] for k in LOCK_FIELDS} for d in deps]
    assert lock["digest"] == helm_lock_digest(deps, lock["dependencies"])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def chart_mirror(tmp_path: Path):
    """A loopback HTTP copy of the chart repository, and a HELM_* environment whose cached index
    for the upstream repository URL points there (as `helm repo add` + a mirror would)."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(operator_chart(), served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        run([tool("helm"), "repo", "index", str(served), "--url", url])
        home = tmp_path / "helm"
        (home / "cache" / "repository").mkdir(parents=True)
        (home / "config").mkdir()
        (dep,) = dependencies()
        (home / "config" / "repositories.yaml").write_text(
            yaml.safe_dump(
                {"apiVersion": "", "repositories": [{"name": "kuberay", "url": dep["repository"]}]}
            )
        )
        shutil.copy(served / "index.yaml", home / "cache" / "repository" / "kuberay-index.yaml")
        env = {
            "HELM_CONFIG_HOME": home / "config",
            "HELM_CACHE_HOME": home / "cache",
            "HELM_DATA_HOME": home / "data",
        }
        yield {k: str(v) for k, v in env.items()}
    finally:
        server.shutdown()


def test_helm_accepts_the_lock_and_rebuilds_the_vendored_tgz(
    chart_mirror: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in chart_mirror.items():
        monkeypatch.setenv(key, value)
    copy = tmp_path / "synthdiv"
    shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("charts"))
    build = [tool("helm"), "dependency", "build", "--skip-refresh", str(copy)]
    run(build)
    rebuilt = copy / "charts" / operator_chart().name
    assert _sha256(rebuilt) == _sha256(operator_chart())

    # Helm refuses a lock that does not match Chart.yaml: the check above is not vacuous.
    lock = yaml.safe_load((copy / "Chart.lock").read_text())
    lock["digest"] = "sha256:" + "0" * 64
    (copy / "Chart.lock").write_text(yaml.safe_dump(lock))
    proc = run(build, check=False)
    assert proc.returncode != 0 and "out of sync" in proc.stderr, proc.stderr
