"""``synthdiv doctor``: can this machine run synthdiv? One line per check, each independent.

Checks that load native code (the chat model, the embedding model, Ray) run in child processes,
so a crash is reported as that check's failure (with the signal and the crash report) and the
remaining checks still run.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from synthdiv import cpu, crash

PACKAGES = (
    "torch",
    "ray",
    "mlflow",
    "llama-cpp-python",
    "transformers",
    "sentence-transformers",
    "faiss-cpu",
    "lm-eval",
)
MIN_FREE_DISK_GB = 5.0  # the quickstart's outputs, MLflow store and model caches, with room
MIN_AVAILABLE_RAM_GB = 4.0  # the quickstart peaks at ~3.4 GB
CHILD_TIMEOUT_S = 300.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def check_cpu(cpuinfo: str | None = None, machine: str | None = None) -> tuple[bool, str]:
    flags = cpu.cpu_flags(cpuinfo)
    shown = " ".join(f for f in cpu.RELEVANT_FLAGS if f in flags) or "none of the relevant flags"
    missing = cpu.missing_baseline(flags, machine)
    detail = f"{cpu.cpu_model(cpuinfo)}; {shown}"
    if missing:
        return False, f"{detail}; missing {' '.join(missing)}, which the llama.cpp build needs"
    return True, detail


def check_versions() -> tuple[bool, str]:
    found, missing = [f"python {platform.python_version()}"], []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            missing.append(name)
    detail = ", ".join(found)
    return (
        (False, f"not installed: {', '.join(missing)} (run scripts/setup.sh); {detail}")
        if missing
        else (True, detail)
    )


def check_llama_build(cpuinfo: str | None = None) -> tuple[bool, str]:
    flags = cpu.cpu_flags(cpuinfo)
    build = cpu.llama_build_features()
    compiled = " ".join(k for k, on in build.items() if on and k in cpu.BUILD_TO_FLAG) or "none"
    extra = "on" if cpu.extra_buffers_safe(flags, build) else "off (AMX in CPU and build)"
    detail = f"compiled for {compiled}; extra buffer types {extra}"
    bad = cpu.unsupported_build_features(flags, build)
    if bad:
        return False, (
            f"{detail}; this CPU lacks {' '.join(bad)}: the wheel was built for another "
            "CPU (rebuild: rm -rf ~/.cache/synthdiv/wheels && bash scripts/setup.sh)"
        )
    return True, detail


def _chat_probe(gguf: str) -> dict[str, Any]:
    from synthdiv.llm.base import ChatRequest
    from synthdiv.llm.embedded import LlamaChat

    started = time.perf_counter()
    chat = LlamaChat(gguf, 512, {}, 1)
    answer = chat.answer(
        ChatRequest(
            id="doctor", max_tokens=16, messages=[{"role": "user", "content": "Say hello."}]
        )
    )
    return {"answer": answer, "seconds": time.perf_counter() - started, **chat.stats()}


def check_chat_model(model: str | None = None) -> tuple[bool, str]:
    """Load the GGUF (packaged SmolLM2 by default) in a child process and ask one question."""
    from synthdiv.llm.embedded import ENGINE, resolve_gguf

    gguf = resolve_gguf(model)
    probe = crash.run_isolated(
        ENGINE,
        f"embedded LLM engine (llama.cpp, {gguf.name})",
        _chat_probe,
        str(gguf),
        timeout=CHILD_TIMEOUT_S,
    )
    answer = probe["answer"]
    if answer.error:
        return False, f"{gguf.name}: {answer.error}"
    rate = answer.completion_tokens / max(answer.latency_s, 1e-9)
    extra = "on" if probe["extra_buffers"] else "off"
    return True, (
        f"{gguf.name} answered {answer.completion_tokens} tokens ({rate:.0f} tok/s; "
        f"{probe['seconds']:.1f} s with the load); extra buffer types {extra}"
    )


def _embed_probe() -> str:
    from sentence_transformers import SentenceTransformer

    from synthdiv.models import minilm_path

    model = SentenceTransformer(str(minilm_path()), device="cpu")
    vectors = model.encode(["a cat sat on the mat", "stock prices fell"])
    return f"all-MiniLM-L6-v2, dim {vectors.shape[1]}"


def check_embedding_model() -> tuple[bool, str]:
    return True, crash.run_isolated(
        "doctor-embed", "embedding model", _embed_probe, timeout=CHILD_TIMEOUT_S
    )


def _pid() -> int:
    return os.getpid()


def _ray_probe() -> str:
    import ray

    from synthdiv.runtime import default_num_cpus, start_local_ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    start_local_ray(default_num_cpus(), log_to_driver=False)
    try:
        pid = ray.get(ray.remote(num_cpus=0.5)(_pid).remote())
        return f"ray {ray.__version__}: local cluster started, a task ran (pid {pid})"
    finally:
        ray.shutdown()


def check_ray() -> tuple[bool, str]:
    return True, crash.run_isolated("doctor-ray", "Ray start", _ray_probe, timeout=CHILD_TIMEOUT_S)


def check_mlflow(tracking_uri: str | None = None) -> tuple[bool, str]:
    """Write a run to the store, read it back, delete it."""
    from synthdiv.config import RuntimeConfig
    from synthdiv.tracking import resolve_tracking_uri
    from synthdiv.tracking.probe import store_roundtrip

    uri = resolve_tracking_uri(RuntimeConfig(tracking_uri=tracking_uri))
    value = float(uuid.uuid4().int % 1000)
    read = store_roundtrip(uri, value)
    if read != value:
        return False, f"{uri}: wrote {value}, read back {read}"
    return True, f"{uri}: wrote and read back a run"


def check_resources(path: str = ".") -> tuple[bool, str]:
    import psutil

    free_gb = shutil.disk_usage(Path(path).resolve()).free / 1e9
    ram_gb = psutil.virtual_memory().available / 1e9
    detail = f"{free_gb:.1f} GB free disk at {Path(path).resolve()}, {ram_gb:.1f} GB RAM available"
    short = [
        what
        for what, have, need in (
            ("disk", free_gb, MIN_FREE_DISK_GB),
            ("RAM", ram_gb, MIN_AVAILABLE_RAM_GB),
        )
        if have < need
    ]
    if short:
        return (
            False,
            f"{detail}; too little {' and '.join(short)} (need {MIN_FREE_DISK_GB:g} GB "
            f"disk, {MIN_AVAILABLE_RAM_GB:g} GB RAM)",
        )
    return True, detail


def run_checks(
    chat_model: str | None = None,
    tracking_uri: str | None = None,
    on_check: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Every check, in order; a check that raises fails with the error as its detail."""
    checks: list[tuple[str, Callable[[], tuple[bool, str]]]] = [
        ("cpu", check_cpu),
        ("packages", check_versions),
        ("llama.cpp build", check_llama_build),
        ("chat model", lambda: check_chat_model(chat_model)),
        ("embedding model", check_embedding_model),
        ("mlflow store", lambda: check_mlflow(tracking_uri)),
        ("ray", check_ray),
        ("disk and memory", check_resources),
    ]
    results = []
    for name, fn in checks:
        try:
            ok, detail = fn()
        except Exception as err:  # noqa: BLE001 -- a failing check is a result, not a crash
            ok, detail = False, f"{type(err).__name__}: {err}"
        results.append(Check(name, ok, detail))
        if on_check is not None:
            on_check(results[-1])
    return results
