"""What survives `helm uninstall`/reinstall and node drains, and how MLflow is probed."""

from __future__ import annotations

import fnmatch

import pytest

from tests.deploy.pods import from_operator_chart

KEEP = {"helm.sh/resource-policy": "keep"}


def named(objs: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def mlflow_container(objs: list[dict]) -> dict:
    deploy = named(objs, "Deployment", "rel-synthdiv-mlflow")
    return deploy["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("values", ["default", "gpu", "external"])
def test_generated_secrets_and_the_bucket_volume_are_kept(rendered: dict, values: str) -> None:
    objs = [o for o in rendered[values] if not from_operator_chart(o)]
    secrets = [o for o in objs if o["kind"] == "Secret"]
    assert secrets, "the Flask key is generated even with external credentials"
    for obj in secrets:
        annotations = obj["metadata"].get("annotations", {})
        assert annotations.items() >= KEEP.items(), obj["metadata"]["name"]
    if values != "external":
        names = {o["metadata"]["name"] for o in secrets}
        assert {"rel-synthdiv-postgres", "rel-synthdiv-mlflow-auth", "rel-synthdiv-s3"} <= names
        pvc = named(objs, "PersistentVolumeClaim", "rel-synthdiv-seaweedfs")
        assert pvc["metadata"]["annotations"].items() >= KEEP.items()


@pytest.mark.parametrize("values", ["default", "external"])
def test_one_flask_key_for_every_worker_and_replica(rendered: dict, values: str) -> None:
    objs = rendered[values]
    env = {e["name"]: e for e in mlflow_container(objs)["env"]}
    ref = env["MLFLOW_FLASK_SERVER_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
    secret = named(objs, "Secret", ref["name"])
    assert ref["key"] in secret["data"]
    assert secret["metadata"]["annotations"].items() >= KEEP.items()


def test_http_health_probes_with_an_allowed_host(rendered: dict) -> None:
    container = mlflow_container(rendered["gpu"])
    allowed = next(a for a in container["command"] if a.startswith("--allowed-hosts="))
    patterns = allowed.split("=", 1)[1].split(",")
    for probe in (container["readinessProbe"], container["livenessProbe"]):
        assert "tcpSocket" not in probe
        get = probe["httpGet"]
        assert get["path"] == "/health" and get["port"] == "http"
        (host,) = [h["value"] for h in get["httpHeaders"] if h["name"] == "Host"]
        assert any(fnmatch.fnmatchcase(host, p) for p in patterns), (host, patterns)
    # The default Host (the pod IP) is not allowed: without the header the probe would fail.
    assert not any(fnmatch.fnmatchcase("10.1.2.3:5000", p) for p in patterns)


def test_disruption_budgets_cover_mlflow_and_postgres(rendered: dict) -> None:
    objs = rendered["default"]
    for name, kind in (("mlflow", "Deployment"), ("postgres", "StatefulSet")):
        pdb = named(objs, "PodDisruptionBudget", f"rel-synthdiv-{name}")
        workload = named(objs, kind, f"rel-synthdiv-{name}")
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdb["spec"]["minAvailable"] == 1
    # MLflow keeps one replica serving through a drain without blocking it.
    assert named(objs, "Deployment", "rel-synthdiv-mlflow")["spec"]["replicas"] >= 2
