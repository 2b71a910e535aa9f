"""Who can do what: the Ray autoscaler's token and Role, the operator's namespace, the admission
policy on Ray pod templates, and the jobs' (non-admin) credentials. Checked on the chart
rendered with its real KubeRay subchart; field paths against the real CRDs."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from tests.deploy.conftest import helm_template
from tests.deploy.crds import crd_schema
from tests.deploy.pods import from_operator_chart, pod_specs, ray_objects

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # where Ray's autoscaler reads it
# KubeRay v1.6.2 ray-operator/controllers/ray/common/rbac.go, BuildRole: what the autoscaler does.
KUBERAY_AUTOSCALER_RULES = {
    ("", "pods"): {"get", "list", "watch", "patch"},
    ("", "pods/resize"): {"patch"},
    ("ray.io", "rayclusters"): {"get", "patch"},
}
ADMIN_SECRETS = {"rel-synthdiv-mlflow-auth", "rel-synthdiv-s3", "rel-synthdiv-postgres"}


def named(objs: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def cluster_specs(objs: list[dict]) -> list[dict]:
    return [o["spec"].get("rayClusterSpec", o["spec"]) for o in ray_objects(objs)]


def rules(role: dict) -> dict:
    return {
        (g, r): set(rule["verbs"])
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }


@pytest.mark.parametrize("values", ["default", "gpu"])
def test_autoscaler_container_alone_gets_a_token_and_kuberays_role(
    rendered: dict, values: str
) -> None:
    objs = rendered[values]
    specs = cluster_specs(objs)
    assert specs
    for spec in specs:
        assert spec["enableInTreeAutoscaling"] is True
        head = spec["headGroupSpec"]["template"]["spec"]
        assert head["serviceAccountName"] == "rel-synthdiv-ray-head"
        assert head["automountServiceAccountToken"] is False
        (token,) = [v for v in head["volumes"] if v["name"] == "autoscaler-token"]
        sources = token["projected"]["sources"]
        kinds = {k for s in sources for k in s}
        assert kinds == {"serviceAccountToken", "configMap", "downwardAPI"}
        mounts = {m["name"]: m for m in spec["autoscalerOptions"]["volumeMounts"]}
        assert mounts["autoscaler-token"]["mountPath"] == TOKEN_DIR
        assert mounts["autoscaler-token"]["readOnly"] is True
        for group in spec.get("workerGroupSpecs", []):
            worker = group["template"]["spec"]
            assert worker["serviceAccountName"] == "rel-synthdiv-ray"
            assert all(v["name"] != "autoscaler-token" for v in worker["volumes"])
        for container in head["containers"]:  # the Ray container itself never sees it
            assert all(m["name"] != "autoscaler-token" for m in container["volumeMounts"])
    role = named(objs, "Role", "rel-synthdiv-ray-autoscaler")
    assert rules(role) == KUBERAY_AUTOSCALER_RULES
    binding = named(objs, "RoleBinding", "rel-synthdiv-ray-autoscaler")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-synthdiv-ray-head", "namespace": "synthdiv"}
    ]
    accounts = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ServiceAccount"}
    assert accounts["rel-synthdiv-ray-head"]["automountServiceAccountToken"] is False


def test_no_token_and_no_role_without_autoscaling(chart: Path) -> None:
    objs = helm_template(chart, None, "--set", "ray.autoscaling.enabled=false")
    for spec in cluster_specs(objs):
        head = spec["headGroupSpec"]["template"]["spec"]
        assert head["serviceAccountName"] == "rel-synthdiv-ray"
        assert all(v["name"] != "autoscaler-token" for v in head["volumes"])
    names = {o["metadata"]["name"] for o in objs if o["kind"] in ("Role", "RoleBinding")}
    assert "rel-synthdiv-ray-autoscaler" not in names


def test_operator_watches_and_holds_rights_in_the_release_namespace_only(rendered: dict) -> None:
    operator = [o for o in rendered["default"] if from_operator_chart(o)]
    (deploy,) = [o for o in operator if o["kind"] == "Deployment"]
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--watch-namespace") + 1] == "synthdiv"
    kinds = {o["kind"] for o in operator}
    assert "Role" in kinds and not kinds & {"ClusterRole", "ClusterRoleBinding"}


def policy(objs: list[dict]) -> tuple[dict, dict]:
    (vap,) = [o for o in objs if o["kind"] == "ValidatingAdmissionPolicy"]
    (binding,) = [o for o in objs if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    return vap, binding


def cel_list(vap: dict, name: str) -> set[str]:
    """A variable holding a literal list of strings, e.g. ['a','b']."""
    expr = next(v["expression"] for v in vap["spec"]["variables"] if v["name"] == name)
    return set(json.loads(expr.replace("'", '"')))


def referenced_secrets(spec: dict) -> set[str]:
    names = set()
    for v in spec.get("volumes", []):
        if "secret" in v:
            names.add(v["secret"]["secretName"])
        for src in v.get("projected", {}).get("sources", []):
            if "secret" in src:
                names.add(src["secret"]["name"])
    for c in spec["containers"] + spec.get("initContainers", []):
        for env in c.get("env", []):
            if "secretKeyRef" in env.get("valueFrom", {}):
                names.add(env["valueFrom"]["secretKeyRef"]["name"])
        names |= {f["secretRef"]["name"] for f in c.get("envFrom", []) if "secretRef" in f}
    return names


@pytest.mark.parametrize("values", ["default", "gpu", "external"])
def test_admission_policy_allows_exactly_what_the_chart_renders(
    rendered: dict, values: str
) -> None:
    objs = rendered[values]
    vap, binding = policy(objs)
    (rule,) = vap["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == ["ray.io"] and set(rule["resources"]) == {"rayjobs", "rayclusters"}
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    assert vap["spec"]["failurePolicy"] == "Fail"
    assert binding["spec"]["policyName"] == vap["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "synthdiv"
    }
    pods = [spec for obj in ray_objects(objs) for _, spec in pod_specs(obj)]
    used_accounts = {p["serviceAccountName"] for p in pods}
    used_secrets = set().union(*(referenced_secrets(p) for p in pods))
    assert cel_list(vap, "accounts") == used_accounts
    assert cel_list(vap, "secrets") == used_secrets  # e.g. the Ray token KubeRay injects, too
    assert not used_secrets & ADMIN_SECRETS, "Ray pods must not see admin credentials"
    images = {c["image"].split(":")[0] for p in pods for c in p["containers"]}
    assert cel_list(vap, "images") == images
    # The operator's own account (cluster-wide pod/secret rights) is not a Ray account.
    operator_accounts = {o["metadata"]["name"] for o in objs if from_operator_chart(o)}
    assert not cel_list(vap, "accounts") & operator_accounts


# Each lambda name in the policy stands for one node of the CRD schema.
def _schema_roots() -> dict[str, list[dict]]:
    cluster = crd_schema("RayCluster")["properties"]["spec"]
    job = crd_schema("RayJob")["properties"]["spec"]
    pod = cluster["properties"]["headGroupSpec"]["properties"]["template"]["properties"]["spec"]
    podp = pod["properties"]
    container = podp["containers"]["items"]
    volume = podp["volumes"]["items"]
    return {
        "object.spec": [cluster, job],
        "rc": [cluster, job["properties"]["rayClusterSpec"]],
        "g": [cluster["properties"]["workerGroupSpecs"]["items"]],
        "p": [pod, job["properties"]["submitterPodTemplate"]["properties"]["spec"]],
        "ctr": [container, podp["initContainers"]["items"]],
        "v": [volume],
        "src": [volume["properties"]["projected"]["properties"]["sources"]["items"]],
        "e": [container["properties"]["env"]["items"]],
        "f": [container["properties"]["envFrom"]["items"]],
        "m": [container["properties"]["volumeMounts"]["items"]],
    }


def _walk(node: dict, path: list[str]) -> bool:
    for part in path:
        if part in ("all", "exists", "map", "startsWith", "size"):  # a method: the rest is args
            return True
        node = node.get("items", node)  # foo.all(...) on a list
        if part not in node.get("properties", {}):
            return False
        node = node["properties"][part]
    return True


def test_admission_policy_field_paths_exist_in_the_real_crds(rendered: dict) -> None:
    vap, _ = policy(rendered["default"])
    exprs = [v["expression"] for v in vap["spec"]["variables"]]
    exprs += [v["expression"] for v in vap["spec"]["validations"]]
    roots = _schema_roots()
    pattern = re.compile(r"\b(object\.spec|rc|g|p|ctr|v|src|e|f|m)((?:\.\w+)+)")
    checked = 0
    for expr in exprs:
        for root, tail in pattern.findall(expr):
            path = tail.strip(".").split(".")
            assert any(_walk(node, path) for node in roots[root]), f"{root}.{'.'.join(path)}"
            checked += 1
    assert checked > 40
    # The lambdas bind those names and nothing else (a stray `c.` would go unchecked).
    bound = {n for expr in exprs for n in re.findall(r"\.(?:all|exists|map)\((\w+),", expr)}
    assert bound == (set(roots) - {"object.spec"}) | {"cs", "i"}
    # A path the CRD lacks is caught: the check above is not vacuous.
    assert not _walk(roots["rc"][1], ["headGroupSpec", "template", "spec", "serviceAccountNames"])


def test_jobs_get_the_non_admin_identities(rendered: dict) -> None:
    objs = rendered["default"]
    s3 = named(objs, "Secret", "rel-synthdiv-s3")
    job_keys = named(objs, "Secret", "rel-synthdiv-s3-job")["data"]
    identities = {
        i["name"]: i for i in json.loads(base64.b64decode(s3["data"]["s3.json"]))["identities"]
    }
    job = identities["synthdiv-job"]
    assert sorted(job["actions"]) == ["List:synthdiv", "Read:synthdiv", "Write:synthdiv"]
    assert job["credentials"] == [
        {
            "accessKey": base64.b64decode(job_keys["AWS_ACCESS_KEY_ID"]).decode(),
            "secretKey": base64.b64decode(job_keys["AWS_SECRET_ACCESS_KEY"]).decode(),
        }
    ]
    assert "Admin" in identities["synthdiv"]["actions"]  # MLflow's (creates the bucket)
    mlflow_job = named(objs, "Secret", "rel-synthdiv-mlflow-job")["data"]
    assert base64.b64decode(mlflow_job["username"]) == b"synthdiv-job"
    for obj in ray_objects(objs):
        for where, spec in pod_specs(obj):
            for c in spec["containers"]:
                env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in c["env"]}
                if "MLFLOW_TRACKING_USERNAME" in env:
                    assert env["MLFLOW_TRACKING_PASSWORD"]["name"] == "rel-synthdiv-mlflow-job"
                    assert env["AWS_SECRET_ACCESS_KEY"]["name"] == "rel-synthdiv-s3-job", where
