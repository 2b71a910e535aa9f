"""Send stages to Kubernetes as KubeRay RayJobs.

The user's YAML config is mounted from a ConfigMap owned by the RayJob (deleted with it). The
RayJob's shape (pods, security, env wiring, worker groups) comes from the Helm chart's
``<fullname>-rayjob-template`` ConfigMap, so the chart stays its one source.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from synthdiv.jobs import CONFIG_NAME, JobError, shipped_config, stage_entrypoint

RAYJOB_CONFIG_DIR = "/etc/synthdiv"
RAY_GROUP, RAY_VERSION, RAYJOB_PLURAL = "ray.io", "v1", "rayjobs"
# Waiting reasons that never resolve on their own: report them instead of waiting for the deadline.
STUCK_POD_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}


def chart_fullname(release: str) -> str:
    """The chart's object-name prefix (mirrors ``synthdiv.fullname`` in _helpers.tpl)."""
    name = release if "synthdiv" in release else f"{release}-synthdiv"
    return name[:40].rstrip("-")


def build_rayjob(
    template: dict, name: str, stage: str, config_map: str, entrypoint: str | None = None
) -> dict:
    """The chart's RayJob template + this job's name, entrypoint and mounted config."""
    job = copy.deepcopy(template)
    job.setdefault("metadata", {})
    job["metadata"]["name"] = name
    job["metadata"].setdefault("labels", {})["synthdiv.io/stage"] = stage
    spec = job.setdefault("spec", {})
    if "rayClusterSpec" not in spec:
        raise JobError("RayJob template has no spec.rayClusterSpec")
    spec["entrypoint"] = entrypoint or stage_entrypoint(stage, f"{RAYJOB_CONFIG_DIR}/{CONFIG_NAME}")
    cluster = spec["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]]
    pods += [group["template"] for group in cluster.get("workerGroupSpecs", [])]
    for pod in pods:
        pod_spec = pod["spec"]
        pod_spec.setdefault("volumes", []).append(
            {"name": "synthdiv-config", "configMap": {"name": config_map}}
        )
        for container in pod_spec["containers"]:
            container.setdefault("volumeMounts", []).append(
                {"name": "synthdiv-config", "mountPath": RAYJOB_CONFIG_DIR, "readOnly": True}
            )
    return job


@dataclass
class RayJobOutcome:
    name: str
    status: str  # SUCCEEDED | FAILED | STOPPED
    reason: str  # KubeRay's status.reason, or the stuck pod's waiting reason
    message: str
    logs: str


class KubeRayJobs:
    """RayJob custom resources through the Kubernetes API (least RBAC: see the chart's Role)."""

    def __init__(self, namespace: str, kubeconfig: str | None = None, context: str | None = None):
        from kubernetes import client, config

        try:
            api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        except config.ConfigException:
            try:
                config.load_incluster_config()
                api_client = client.ApiClient()
            except config.ConfigException as err:
                raise JobError(
                    f"no Kubernetes credentials (kubeconfig or in-cluster): {err}"
                ) from None
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self._client_mod = client

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except ApiException as err:
            raise JobError(f"{what} failed: HTTP {err.status} {err.reason}") from None
        except HTTPError as err:
            raise JobError(f"{what} failed: cannot reach the Kubernetes API ({err})") from None

    def template(self, release: str) -> dict:
        name = f"{chart_fullname(release)}-rayjob-template"
        cm = self._call(
            f"reading ConfigMap {self.namespace}/{name} (is the chart installed?)",
            self.core.read_namespaced_config_map,
            name,
            self.namespace,
        )
        return yaml.safe_load(cm.data["rayjob.yaml"])

    def submit(
        self,
        stage: str,
        config: Path,
        release: str,
        image: str | None = None,
        entrypoint: str | None = None,
    ) -> str:
        """Create the RayJob, then its config ConfigMap owned by it (deleted with it)."""
        text = shipped_config(stage, config, entrypoint)
        name = f"synthdiv-{stage}-{uuid.uuid4().hex[:6]}"
        job = build_rayjob(self.template(release), name, stage, f"{name}-config", entrypoint)
        if image:
            _set_image(job, image)
        created = self._call(
            f"creating RayJob {name}",
            self.custom.create_namespaced_custom_object,
            RAY_GROUP,
            RAY_VERSION,
            self.namespace,
            RAYJOB_PLURAL,
            job,
        )
        owner = self._client_mod.V1OwnerReference(
            api_version=f"{RAY_GROUP}/{RAY_VERSION}",
            kind="RayJob",
            name=name,
            uid=created["metadata"]["uid"],
            controller=False,
            block_owner_deletion=False,
        )
        cm = self._client_mod.V1ConfigMap(
            metadata=self._client_mod.V1ObjectMeta(
                name=f"{name}-config",
                owner_references=[owner],
                labels={"synthdiv.io/stage": stage, "synthdiv.io/rayjob": name},
            ),
            data={CONFIG_NAME: text},
        )
        self._call(
            f"creating ConfigMap {name}-config",
            self.core.create_namespaced_config_map,
            self.namespace,
            cm,
        )
        return name

    def get(self, name: str) -> dict:
        return self._call(
            f"reading RayJob {name}",
            self.custom.get_namespaced_custom_object,
            RAY_GROUP,
            RAY_VERSION,
            self.namespace,
            RAYJOB_PLURAL,
            name,
        )

    def delete(self, name: str) -> None:
        self._call(
            f"deleting RayJob {name}",
            self.custom.delete_namespaced_custom_object,
            RAY_GROUP,
            RAY_VERSION,
            self.namespace,
            RAYJOB_PLURAL,
            name,
        )

    def watch(
        self,
        name: str,
        on_status: Callable[[dict], None],
        timeout_s: float | None = None,
        stuck_pod_check_s: float = 10.0,
    ) -> RayJobOutcome:
        """Follow the RayJob through watch events until KubeRay marks it Complete or Failed.

        A pod stuck on an image pull (or a missing Secret) never fails the RayJob by itself —
        it would idle until activeDeadlineSeconds — so such a pod ends the wait early: the
        RayJob is deleted and the pod's reason reported.
        """
        from kubernetes import watch

        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last_pod_check = 0.0
        status = self.get(name).get("status", {})
        on_status(status)
        while not _is_done(status):
            if deadline is not None and time.monotonic() > deadline:
                raise JobError(f"gave up waiting for RayJob {name} after {timeout_s:.0f}s")
            stream = watch.Watch().stream(
                self.custom.list_namespaced_custom_object,
                RAY_GROUP,
                RAY_VERSION,
                self.namespace,
                RAYJOB_PLURAL,
                field_selector=f"metadata.name={name}",
                timeout_seconds=30,
            )
            for event in stream:
                status = event["object"].get("status", {})
                on_status(status)
                if _is_done(status):
                    break
            if not _is_done(status) and time.monotonic() - last_pod_check > stuck_pod_check_s:
                last_pod_check = time.monotonic()
                stuck = self.stuck_pod(name, status.get("rayClusterName"))
                if stuck:
                    self.delete(name)
                    return RayJobOutcome(name, "FAILED", stuck[0], stuck[1], "")
        final = (
            "SUCCEEDED"
            if status.get("jobStatus") == "SUCCEEDED"
            else ("STOPPED" if status.get("jobStatus") == "STOPPED" else "FAILED")
        )
        return RayJobOutcome(
            name, final, status.get("reason", ""), status.get("message", ""), self.logs(name)
        )

    def _pods(self, selector: str) -> list[Any]:
        return self._call(
            f"listing pods {selector}",
            self.core.list_namespaced_pod,
            self.namespace,
            label_selector=selector,
        ).items

    def stuck_pod(self, name: str, cluster: str | None) -> tuple[str, str] | None:
        selectors = [f"job-name={name}"] + ([f"ray.io/cluster={cluster}"] if cluster else [])
        for selector in selectors:
            for pod in self._pods(selector):
                statuses = (pod.status.container_statuses or []) + (
                    pod.status.init_container_statuses or []
                )
                for cs in statuses:
                    waiting = cs.state.waiting if cs.state else None
                    if waiting and waiting.reason in STUCK_POD_REASONS:
                        return (
                            waiting.reason,
                            f"pod {pod.metadata.name}: {waiting.message or waiting.reason}",
                        )
        return None

    def logs(self, name: str) -> str:
        """The Ray job's output: KubeRay's submitter pod tails it (`ray job submit`)."""
        texts = []
        for pod in self._pods(f"job-name={name}"):
            texts.append(
                self._call(
                    f"reading logs of {pod.metadata.name}",
                    self.core.read_namespaced_pod_log,
                    pod.metadata.name,
                    self.namespace,
                )
            )
        return "\n".join(texts)


def _is_done(status: dict) -> bool:
    return status.get("jobDeploymentStatus") in ("Complete", "Failed")


def _set_image(job: dict, image: str) -> None:
    spec = job["spec"]
    cluster = spec["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]] + [
        g["template"] for g in cluster.get("workerGroupSpecs", [])
    ]
    if "submitterPodTemplate" in spec:
        pods.append(spec["submitterPodTemplate"])
    for pod in pods:
        for container in pod["spec"]["containers"]:
            container["image"] = image
