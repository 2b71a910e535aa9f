"""Find every pod spec in rendered objects, including those nested in Ray custom resources."""

from __future__ import annotations

from collections.abc import Iterator

import yaml


def from_operator_chart(obj: dict) -> bool:
    """An object of the vendored KubeRay operator subchart (labelled with its chart name)."""
    return (
        obj["metadata"].get("labels", {}).get("helm.sh/chart", "").startswith("kuberay-operator-")
    )


def pod_specs(obj: dict) -> Iterator[tuple[str, dict]]:
    """Yield (where, pod spec) for each pod template inside ``obj``."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    spec = obj.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        yield f"{kind}/{name}", spec["template"]["spec"]
    elif kind == "RayCluster":
        yield from _ray_cluster_pods(f"{kind}/{name}", spec)
    elif kind == "RayJob":
        yield from _ray_cluster_pods(f"{kind}/{name}", spec.get("rayClusterSpec", {}))
        if "submitterPodTemplate" in spec:
            yield f"{kind}/{name}/submitter", spec["submitterPodTemplate"]["spec"]
    elif kind == "ConfigMap" and "rayjob.yaml" in obj.get("data", {}):
        yield from pod_specs(_named(yaml.safe_load(obj["data"]["rayjob.yaml"]), name))


def _named(obj: dict, name: str) -> dict:
    obj.setdefault("metadata", {})["name"] = name
    return obj


def _ray_cluster_pods(where: str, spec: dict) -> Iterator[tuple[str, dict]]:
    if not spec:
        return
    yield f"{where}/head", spec["headGroupSpec"]["template"]["spec"]
    for group in spec.get("workerGroupSpecs", []):
        yield f"{where}/{group['groupName']}", group["template"]["spec"]


def ray_objects(objs: list[dict]) -> Iterator[dict]:
    """RayCluster/RayJob objects, including the RayJob template the chart ships in a ConfigMap."""
    for obj in objs:
        if obj["kind"] in ("RayCluster", "RayJob"):
            yield obj
        elif obj["kind"] == "ConfigMap" and "rayjob.yaml" in obj.get("data", {}):
            yield _named(yaml.safe_load(obj["data"]["rayjob.yaml"]), obj["metadata"]["name"])
