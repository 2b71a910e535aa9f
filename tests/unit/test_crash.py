"""Crash reports: a worker that dies of a signal becomes an error naming the signal and report."""

from __future__ import annotations

import os
import time

import pytest

from synthdiv import crash
from synthdiv.errors import EngineCrashError

FAULTHANDLER_OUTPUT = """Fatal Python error: Segmentation fault

Thread 0x00007f1 (most recent call first):
  File "/x/llama_cpp/llama.py", line 1203 in _create_completion
  File "/x/synthdiv/llm/embedded.py", line 120 in answer
"""


@pytest.fixture(autouse=True)
def crash_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(crash.ENV_CRASH_DIR, str(tmp_path))
    monkeypatch.delenv(crash.ENV_INJECT, raising=False)
    return tmp_path


def _abort() -> None:
    os.abort()


def _double(x: int) -> int:
    return 2 * x


def _raise() -> None:
    raise ValueError("a plain Python error")


def test_report_names_signal_and_stack(crash_dir):
    path = crash_dir / "llm-engine-123.log"
    path.write_text(FAULTHANDLER_OUTPUT)
    signal, excerpt = crash.read_report(path)
    assert signal == "SIGSEGV" and "in answer" in excerpt
    err = crash.crash_error("llm-engine", "embedded LLM engine", pid=123)
    assert err.signal == "SIGSEGV" and err.log == str(path)
    assert "embedded LLM engine died with SIGSEGV" in str(err) and str(path) in str(err)


def test_a_report_is_found_by_engine_and_time(crash_dir):
    (crash_dir / "train-worker-1.log").write_text("")  # armed, ended cleanly
    old = crash_dir / "train-worker-2.log"
    old.write_text(FAULTHANDLER_OUTPUT)
    os.utime(old, (time.time() - 100, time.time() - 100))
    assert crash.find_report("train-worker", since=time.time() - 10) is None
    new = crash_dir / "train-worker-3.log"
    new.write_text(FAULTHANDLER_OUTPUT.replace("Segmentation fault", "Aborted"))
    assert crash.find_report("train-worker", since=time.time() - 10) == new
    assert crash.find_report("embed-actor", since=0) is None


def test_a_death_without_report_is_named_by_its_exit_code():
    assert crash.signal_from_exitcode(-9) == "SIGKILL"
    assert crash.signal_from_exitcode(1) is None
    err = crash.crash_error("llm-engine", "engine", pid=999, exitcode=-9)
    assert "died with SIGKILL" in str(err) and "no crash report" in str(err)
    assert "OOM" in str(crash.crash_error("llm-engine", "engine", since=time.time()))


def test_isolated_call_survives_a_native_crash(crash_dir):
    assert crash.run_isolated("test-engine", "doubler", _double, 21) == 42
    with pytest.raises(ValueError, match="plain Python error"):
        crash.run_isolated("test-engine", "raiser", _raise)
    with pytest.raises(EngineCrashError) as caught:
        crash.run_isolated("test-engine", "aborter", _abort)
    err = caught.value
    assert err.signal == "SIGABRT" and err.engine == "aborter"
    assert err.log and err.log.startswith(str(crash_dir)) and "_abort" in open(err.log).read()


def test_injection_hook_fires_only_for_its_engine(monkeypatch):
    monkeypatch.setenv(crash.ENV_INJECT, "other-engine:SIGSEGV")
    crash.maybe_inject("llm-engine")  # not this one: returns
    monkeypatch.setenv(crash.ENV_INJECT, "test-engine:SIGSEGV")
    with pytest.raises(EngineCrashError) as caught:
        crash.run_isolated("test-engine", "injected", crash.maybe_inject, "test-engine")
    assert caught.value.signal == "SIGSEGV"
