"""Regenerate k8s/base from the Helm chart's default render (release "synthdiv", namespace
"synthdiv"), so users without Helm get the same objects. Run from the repo root:

    .venv/bin/python k8s/generate_base.py [--check]      # helm: .tools/bin/helm, or $HELM

Differences from `helm install`, by design:
- no Secrets: the chart generates random credentials, kustomize cannot; create them first
  (commands in k8s/README.md);
- no KubeRay operator: install it separately (its own manifests or chart, >= 1.6);
- Helm's chart label is dropped and `app.kubernetes.io/managed-by` says kustomize.
`--check` exits 1 if the committed base differs from a fresh render (CI runs it via pytest).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "k8s"
BASE = K8S / "base"
# helm from scripts/setup_k8s_tools.sh; the tests pass theirs (e.g. a worktree's) in $HELM.
HELM = os.environ.get("HELM") or str(REPO / ".tools" / "bin" / "helm")
RELEASE = NAMESPACE = "synthdiv"


def render_objects(*helm_args: str) -> list[dict]:
    # The chart renders in place: its operator dependency is vendored (helm/synthdiv/charts/),
    # and disabled here, so the base carries no operator objects.
    out = subprocess.run(
        [
            HELM,
            "template",
            RELEASE,
            str(REPO / "helm" / "synthdiv"),
            "--namespace",
            NAMESPACE,
            "--set",
            "kuberay-operator.enabled=false",
            *helm_args,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [obj for obj in yaml.safe_load_all(out) if obj]


def render() -> dict[str, str]:
    """Path under k8s/ → YAML text: the base objects, and the GPU overlay's RayJob template."""
    files = {}
    for obj in render_objects():
        if obj["kind"] == "Secret":
            continue
        labels = obj["metadata"].get("labels", {})
        labels.pop("helm.sh/chart", None)
        if "app.kubernetes.io/managed-by" in labels:
            labels["app.kubernetes.io/managed-by"] = "kustomize"
        name = f"base/{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        files[name] = yaml.safe_dump(obj, sort_keys=False)
    resources = sorted(name.removeprefix("base/") for name in files)
    files["base/kustomization.yaml"] = yaml.safe_dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": NAMESPACE,
            "resources": resources,
        },
        sort_keys=False,
    )
    # The GPU overlay's RayJob template: the chart's, rendered with helm/synthdiv/ci/gpu-
    # values.yaml.
    gpu = render_objects("-f", str(REPO / "helm" / "synthdiv" / "ci" / "gpu-values.yaml"))
    template = next(o for o in gpu if o["metadata"]["name"].endswith("-rayjob-template"))
    files["overlays/gpu/rayjob.yaml"] = template["data"]["rayjob.yaml"]
    return files


def main() -> int:
    files = render()
    if "--check" in sys.argv:
        current = {str(p.relative_to(K8S)): p.read_text() for p in BASE.glob("*.yaml")}
        current["overlays/gpu/rayjob.yaml"] = (K8S / "overlays/gpu/rayjob.yaml").read_text()
        if current != files:
            changed = sorted(
                set(current) ^ set(files) | {k for k in files if current.get(k) != files[k]}
            )
            print(f"k8s/base is stale (run k8s/generate_base.py): {changed}")
            return 1
        return 0
    for old in BASE.glob("*.yaml"):
        old.unlink()
    for name, text in files.items():
        (K8S / name).write_text(text)
    print(f"wrote {len(files)} files to {BASE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
