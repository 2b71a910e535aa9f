"""Default-deny, evaluated: every NetworkPolicy the chart renders, applied to the pods the
release really runs (templates rendered with the real KubeRay subchart), for the flows the
system needs (allowed) and the ones it must not have (denied). A flow passes when the source's
egress and the destination's ingress both allow it, as Kubernetes enforces them."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.conftest import helm_template
from tests.deploy.pods import from_operator_chart, ray_objects

NAMESPACE = "synthdiv"
API_SERVER = "10.0.0.1"  # stands for the `kubernetes` endpoints (ipBlock: pods never match)
INTERNET = "1.1.1.1"


@dataclass
class Peer:
    labels: dict = field(default_factory=dict)
    namespace: str = NAMESPACE
    ip: str | None = None  # an address outside every pod network


def selects(selector: dict, labels: dict) -> bool:
    assert not selector.get("matchExpressions"), "the chart's policies use matchLabels only"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def peer_matches(rule_peer: dict, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        block = rule_peer["ipBlock"]
        inside = peer.ip is not None and ipaddress.ip_address(peer.ip) in ipaddress.ip_network(
            block["cidr"]
        )
        return inside and not any(
            ipaddress.ip_address(peer.ip) in ipaddress.ip_network(c)
            for c in block.get("except", [])
        )
    if peer.ip is not None:
        return False
    ns_sel = rule_peer.get("namespaceSelector")
    ns_ok = (
        peer.namespace == NAMESPACE
        if ns_sel is None
        else selects(ns_sel, {"kubernetes.io/metadata.name": peer.namespace})
    )
    return ns_ok and selects(rule_peer.get("podSelector", {}), peer.labels)


def port_matches(rule: dict, port: int, proto: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(
        p.get("protocol", "TCP") == proto and p.get("port") in (None, port) for p in ports
    )


def side_allows(policies: list[dict], pod: Peer, other: Peer, port: int, proto: str, kind: str):
    """Does `pod` (in the namespace) allow this flow in direction kind (Ingress/Egress)?"""
    key, peers = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if kind in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True  # not isolated in this direction
    return any(
        port_matches(rule, port, proto)
        and (peers not in rule or any(peer_matches(x, other) for x in rule[peers]))
        for p in selecting
        for rule in p["spec"].get(key, [])
    )


def allowed(policies: list[dict], src: Peer, dst: Peer, port: int, proto: str = "TCP") -> bool:
    egress = src.ip is not None or src.namespace != NAMESPACE
    egress = egress or side_allows(policies, src, dst, port, proto, "Egress")
    ingress = dst.ip is not None or dst.namespace != NAMESPACE
    ingress = ingress or side_allows(policies, dst, src, port, proto, "Ingress")
    return egress and ingress


def pods(objs: list[dict]) -> dict[str, Peer]:
    """The release's pods, labelled as they run. KubeRay adds ray.io/node-type to Ray pods."""
    found = {}
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet"):
            labels = o["spec"]["template"]["metadata"]["labels"]
            name = "operator" if from_operator_chart(o) else labels["app.kubernetes.io/component"]
            found[name] = Peer(labels)
    job = next(o for o in ray_objects(objs) if o["kind"] == "RayJob")
    spec = job["spec"]["rayClusterSpec"]
    head = spec["headGroupSpec"]["template"]["metadata"]["labels"]
    worker = spec["workerGroupSpecs"][0]["template"]["metadata"]["labels"]
    found["head"] = Peer({**head, "ray.io/node-type": "head"})
    found["worker"] = Peer({**worker, "ray.io/node-type": "worker"})
    found["submitter"] = Peer(job["spec"]["submitterPodTemplate"]["metadata"]["labels"])
    found["stranger"] = Peer({"app": "something-else"})
    found["dns"] = Peer({"k8s-app": "kube-dns"}, namespace="kube-system")
    found["api"] = Peer(ip=API_SERVER)
    found["internet"] = Peer(ip=INTERNET)
    return found


def policies(objs: list[dict]) -> list[dict]:
    return [o for o in objs if o["kind"] == "NetworkPolicy"]


NEEDED = [
    ("worker", "mlflow", 5000),
    ("head", "mlflow", 5000),
    ("worker", "seaweedfs", 8333),
    ("submitter", "head", 8265),
    ("worker", "head", 6379),
    ("head", "worker", 12345),  # Ray's worker ports
    ("mlflow", "postgres", 5432),
    ("mlflow", "seaweedfs", 8333),
    ("head", "api", 6443),  # the autoscaler
    ("operator", "api", 443),
    ("operator", "head", 8265),  # RayJob status
]
FORBIDDEN = [
    ("worker", "api", 6443),  # only heads (the autoscaler) talk to the API server
    ("submitter", "api", 443),
    ("mlflow", "api", 443),
    ("worker", "postgres", 5432),
    ("postgres", "mlflow", 5000),
    ("postgres", "internet", 443),
    ("seaweedfs", "internet", 443),
    ("mlflow", "internet", 443),  # in-cluster store and database: nothing outside
    ("mlflow", "head", 8265),
    ("operator", "head", 10001),
    ("stranger", "mlflow", 5000),
    ("stranger", "head", 8265),
    ("worker", "stranger", 80),
]


@pytest.mark.parametrize("src, dst, port", NEEDED, ids=[f"{s}->{d}:{p}" for s, d, p in NEEDED])
def test_needed_flows_pass(rendered: dict, src: str, dst: str, port: int) -> None:
    peers = pods(rendered["default"])
    assert allowed(policies(rendered["default"]), peers[src], peers[dst], port)


@pytest.mark.parametrize(
    "src, dst, port", FORBIDDEN, ids=[f"{s}->{d}:{p}" for s, d, p in FORBIDDEN]
)
def test_everything_else_is_denied(rendered: dict, src: str, dst: str, port: int) -> None:
    peers = pods(rendered["default"])
    assert not allowed(policies(rendered["default"]), peers[src], peers[dst], port)


def test_every_pod_resolves_names(rendered: dict) -> None:
    peers = pods(rendered["default"])
    for name in ("operator", "mlflow", "postgres", "seaweedfs", "head", "worker", "submitter"):
        for proto in ("UDP", "TCP"):
            assert allowed(policies(rendered["default"]), peers[name], peers["dns"], 53, proto)
        assert not allowed(policies(rendered["default"]), peers[name], peers["dns"], 80)


def test_baseline_denies_both_directions_for_every_pod(rendered: dict) -> None:
    (deny,) = [p for p in policies(rendered["default"]) if p["metadata"]["name"].endswith("deny")]
    assert deny["spec"]["podSelector"] == {}
    assert sorted(deny["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


def test_external_services_and_narrowed_api_server(chart: Path) -> None:
    objs = helm_template(
        chart,
        None,
        "-f",
        str(chart / "ci" / "external-values.yaml"),
        "--set",
        "networkPolicy.apiServer.cidrs={10.0.0.0/30}",
        "--set",
        "networkPolicy.externalCidrs={52.0.0.0/8}",
    )
    peers = pods(objs)
    rules = policies(objs)
    s3 = Peer(ip="52.1.2.3")
    assert allowed(rules, peers["mlflow"], s3, 5432)  # the managed database
    assert allowed(rules, peers["worker"], s3, 443)  # the S3 bucket
    assert not allowed(rules, peers["worker"], Peer(ip=INTERNET), 443)
    assert allowed(rules, peers["head"], Peer(ip="10.0.0.2"), 6443)
    assert not allowed(rules, peers["head"], Peer(ip="10.0.0.9"), 6443)
    assert "operator" not in peers  # an existing operator elsewhere: its own policies
