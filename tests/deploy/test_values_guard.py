"""Unsafe values are refused before anything reaches a cluster: by values.schema.json (so
`helm lint --strict`, `template` and `install` all fail), or, where JSON Schema cannot compare
two fields, by a template `fail` (`helm template`/`install`; helm's lint ignores `fail`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import run, tool

GROUP = {"name": "cpu", "replicas": 1, "minReplicas": 0, "maxReplicas": 2}
RESOURCES = {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}

# (values, the message helm must print)
SCHEMA_CASES = {
    "privileged": (
        {"containerSecurityContext": {"privileged": True}},
        "at '/containerSecurityContext/privileged': value must be false",
    ),
    "root-pods": (
        {"podSecurityContext": {"runAsNonRoot": False}},
        "at '/podSecurityContext/runAsNonRoot': value must be true",
    ),
    "empty-worker-resources": (
        {"ray": {"workerGroups": [{**GROUP, "resources": {}}]}},
        "at '/ray/workerGroups/0/resources': missing properties 'requests', 'limits'",
    ),
    "empty-worker-requests": (
        {"ray": {"workerGroups": [{**GROUP, "resources": {**RESOURCES, "requests": {}}}]}},
        "at '/ray/workerGroups/0/resources/requests': minProperties",
    ),
    "no-job-deadline": (
        {"rayJobs": {"activeDeadlineSeconds": 0}},
        "at '/rayJobs/activeDeadlineSeconds': minimum: got 0, want 1",
    ),
    "ray-latest": (
        {"ray": {"image": {"tag": "latest"}}},
        "at '/ray/image/tag': 'latest' does not match pattern",
    ),
    "mlflow-latest": (
        {"mlflow": {"image": {"tag": "latest"}}},
        "at '/mlflow/image/tag': 'latest' does not match pattern",
    ),
    "postgres-latest": (
        {"postgres": {"image": {"tag": "latest"}}},
        "at '/postgres/image/tag': 'latest' does not match pattern",
    ),
    "seaweedfs-latest": (
        {"objectStore": {"inCluster": {"image": {"tag": "latest"}}}},
        "at '/objectStore/inCluster/image/tag': 'latest' does not match pattern",
    ),
}


def _values(tmp_path: Path, values: dict) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


@pytest.mark.parametrize("case", list(SCHEMA_CASES))
def test_schema_refuses(chart: Path, tmp_path: Path, case: str) -> None:
    values, message = SCHEMA_CASES[case]
    for verb in (["lint", "--strict"], ["template", "rel"]):
        proc = run([tool("helm"), *verb, str(chart), "-f", _values(tmp_path, values)], check=False)
        assert proc.returncode != 0, f"helm {verb[0]} accepted {case}"
        assert message in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_tags_that_merely_contain_latest_pass(chart: Path) -> None:
    for tag in ("latest-2.60", "lates", "v1-latest"):
        run([tool("helm"), "template", "rel", str(chart), "--set", f"ray.image.tag={tag}"])


@pytest.mark.parametrize(
    "key", ["ray.workerGroups", "rayJobs.stages.pretrain.workerGroups"], ids=["cluster", "stage"]
)
def test_min_above_max_replicas_fails_the_render(chart: Path, tmp_path: Path, key: str) -> None:
    group = {**GROUP, "minReplicas": 5, "maxReplicas": 2, "resources": RESOURCES}
    values: dict = {"ray": {"workerGroups": [group]}}
    if key.startswith("rayJobs"):
        stage = {"enabled": True, "config": "cm", "workerGroups": [group]}
        values = {"rayJobs": {"stages": {"pretrain": stage}}}
    proc = run(
        [tool("helm"), "template", "rel", str(chart), "-f", _values(tmp_path, values)], check=False
    )
    assert proc.returncode != 0
    assert 'ray worker group "cpu": minReplicas (5) > maxReplicas (2)' in proc.stderr, proc.stderr
