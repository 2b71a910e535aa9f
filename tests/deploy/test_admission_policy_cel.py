"""The rendered ValidatingAdmissionPolicy's CEL, evaluated (cel-python) on the Ray objects the
chart renders (admitted) and on variants an attacker with `rayjobs: create` would submit
(each rejected by the rule meant for it, and only that one).

The API server's CEL adds Kubernetes libraries and type-checks against the CRD schema; the
policy uses only standard CEL macros, so the verdicts carry over (docs/kubernetes.md says what
only a real cluster confirms).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.deploy.pods import ray_objects

celpy = pytest.importorskip("celpy", reason="cel-python is not installed (pip install cel-python)")
from celpy import celtypes  # noqa: E402

# Index of each rule in the policy's validations.
ACCOUNT, AUTOMOUNT, TOKEN_MOUNT, SECRET_VOLUME, SECRET_ENV, AUTOSCALER_ENV, IMAGE = range(7)
ADMIN = "rel-synthdiv-mlflow-auth"
RAY_IMAGE = "ghcr.io/synthdiv/synthdiv-gpu:0.1.0"


def verdicts(vap: dict, obj: dict) -> list[bool]:
    env = celpy.Environment()
    variables: dict = {}
    activation = {"object": celpy.json_to_cel(obj)}
    for var in vap["spec"]["variables"]:
        activation["variables"] = celtypes.MapType(variables)
        value = env.program(env.compile(var["expression"])).evaluate(activation)
        variables[celtypes.StringType(var["name"])] = value
    activation["variables"] = celtypes.MapType(variables)
    out = []
    for rule in vap["spec"]["validations"]:
        result = env.program(env.compile(rule["expression"])).evaluate(activation)
        assert isinstance(result, celtypes.BoolType), (rule["expression"], result)
        out.append(bool(result))
    return out


@pytest.fixture(scope="module")
def vap(rendered: dict) -> dict:
    return next(o for o in rendered["default"] if o["kind"] == "ValidatingAdmissionPolicy")


@pytest.fixture(scope="module")
def job(rendered: dict) -> dict:
    """The RayJob `synthdiv submit --rayjob` starts from."""
    return next(o for o in ray_objects(rendered["default"]) if o["kind"] == "RayJob")


@pytest.mark.parametrize("values", ["default", "gpu"])
def test_admits_everything_the_chart_renders(rendered: dict, vap: dict, values: str) -> None:
    objs = list(ray_objects(rendered[values]))
    assert {"RayJob", "RayCluster"} <= {o["kind"] for o in objs}
    for obj in objs:
        assert all(verdicts(vap, obj)), obj["metadata"]["name"]


def _head(o: dict) -> dict:
    return o["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]


def _worker(o: dict) -> dict:
    return o["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]


def _submitter(o: dict) -> dict:
    return o["spec"]["submitterPodTemplate"]["spec"]


def _admin_env(o: dict) -> dict:
    return {"name": "X", "valueFrom": {"secretKeyRef": {"name": ADMIN, "key": "password"}}}


ATTACKS: dict[str, tuple[Callable[[dict], None], int]] = {
    "operator-account-on-head": (
        lambda o: _head(o).update(serviceAccountName="kuberay-operator"),
        ACCOUNT,
    ),
    "default-account-on-submitter": (lambda o: _submitter(o).pop("serviceAccountName"), ACCOUNT),
    "deprecated-serviceAccount-field": (
        lambda o: _worker(o).update(serviceAccount="kuberay-operator"),
        ACCOUNT,
    ),
    "token-automount": (lambda o: _worker(o).update(automountServiceAccountToken=True), AUTOMOUNT),
    "autoscaler-token-in-ray-container": (
        lambda o: _head(o)["containers"][0]["volumeMounts"].append(
            {"name": "autoscaler-token", "mountPath": "/t"}
        ),
        TOKEN_MOUNT,
    ),
    "admin-secret-volume": (
        lambda o: _worker(o)["volumes"].append({"name": "x", "secret": {"secretName": ADMIN}}),
        SECRET_VOLUME,
    ),
    "admin-secret-projected": (
        lambda o: _head(o)["volumes"].append(
            {"name": "x", "projected": {"sources": [{"secret": {"name": ADMIN}}]}}
        ),
        SECRET_VOLUME,
    ),
    "admin-secret-env": (
        lambda o: _worker(o)["containers"][0]["env"].append(_admin_env(o)),
        SECRET_ENV,
    ),
    "admin-secret-envFrom-submitter": (
        lambda o: _submitter(o)["containers"][0].update(envFrom=[{"secretRef": {"name": ADMIN}}]),
        SECRET_ENV,
    ),
    "admin-secret-init-container": (
        lambda o: _worker(o).update(
            initContainers=[{"name": "i", "image": RAY_IMAGE, "env": [_admin_env(o)]}]
        ),
        SECRET_ENV,
    ),
    "admin-secret-autoscaler-env": (
        lambda o: o["spec"]["rayClusterSpec"]["autoscalerOptions"].update(env=[_admin_env(o)]),
        AUTOSCALER_ENV,
    ),
    "foreign-image": (
        lambda o: _worker(o)["containers"][0].update(image="evil.example/ray:1"),
        IMAGE,
    ),
    "image-prefix-trick": (
        lambda o: _head(o)["containers"][0].update(image="ghcr.io/synthdiv/synthdiv-gpu-evil:1"),
        IMAGE,
    ),
    "foreign-autoscaler-image": (
        lambda o: o["spec"]["rayClusterSpec"]["autoscalerOptions"].update(image="evil/x:1"),
        IMAGE,
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_rejects_each_escalation_by_its_rule(vap: dict, job: dict, attack: str) -> None:
    mutate, rule = ATTACKS[attack]
    bad = copy.deepcopy(job)
    mutate(bad)
    got = verdicts(vap, bad)
    assert got[rule] is False, f"{attack} was admitted"
    assert all(ok for i, ok in enumerate(got) if i != rule), (attack, got)


def test_cluster_selector_jobs_still_check_the_submitter(vap: dict, job: dict) -> None:
    """A RayJob aimed at an existing cluster has no rayClusterSpec: its submitter pod is the
    only template, and it is still held to the rules."""
    selector_job = copy.deepcopy(job)
    del selector_job["spec"]["rayClusterSpec"]
    selector_job["spec"]["clusterSelector"] = {"ray.io/cluster": "rel-synthdiv-ray"}
    assert all(verdicts(vap, selector_job))
    _submitter(selector_job)["serviceAccountName"] = "kuberay-operator"
    assert verdicts(vap, selector_job)[ACCOUNT] is False


def test_a_raycluster_is_checked_like_a_rayjob(rendered: dict, vap: dict) -> None:
    cluster = copy.deepcopy(next(o for o in rendered["default"] if o["kind"] == "RayCluster"))
    cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["serviceAccountName"] = "default"
    assert verdicts(vap, cluster)[ACCOUNT] is False
