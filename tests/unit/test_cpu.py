"""CPU and llama.cpp-build detection, fed with the flags of CPUs this machine does not have."""

from __future__ import annotations

import pytest

from synthdiv import cpu
from synthdiv.doctor import check_cpu, check_llama_build

BASE = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma bmi1 bmi2 avx2 popcnt"
AVX2_ONLY = f"processor\t: 0\nmodel name\t: Intel Core i7-8700\nflags\t\t: {BASE}\n"
AVX512 = (
    f"model name\t: AMD EPYC 9R14\nflags\t\t: {BASE} avx512f avx512bw avx512_vnni avx512_bf16\n"
)
AMX = (
    "model name\t: Intel Xeon Platinum 8488C\nflags\t\t: "
    f"{BASE} avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n"
)
OLD = "model name\t: Intel Xeon E5-2670\nflags\t\t: fpu sse sse2 sse4_2 avx\n"
NATIVE_AMX_BUILD = (
    "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
)
PORTABLE_BUILD = (
    "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
)


def test_flags_and_model_are_read_from_cpuinfo():
    assert {"amx_tile", "amx_int8", "avx512f"} <= cpu.cpu_flags(AMX)
    assert "avx512f" not in cpu.cpu_flags(AVX2_ONLY)
    assert cpu.cpu_model(AMX) == "Intel Xeon Platinum 8488C"
    assert cpu.cpu_flags("") == frozenset()  # unknown: nothing assumed
    assert "asimd" in cpu.cpu_flags("Features\t: fp asimd evtstrm aes\n")  # arm's field name


def test_system_info_is_parsed():
    build = cpu.parse_system_info(NATIVE_AMX_BUILD)
    assert build["AMX_INT8"] and build["AVX512"] and build["REPACK"]
    assert not cpu.parse_system_info(PORTABLE_BUILD).get("AMX_INT8")


@pytest.mark.parametrize(
    ("cpuinfo", "system_info", "safe"),
    [
        (AMX, NATIVE_AMX_BUILD, False),  # the measured SIGSEGV: AMX CPU, AMX kernels compiled in
        (AMX, PORTABLE_BUILD, True),  # setup.sh's build has no AMX kernels to reach
        (AVX512, NATIVE_AMX_BUILD, True),  # an AMX build on a CPU without AMX never selects them
        (AVX2_ONLY, PORTABLE_BUILD, True),
        ("", NATIVE_AMX_BUILD, True),  # flags unknown (not Linux)
    ],
)
def test_extra_buffers_are_off_only_where_amx_kernels_would_run(cpuinfo, system_info, safe):
    flags = cpu.cpu_flags(cpuinfo)
    assert cpu.extra_buffers_safe(flags, cpu.parse_system_info(system_info)) is safe


def test_a_build_for_another_cpu_is_named():
    native = cpu.parse_system_info(NATIVE_AMX_BUILD)
    assert cpu.unsupported_build_features(cpu.cpu_flags(AVX2_ONLY), native) == [
        "AVX512",
        "AVX512_VNNI",
        "AMX_INT8",
    ]
    assert cpu.unsupported_build_features(cpu.cpu_flags(AMX), native) == []
    portable = cpu.parse_system_info(PORTABLE_BUILD)
    for cpuinfo in (AVX2_ONLY, AVX512, AMX):
        assert cpu.unsupported_build_features(cpu.cpu_flags(cpuinfo), portable) == []


def test_the_portable_baseline_is_checked_on_x86_only():
    assert cpu.missing_baseline(cpu.cpu_flags(AVX2_ONLY), "x86_64") == []
    assert cpu.missing_baseline(cpu.cpu_flags(OLD), "x86_64") == ["avx2", "fma", "f16c", "bmi2"]
    assert cpu.missing_baseline(cpu.cpu_flags(OLD), "aarch64") == []


def test_doctor_cpu_check_fails_on_a_cpu_below_the_baseline():
    ok, detail = check_cpu(AMX, "x86_64")
    assert ok and "Intel Xeon Platinum 8488C" in detail and "amx_int8" in detail
    ok, detail = check_cpu(OLD, "x86_64")
    assert not ok and "missing avx2" in detail


def test_doctor_build_check_names_the_decision(monkeypatch):
    monkeypatch.setattr(
        cpu, "llama_build_features", lambda: cpu.parse_system_info(NATIVE_AMX_BUILD)
    )
    ok, detail = check_llama_build(AMX)
    assert ok and "extra buffer types off" in detail and "AMX_INT8" in detail
    ok, detail = check_llama_build(AVX2_ONLY)
    assert not ok and "lacks AVX512" in detail
