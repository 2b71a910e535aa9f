"""`synthdiv doctor` on this machine: every check passes; a broken one fails clearly, alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthdiv.crash import ENV_CRASH_DIR, ENV_INJECT
from synthdiv.doctor import check_chat_model

pytestmark = pytest.mark.slow
SYNTHDIV = str(Path(sys.executable).with_name("synthdiv"))
CHECKS = [
    "cpu",
    "packages",
    "llama.cpp build",
    "chat model",
    "embedding model",
    "mlflow store",
    "ray",
    "disk and memory",
]


def _doctor(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SYNTHDIV, "doctor", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, COLUMNS="200", **env),
    )


def _lines(out: str) -> dict[str, str]:
    return {
        name: line
        for line in out.splitlines()
        for name in CHECKS
        if line[5:].startswith(name + " ")
    }


def test_every_check_passes_here(mlflow_server, smollm2_gguf):
    out = _doctor("--tracking-uri", mlflow_server)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = _lines(out.stdout)
    assert list(lines) == CHECKS and all(line.startswith("ok") for line in lines.values())
    assert "answered" in lines["chat model"] and "dim 384" in lines["embedding model"]
    assert "all 8 checks passed" in out.stdout


def test_a_broken_check_fails_alone_and_the_exit_code_says_so(tmp_path, mlflow_server):
    garbage = tmp_path / "broken.gguf"
    garbage.write_bytes(b"not a gguf file at all")
    out = _doctor("--chat-model", str(garbage), "--tracking-uri", mlflow_server)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = _lines(out.stdout)
    assert list(lines) == CHECKS  # the other checks still ran
    assert lines["chat model"].startswith("FAIL") and "broken.gguf" in lines["chat model"]
    assert all(lines[c].startswith("ok") for c in CHECKS if c != "chat model")
    assert "1 of 8 checks failed: chat model" in out.stdout


def test_a_crashing_engine_is_a_failed_check_not_a_dead_doctor(tmp_path, monkeypatch, smollm2_gguf):
    monkeypatch.setenv(ENV_INJECT, "llm-engine:SIGSEGV")
    monkeypatch.setenv(ENV_CRASH_DIR, str(tmp_path))
    from synthdiv.errors import EngineCrashError

    with pytest.raises(EngineCrashError, match="died with SIGSEGV") as caught:
        check_chat_model()
    assert caught.value.log and Path(caught.value.log).parent == tmp_path
    monkeypatch.delenv(ENV_INJECT)
    ok, detail = check_chat_model()
    assert ok and "answered" in detail
