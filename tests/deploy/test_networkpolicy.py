"""The Ray NetworkPolicy, evaluated against the pods the release really runs: Ray heads, client
pods and the KubeRay operator's Deployment rendered from the real, vendored subchart.

The operator polls each head's dashboard (8265) for RayJob status and marks the RayJob Failed
when it cannot reach it, so the policy must admit it there, and only there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import VALUES_FILES, helm_template
from tests.deploy.crds import operator_chart
from tests.deploy.pods import from_operator_chart, ray_objects

NAMESPACE = "synthdiv"  # helm_template renders into it
DASHBOARD, CLIENT_PORT = 8265, 10001


def selects(selector: dict, labels: dict) -> bool:
    if selector.get("matchExpressions"):
        raise NotImplementedError("the chart's policies use matchLabels only")
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def admits(policy: dict, labels: dict, namespace: str, port: int) -> bool:
    """Does ``policy`` (in the release namespace) admit TCP to ``port`` from this pod?"""
    for rule in policy["spec"].get("ingress", []):
        if rule.get("ports") and not any(p["port"] == port for p in rule["ports"]):
            continue
        for peer in rule["from"]:
            ns_selector = peer.get("namespaceSelector")
            if ns_selector is None:  # a bare podSelector means the policy's own namespace
                ns_ok = namespace == NAMESPACE
            else:  # every namespace carries kubernetes.io/metadata.name
                ns_ok = selects(ns_selector, {"kubernetes.io/metadata.name": namespace})
            if ns_ok and selects(peer.get("podSelector", {}), labels):
                return True
    return False


def ray_policy(objs: list[dict]) -> dict:
    return next(
        o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-ray")
    )


def operator_pod(objs: list[dict]) -> tuple[dict, str]:
    """Pod labels and namespace of the operator Deployment the subchart renders."""
    (deploy,) = [o for o in objs if o["kind"] == "Deployment" and from_operator_chart(o)]
    return deploy["spec"]["template"]["metadata"]["labels"], deploy["metadata"]["namespace"]


def head_labels(objs: list[dict]) -> list[dict]:
    return [
        o["spec"].get("rayClusterSpec", o["spec"])["headGroupSpec"]["template"]["metadata"][
            "labels"
        ]
        for o in ray_objects(objs)
    ]


@pytest.mark.parametrize(
    "extra",
    [[], ["--set", "kuberay-operator.nameOverride=kuberay"]],
    ids=["default", "name-override"],
)
def test_in_release_operator_reaches_the_dashboard_only(chart: Path, extra: list[str]) -> None:
    objs = helm_template(chart, None, *extra)
    policy = ray_policy(objs)
    heads = head_labels(objs)
    assert len(heads) == 2 and all(selects(policy["spec"]["podSelector"], h) for h in heads), (
        "the policy must cover the RayCluster's head and every RayJob's head"
    )
    labels, namespace = operator_pod(objs)
    assert admits(policy, labels, namespace, DASHBOARD)
    assert not admits(policy, labels, namespace, CLIENT_PORT)
    assert not admits(policy, labels, "elsewhere", DASHBOARD)  # same labels, other namespace
    assert not admits(policy, {"app": "anything"}, NAMESPACE, DASHBOARD)


def test_clients_reach_dashboard_and_client_port(rendered: dict) -> None:
    policy = ray_policy(rendered["default"])
    client = {"rel-synthdiv-client": "true"}
    assert admits(policy, client, NAMESPACE, DASHBOARD) and admits(
        policy, client, NAMESPACE, CLIENT_PORT
    )
    names = {o["metadata"]["name"] for o in rendered["default"] if o["kind"] == "NetworkPolicy"}
    assert {"rel-synthdiv-mlflow", "rel-synthdiv-postgres", "rel-synthdiv-ray"} <= names


def test_existing_operator_in_its_own_namespace(chart: Path, rendered: dict) -> None:
    """external-values: the operator is the official chart installed on its own in
    kuberay-system (`ray.dashboard.networkPolicy.operator.namespace`)."""
    policy = ray_policy(rendered["external"])
    standalone = helm_template(operator_chart(), None, "--namespace", "kuberay-system")
    labels, namespace = operator_pod(standalone)
    assert namespace == "kuberay-system"
    assert admits(policy, labels, namespace, DASHBOARD)
    assert not admits(policy, labels, "default", DASHBOARD)
    assert not admits(policy, labels, namespace, CLIENT_PORT)


def test_existing_operator_without_namespace_is_admitted_from_any(chart: Path) -> None:
    policy = ray_policy(helm_template(chart, None, "--set", "kuberay-operator.enabled=false"))
    labels, _ = operator_pod(helm_template(operator_chart(), None))
    assert admits(policy, labels, "kuberay-system", DASHBOARD)
    assert not admits(policy, {"app": "anything"}, "kuberay-system", DASHBOARD)


def test_operator_pod_labels_can_be_set(chart: Path) -> None:
    policy = ray_policy(
        helm_template(
            chart,
            VALUES_FILES["external"],
            "--set",
            "ray.dashboard.networkPolicy.operator.podLabels.team=ray-ops",
        )
    )
    assert admits(policy, {"team": "ray-ops"}, "kuberay-system", DASHBOARD)
    assert not admits(
        policy, {"app.kubernetes.io/name": "kuberay-operator"}, "kuberay-system", DASHBOARD
    )
