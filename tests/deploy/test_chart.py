"""The Helm chart with its real KubeRay subchart, linted and rendered offline, then checked
object by object."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from synthdiv.jobs import stage_commands
from tests.deploy.conftest import CHART, VALUES_FILES, helm_template, run, tool
from tests.deploy.crds import crd_schema, validate
from tests.deploy.pods import from_operator_chart, pod_specs, ray_objects

VALUE_SETS = list(VALUES_FILES)


@pytest.mark.parametrize("values", VALUE_SETS)
def test_helm_lint_strict(chart: Path, values: str) -> None:
    cmd = [tool("helm"), "lint", "--strict", str(chart)]
    if VALUES_FILES[values]:
        cmd += ["-f", str(VALUES_FILES[values])]
    run(cmd)


def test_lint_with_operator_disabled(chart: Path) -> None:
    run([tool("helm"), "lint", "--strict", str(chart), "--set", "kuberay-operator.enabled=false"])


@pytest.mark.parametrize("values", VALUE_SETS)
def test_builtin_kinds_pass_kubernetes_validate_strict(
    chart: Path, values: str, tmp_path: Path
) -> None:
    objs = helm_template(chart, VALUES_FILES[values])
    files = []
    for i, obj in enumerate(o for o in objs if o["apiVersion"] != "ray.io/v1"):
        files.append(tmp_path / f"{i:02d}-{obj['kind']}.yaml")
        files[-1].write_text(yaml.safe_dump(obj))
    # Pod templates nested in Ray CRs are plain core/v1 PodTemplates: validate them too.
    for j, ray in enumerate(ray_objects(objs)):
        for k, (_where, spec) in enumerate(pod_specs(ray)):
            tpl = {
                "apiVersion": "v1",
                "kind": "PodTemplate",
                "metadata": {"name": f"t{j}-{k}"},
                "template": {"spec": spec},
            }
            files.append(tmp_path / f"ray-{j}-{k}.yaml")
            files[-1].write_text(yaml.safe_dump(tpl))
    proc = run([tool("kubernetes-validate"), "--strict", *map(str, files)], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed" in proc.stdout


@pytest.mark.parametrize("values", VALUE_SETS)
def test_ray_objects_match_the_kuberay_crds(rendered: dict, values: str) -> None:
    objs = list(ray_objects(rendered[values]))
    assert "RayJob" in {o["kind"] for o in objs}, "the RayJob template is always rendered"
    for obj in objs:
        validate(obj)


def test_crd_schema_rejects_wrong_fields(rendered: dict) -> None:
    """The CRD schemas catch what the API server would reject or silently prune."""
    cluster = next(o for o in rendered["default"] if o["kind"] == "RayCluster")
    bad = copy.deepcopy(cluster)
    bad["spec"]["workerGroupSpecs"][0]["replica"] = 2  # typo of "replicas": pruned on apply
    with pytest.raises(jsonschema.ValidationError, match="replica"):
        validate(bad)
    bad = copy.deepcopy(cluster)
    bad["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0  # must be a string
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    job = next(o for o in ray_objects(rendered["default"]) if o["kind"] == "RayJob")
    bad = copy.deepcopy(job)
    bad["spec"]["backoffLimit"] = "1"  # an integer
    with pytest.raises(jsonschema.ValidationError, match="'1' is not of type 'integer'"):
        validate(bad)
    assert "authOptions" in crd_schema("RayCluster")["properties"]["spec"]["properties"]


def test_gpu_values_render_every_stage_rayjob_with_gpus(rendered: dict) -> None:
    jobs = {
        o["metadata"]["labels"]["synthdiv.io/stage"]: o
        for o in rendered["gpu"]
        if o["kind"] == "RayJob"
    }
    assert set(jobs) == set(stage_commands())
    pretrain = jobs["pretrain"]["spec"]
    assert pretrain["entrypoint"] == "synthdiv pretrain --config /etc/synthdiv/config.yaml"
    assert pretrain["shutdownAfterJobFinishes"] is True
    assert pretrain["activeDeadlineSeconds"] == 604800 and pretrain["backoffLimit"] == 1
    worker = pretrain["rayClusterSpec"]["workerGroupSpecs"][0]
    container = worker["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert {"name": "synthdiv-config", "mountPath": "/etc/synthdiv", "readOnly": True} in container[
        "volumeMounts"
    ]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_pod_is_locked_down(rendered: dict, values: str) -> None:
    # The KubeRay operator talks to the Kubernetes API (it keeps its service-account token) and
    # writes nothing to disk (its read-only root needs no /tmp); everything else applies to it.
    specs = [(ps, from_operator_chart(obj)) for obj in rendered[values] for ps in pod_specs(obj)]
    assert specs, "no pods rendered"
    assert any(operator for _, operator in specs) == (values != "external"), "operator pod"
    for (where, spec), operator in specs:
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, where
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert operator or spec.get("automountServiceAccountToken") is False, where
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, (where, c["name"])
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], (where, c["name"])
            assert sc.get("readOnlyRootFilesystem") is True, (where, c["name"])
            assert sc.get("privileged") is not True, (where, c["name"])
            assert c.get("resources", {}).get("requests"), f"{where}/{c['name']} has no requests"
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert operator or "/tmp" in mounts, (
                f"{where}/{c['name']}: read-only root needs an emptyDir /tmp"
            )


@pytest.mark.parametrize("values", VALUE_SETS)
def test_credentials_only_from_secrets(rendered: dict, values: str) -> None:
    sensitive = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY", re.IGNORECASE)
    for obj in rendered[values]:
        for where, spec in pod_specs(obj):
            for c in spec.get("initContainers", []) + spec["containers"]:
                for env in c.get("env", []):
                    if sensitive.search(env["name"]):
                        assert "secretKeyRef" in env.get("valueFrom", {}), (where, env["name"])
    # ... and values.yaml itself carries no credential: only Secret names.
    values_text = (CHART / "values.yaml").read_text()
    for line in values_text.splitlines():
        if re.search(r"^\s*(password|token|secretKey|accessKey)\s*:", line, re.IGNORECASE):
            pytest.fail(f"credential-looking value in values.yaml: {line.strip()}")


def test_external_values_reference_user_secrets(rendered: dict) -> None:
    kinds = {o["kind"] for o in rendered["external"]}
    assert "StatefulSet" not in kinds  # nothing stateful in-release
    # The only generated Secret is the MLflow server's own Flask key: no credential to an
    # external system is invented by the chart.
    secrets = [o["metadata"]["name"] for o in rendered["external"] if o["kind"] == "Secret"]
    assert secrets == ["rel-synthdiv-mlflow-flask"]
    mlflow = next(o for o in rendered["external"] if o["kind"] == "Deployment")
    env = {e["name"]: e for e in mlflow["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "synthdiv-db"
    assert "sslmode=verify-full" in env["MLFLOW_BACKEND_STORE_URI"]["value"]
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "synthdiv-s3"
    job = next(o for o in ray_objects(rendered["external"]) if o["kind"] == "RayJob")
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in head["env"]}
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "synthdiv-s3-job"
    assert env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == (
        "synthdiv-mlflow-job"
    )


def test_mlflow_server_flags(rendered: dict) -> None:
    mlflow = next(
        o
        for o in rendered["gpu"]
        if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-mlflow")
    )
    cmd = mlflow["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--app-name=basic-auth" in cmd and "--serve-artifacts" in cmd
    allowed = next(a for a in cmd if a.startswith("--allowed-hosts="))
    assert "mlflow.synthdiv.example.org" in allowed
    assert not any("$(DB_PASSWORD)" in a for a in cmd), "secrets must not be on argv"


def test_rbac_is_least_privilege(rendered: dict) -> None:
    role = next(
        o
        for o in rendered["default"]
        if o["kind"] == "Role" and o["metadata"]["name"] == "rel-synthdiv-submitter"
    )
    rules = {
        (g, r): set(rule["verbs"])
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert rules[("ray.io", "rayjobs")] == {"create", "get", "list", "watch", "delete"}
    assert rules[("", "pods/log")] == {"get"}
    assert not any("*" in verbs for verbs in rules.values())
    assert ("", "secrets") not in rules


def test_ray_token_auth_enabled(rendered: dict) -> None:
    cluster = next(o for o in rendered["default"] if o["kind"] == "RayCluster")
    assert cluster["spec"]["authOptions"] == {
        "mode": "token",
        "secretName": "rel-synthdiv-ray-token",
    }
    secret = next(
        o
        for o in rendered["default"]
        if o["kind"] == "Secret" and o["metadata"]["name"] == "rel-synthdiv-ray-token"
    )
    assert "auth_token" in secret["data"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("mlflow.replicas=two", "/mlflow/replicas"),
        ("ray.workerGroups[0].gpus=lots", "gpus"),
        ("rayJobs.shutdownAfterJobFinishes=maybe", "shutdownAfterJobFinishes"),
        ("mlflow.auth.defaultPermission=ALL", "defaultPermission"),
    ],
)
def test_values_schema_rejects_wrong_types(chart: Path, override: str, message: str) -> None:
    proc = run([tool("helm"), "template", "rel", str(chart), "--set-string", override], check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_values_schema_rejects_unknown_keys(chart: Path) -> None:
    proc = run(
        [tool("helm"), "template", "rel", str(chart), "--set", "mlflow.replica=2"], check=False
    )
    assert proc.returncode != 0 and "replica" in proc.stderr


def test_enabled_stage_needs_a_config(chart: Path) -> None:
    proc = run(
        [tool("helm"), "template", "rel", str(chart), "--set", "rayJobs.stages.score.enabled=true"],
        check=False,
    )
    assert proc.returncode != 0 and "rayJobs.stages.score.config" in proc.stderr


def test_notes_tell_how_to_reach_mlflow_and_submit(chart: Path) -> None:
    out = run(
        [tool("helm"), "install", "rel", str(chart), "--dry-run=client", "--namespace", "synthdiv"]
    ).stdout
    notes = out.split("NOTES:", 1)[1]
    assert "port-forward svc/rel-synthdiv-mlflow" in notes
    assert "synthdiv submit" in notes and "--rayjob" in notes


def test_every_top_level_value_is_documented() -> None:
    """values.yaml is the chart's manual: each top-level block opens with a comment."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = [
        line
        for i, line in enumerate(lines)
        if re.match(r"^[A-Za-z][\w-]*:", line) and not lines[i - 1].lstrip().startswith("#")
    ]
    assert not undocumented, undocumented
