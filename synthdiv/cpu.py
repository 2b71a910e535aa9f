"""What this CPU and this llama.cpp build can do, and what the embedded engine must avoid.

Machines of one kind differ in CPU (AMX, AVX-512, AVX2 only), so nothing here assumes a feature:
flags are read from ``/proc/cpuinfo`` and the build's features from llama.cpp itself, and both
can be fed in, so every decision is unit-tested on any machine.

The known hazard: llama.cpp's AMX *extra buffer type* (``ggml_backend_amx_mul_mat``) crashes
with SIGSEGV on the packaged SmolLM2 GGUF on a CPU with AMX. ``scripts/setup.sh`` builds
llama.cpp without AMX (a fixed AVX2 baseline, not the build host's), and :func:`extra_buffers_safe`
guards any other build: extra buffer types are turned off when both CPU and build have AMX.
"""

from __future__ import annotations

import platform
import re
from functools import lru_cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
AMX_FLAGS = frozenset({"amx_tile", "amx_int8", "amx_bf16"})
# the flags doctor shows: the instruction sets llama.cpp, torch and faiss dispatch on
RELEVANT_FLAGS = (
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
# x86-64-v3: the instruction sets of setup.sh's portable llama.cpp build (GGML_NATIVE=OFF)
BASELINE_X86 = ("avx", "avx2", "fma", "f16c", "bmi2")


def _cpuinfo_field(text: str, name: str) -> str:
    match = re.search(rf"^{name}\s*:\s*(.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else ""


def _cpuinfo() -> str:
    try:
        return CPUINFO.read_text()
    except OSError:  # not Linux: no flags known, so no feature is assumed
        return ""


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The kernel's CPU flags (x86 ``flags``, arm ``Features``); empty where unknown."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    line = _cpuinfo_field(text, "flags") or _cpuinfo_field(text, "Features")
    return frozenset(line.split())


def cpu_model(cpuinfo: str | None = None) -> str:
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    return _cpuinfo_field(text, "model name") or platform.processor() or platform.machine()


def missing_baseline(flags: frozenset[str], machine: str | None = None) -> list[str]:
    """Instruction sets the portable x86 build needs that this CPU lacks ([] on other arches,
    and when the flags are unknown: then nothing can be said)."""
    if (machine or platform.machine()) not in ("x86_64", "AMD64") or not flags:
        return []
    return [f for f in BASELINE_X86 if f not in flags]


def parse_system_info(info: str) -> dict[str, bool]:
    """llama.cpp's ``llama_print_system_info()`` ("CPU : AVX2 = 1 | AMX_INT8 = 1 | …")."""
    return {key: value == "1" for key, value in re.findall(r"([A-Z0-9_]+) = (\d)", info)}


@lru_cache(maxsize=1)
def llama_build_features() -> dict[str, bool]:
    """The loaded llama.cpp library's compiled-in CPU features."""
    import llama_cpp

    return parse_system_info(llama_cpp.llama_print_system_info().decode(errors="replace"))


def extra_buffers_safe(flags: frozenset[str], build: dict[str, bool]) -> bool:
    """False when llama.cpp would use its AMX extra buffer type: a CPU with AMX running a build
    with AMX kernels (the measured SIGSEGV). Other extra buffers (CPU repacking) are kept."""
    build_has_amx = any(build.get(key) for key in ("AMX_INT8", "AMX_BF16", "AMX_TILE", "AMX"))
    return not (flags & AMX_FLAGS and build_has_amx)


# llama.cpp's system-info names → the kernel's flag for the same instruction set
BUILD_TO_FLAG = {
    "AVX": "avx",
    "AVX2": "avx2",
    "FMA": "fma",
    "F16C": "f16c",
    "BMI2": "bmi2",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AVX_VNNI": "avx_vnni",
    "AMX_INT8": "amx_int8",
}


def unsupported_build_features(flags: frozenset[str], build: dict[str, bool]) -> list[str]:
    """Instruction sets the llama.cpp build was compiled for that this CPU lacks: it would die of
    SIGILL (a wheel built natively on another machine). [] when the flags are unknown."""
    if not flags:
        return []
    return [name for name, flag in BUILD_TO_FLAG.items() if build.get(name) and flag not in flags]
