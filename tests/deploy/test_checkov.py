"""checkov (offline, on rendered YAML): the pod-security checks pass for every pod we ship.

Ray pods live inside RayCluster/RayJob custom resources that checkov does not parse, so their pod
specs are also written out as plain Pods and scanned the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import VALUES_FILES, helm_template, run, tool
from tests.deploy.pods import pod_specs, ray_objects

# Pod security: privilege, root, capabilities, seccomp, read-only root FS, host namespaces,
# service-account tokens, resource requests/limits, non-root high UID.
POD_SECURITY_CHECKS = [
    "CKV_K8S_10",
    "CKV_K8S_11",
    "CKV_K8S_12",
    "CKV_K8S_13",  # cpu/memory requests + limits
    "CKV_K8S_16",  # not privileged
    "CKV_K8S_17",
    "CKV_K8S_18",
    "CKV_K8S_19",  # no host PID / IPC / network
    "CKV_K8S_20",  # allowPrivilegeEscalation false
    "CKV_K8S_22",  # read-only root filesystem
    "CKV_K8S_23",  # no root containers (runAsNonRoot)
    "CKV_K8S_25",
    "CKV_K8S_28",
    "CKV_K8S_37",
    "CKV_K8S_39",  # capabilities dropped, none added
    "CKV_K8S_29",
    "CKV_K8S_30",  # security contexts on pods and containers
    "CKV_K8S_31",  # seccomp RuntimeDefault
    "CKV_K8S_38",  # service-account token mounted only where needed
    "CKV_K8S_40",  # high UID
]
# The KubeRay operator (vendored subchart) watches and writes Ray resources through the Kubernetes
# API: it needs its service-account token. Every other check applies to it too.
EXEMPT = {("CKV_K8S_38", "Deployment.synthdiv.kuberay-operator")}


@pytest.mark.slow  # ~10 s per values file (checkov start-up)
@pytest.mark.parametrize("values", list(VALUES_FILES))
def test_checkov_pod_security(chart: Path, values: str, tmp_path: Path) -> None:
    objs = helm_template(chart, VALUES_FILES[values])
    for i, obj in enumerate(objs):
        (tmp_path / f"{i:02d}.yaml").write_text(yaml.safe_dump(obj))
    n_ray = 0
    for ray in ray_objects(objs):
        for where, spec in pod_specs(ray):
            n_ray += 1
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": where.replace("/", "-").lower(), "namespace": "synthdiv"},
                "spec": spec,
            }
            (tmp_path / f"ray-pod-{n_ray:02d}.yaml").write_text(yaml.safe_dump(pod))
    proc = run(
        [
            tool("checkov"),
            "-d",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--quiet",
            "--compact",
            "-o",
            "json",
            "--check",
            ",".join(POD_SECURITY_CHECKS),
        ],
        check=False,
    )
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [
        f"{f['check_id']} {f['check_name']} — {f['resource']}"
        for f in report.get("results", {}).get("failed_checks", [])
        if (f["check_id"], f["resource"]) not in EXEMPT
    ]
    print(f"checkov [{values}]: {report['summary']} (+{n_ray} Ray pod specs scanned as Pods)")
    assert not failed, "\n".join(failed)
    assert report["summary"]["passed"] > 50
