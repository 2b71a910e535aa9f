"""The KubeRay CRDs exactly as the vendored operator chart installs them, as JSON Schemas.

Ray objects the chart renders (and the RayJobs `synthdiv submit --rayjob` builds) are validated
against each CRD's own ``openAPIV3Schema``, read from the chart tgz's ``crds/`` folder, so a
KubeRay upgrade that renames or retypes a field fails the tests instead of a cluster install.
"""

from __future__ import annotations

import functools
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "synthdiv"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are ~1 MB of YAML each


def operator_chart() -> Path:
    """The vendored operator chart matching Chart.yaml's pin (tests/deploy/test_vendored.py
    checks it is there and matches)."""
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    dep = next(d for d in meta["dependencies"] if d["name"] == "kuberay-operator")
    return CHART / "charts" / f"{dep['name']}-{dep['version']}.tgz"


@functools.cache
def crds() -> dict[str, dict]:
    """Kind → CustomResourceDefinition, from the chart's crds/ folder."""
    found = {}
    with tarfile.open(operator_chart()) as tgz:
        for member in tgz.getmembers():
            if member.isfile() and "/crds/" in member.name and member.name.endswith(".yaml"):
                crd = yaml.load(tgz.extractfile(member).read(), Loader=_LOADER)  # type: ignore[union-attr]
                found[crd["spec"]["names"]["kind"]] = crd
    return found


@functools.cache
def crd_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    crd = crds()[kind]
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    return strict(served["schema"]["openAPIV3Schema"])


def validate(obj: dict) -> None:
    """Raise jsonschema.ValidationError if ``obj`` does not match its kind's CRD."""
    version = obj["apiVersion"].split("/")[-1]
    jsonschema.validate(obj, crd_schema(obj["kind"], version))


def strict(node: dict[str, Any]) -> dict[str, Any]:
    """Kubernetes' structural-schema dialect → plain JSON Schema, as the API server applies it
    under `kubectl apply --validate=strict`:

    - an object with declared properties rejects unknown fields (the server would otherwise
      prune a misspelt field silently, e.g. ``replica`` for ``replicas``), unless the schema
      says ``x-kubernetes-preserve-unknown-fields``;
    - ``x-kubernetes-int-or-string`` admits either (the schema carries no ``type`` for it);
    - ``nullable`` admits null.
    CEL rules (``x-kubernetes-validations``) are not evaluated here.
    """
    out = dict(node)
    if "properties" in out:
        out["properties"] = {name: strict(sub) for name, sub in out["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = strict(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [strict(sub) for sub in out[key]]
    if out.get("x-kubernetes-int-or-string"):
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out
