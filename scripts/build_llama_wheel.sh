#!/usr/bin/env bash
# Build the llama-cpp-python wheel synthdiv installs (once per machine) and print its path.
#
# Why not `pip install llama-cpp-python`: pip compiles llama.cpp with GGML_NATIVE=ON, for the build
# host's CPU, and caches that wheel. On a machine with another CPU it crashes: SIGILL where the
# host had AVX-512 and this one has not, SIGSEGV in the AMX kernels on a CPU with AMX. Here it is
# built with GGML_NATIVE=OFF, which on x86-64 means a fixed baseline whatever the build host:
# AVX, AVX2, FMA, F16C, BMI2 (x86-64-v3), no AVX-512, no AMX. The wheel is kept under a key of
# version, flags, architecture and Python, because pip's own wheel cache ignores CMAKE_ARGS and
# would hand back a native build made earlier.
#   SYNTHDIV_LLAMA_CMAKE_ARGS   other CMake flags, e.g. "-DGGML_NATIVE=ON" on a machine whose
#                               wheel never moves (faster on AVX-512; unsafe with AMX, see docs)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
VERSION=$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)
FLAGS="${SYNTHDIV_LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF}"
PYVER=$("$VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
key=$(printf '%s|%s|%s|%s' "$VERSION" "$FLAGS" "$(uname -m)" "$PYVER" | sha256sum | cut -c1-12)
root="${SYNTHDIV_CACHE:-$HOME/.cache/synthdiv}/wheels"
dir="$root/llama-cpp-python-$VERSION-$key"

wheel=$(find "$dir" -maxdepth 1 -name 'llama_cpp_python-*.whl' 2>/dev/null | head -n 1 || true)
if [[ -z "$wheel" ]]; then
  echo "synthdiv: compiling llama-cpp-python $VERSION ($FLAGS): 3-6 min on 2 cores, once" >&2
  mkdir -p "$root"
  tmp=$(mktemp -d "$root/.build-XXXXXX")  # same filesystem: the final mv is a rename
  trap 'rm -rf "$tmp"' EXIT
  CMAKE_ARGS="$FLAGS" "$VENV/bin/pip" wheel --quiet --disable-pip-version-check --no-deps \
    --no-cache-dir --no-binary llama-cpp-python -w "$tmp" "llama-cpp-python==$VERSION" \
    2> >(grep -v "is ignored: it is neither" >&2) >&2
  mkdir -p "$dir.partial"
  mv "$tmp"/llama_cpp_python-*.whl "$dir.partial/"
  rm -rf "$dir"
  mv "$dir.partial" "$dir"  # a killed build never leaves a directory that looks finished
  wheel=$(find "$dir" -maxdepth 1 -name 'llama_cpp_python-*.whl' | head -n 1)
fi
echo "$wheel"
