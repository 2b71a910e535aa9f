"""Native crashes, reported where they happen.

A native engine (llama.cpp, torch, faiss) that dies of a signal takes its whole process with it,
and Ray or multiprocessing then only says "the worker died". So every worker process that hosts
one *arms* a crash report first: :mod:`faulthandler` writes the fatal signal and the Python stack
to ``<crash dir>/<engine>-<pid>.log``. The driver turns a dead worker into an
:class:`~synthdiv.errors.EngineCrashError` naming the engine, the signal and that file.

:class:`IsolatedWorker` runs an object in a spawned child process, so a crash there fails the
caller with that error instead of killing it (the embedded LLM engine without Ray; ``doctor``).

``SYNTHDIV_INJECT_CRASH=<engine>:<SIGNAL>`` makes that engine's workers die of the signal on
their first unit of work: the tests' way to prove the whole path on a machine that does not crash.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import re
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from synthdiv.errors import EngineCrashError

ENV_CRASH_DIR = "SYNTHDIV_CRASH_DIR"
ENV_INJECT = "SYNTHDIV_INJECT_CRASH"
# faulthandler's wording (CPython Modules/faulthandler.c) → the signal it reports
_FATAL_WORDS = {
    "Segmentation fault": "SIGSEGV",
    "Aborted": "SIGABRT",
    "Illegal instruction": "SIGILL",
    "Bus error": "SIGBUS",
    "Floating-point exception": "SIGFPE",
}
_FATAL_RE = re.compile(r"Fatal Python error: ([A-Za-z -]+)")
_REPORT_LINES = 12  # enough of the stack to show which call crashed
_armed: dict[str, TextIO] = {}


def crash_dir() -> Path:
    return Path(os.environ.get(ENV_CRASH_DIR) or Path(tempfile.gettempdir()) / "synthdiv-crash")


def arm(engine: str) -> Path:
    """In a worker process: write this process's fatal-error report to a file of its own.

    Called once per engine and process; empty reports of processes that ended cleanly are
    pruned after a day."""
    root = crash_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{engine}-{os.getpid()}.log"
    if engine not in _armed:
        _prune(root)
        _armed[engine] = open(path, "w")  # noqa: SIM115 -- must stay open for the signal handler
        faulthandler.enable(file=_armed[engine], all_threads=True)
    return path


def _prune(root: Path, max_age_s: float = 86400) -> None:
    now = time.time()
    for old in root.glob("*.log"):
        try:
            stat = old.stat()
            if stat.st_size == 0 and now - stat.st_mtime > max_age_s:
                old.unlink()
        except OSError:  # another process pruned it first
            pass


def maybe_inject(engine: str) -> None:
    """Die of the signal named by ``SYNTHDIV_INJECT_CRASH`` if it names this engine (tests)."""
    spec = os.environ.get(ENV_INJECT, "")
    target, _, name = spec.partition(":")
    if target != engine:
        return
    if name == "SIGABRT":
        os.abort()
    os.kill(os.getpid(), getattr(signal, name or "SIGSEGV"))


def signal_from_exitcode(exitcode: int | None) -> str | None:
    """multiprocessing's exit code of a process killed by a signal is minus its number."""
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def read_report(path: Path) -> tuple[str | None, str]:
    """(signal named in a fatal-error report, its first lines); (None, "") when it is empty."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None, ""
    match = _FATAL_RE.search(text)
    if not match:
        return None, ""
    words = match.group(1).strip()
    # the crashing thread's stack, not the idle threads' listed before it
    current = text.find("Current thread", match.end())
    stack = text[current:] if current >= 0 else text[match.end() :]
    lines = [match.group(0), *stack.strip().split("\n\n")[0].splitlines()[:_REPORT_LINES]]
    return _FATAL_WORDS.get(words, words), "\n".join(lines)


def find_report(engine: str, since: float) -> Path | None:
    """The newest non-empty report of ``engine`` written at or after ``since`` (epoch seconds):
    how a driver finds the report of a Ray worker whose pid it never learnt."""
    root = crash_dir()
    found = []
    for path in root.glob(f"{engine}-*.log") if root.is_dir() else []:
        try:
            stat = path.stat()
        except OSError:
            continue
        if stat.st_size > 0 and stat.st_mtime >= since:
            found.append((stat.st_mtime, path))
    return max(found)[1] if found else None


def crash_error(
    engine: str,
    label: str,
    *,
    pid: int | None = None,
    exitcode: int | None = None,
    since: float | None = None,
    cause: str = "",
) -> EngineCrashError:
    """The error for a dead worker of ``engine`` (file-name slug; ``label`` is the human name)."""
    path = crash_dir() / f"{engine}-{pid}.log" if pid else None
    if path is None or not path.is_file() or path.stat().st_size == 0:
        path = find_report(engine, since) if since is not None else None
    sig, excerpt = read_report(path) if path else (None, "")
    sig = sig or signal_from_exitcode(exitcode)
    detail = "\n".join(part for part in (excerpt, cause) if part)
    return EngineCrashError(label, sig, str(path) if path and excerpt else None, detail)


# -- running an object in a child process --------------------------------------------------------
class _Call:
    """The object :func:`run_isolated` builds in the child: it runs one function."""

    def run(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


def _serve(conn: Any, engine: str, factory: Any, args: tuple[Any, ...]) -> None:
    arm(engine)
    try:
        target = factory(*args)
    except Exception as err:  # noqa: BLE001 -- a load error is reported to the caller, not lost
        conn.send(("error", _picklable(err)))
        return
    conn.send(("ready", None))
    while (message := conn.recv()) is not None:
        method, call_args = message
        try:
            conn.send(("ok", getattr(target, method)(*call_args)))
        except Exception as err:  # noqa: BLE001
            conn.send(("error", _picklable(err)))


def _picklable(err: Exception) -> Exception:
    import pickle

    try:
        pickle.dumps(err)
        return err
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(err).__name__}: {err}")


class IsolatedWorker:
    """``factory(*args)`` built and called in a spawned child process. A native crash there
    raises :class:`EngineCrashError` in the caller; the caller's process lives on."""

    def __init__(self, engine: str, label: str, factory: Any, *args: Any):
        self.engine, self.label = engine, label
        ctx = multiprocessing.get_context("spawn")  # fork would copy Ray's and torch's threads
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve,
            args=(child, engine, factory, args),
            name=f"synthdiv-{engine}",
            daemon=True,
        )
        self._proc.start()
        child.close()
        self._ready = False

    def _receive(self, timeout: float | None) -> Any:
        try:
            if timeout is not None and not self._conn.poll(timeout):
                self.close()
                raise TimeoutError(f"{self.label}: no answer within {timeout:g} s")
            status, value = self._conn.recv()
        except (EOFError, OSError):
            raise self._crashed() from None
        if status == "error":
            raise value
        return value

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        if not self._ready:
            self._receive(timeout)  # the factory's "ready" (or its load error)
            self._ready = True
        try:
            self._conn.send((method, args))
        except OSError:
            raise self._crashed() from None
        return self._receive(timeout)

    def _crashed(self) -> Exception:
        """The error for a child whose pipe broke: it died; wait for its exit code."""
        self._proc.join(10)
        return crash_error(
            self.engine, self.label, pid=self._proc.pid, exitcode=self._proc.exitcode
        )

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
        self._conn.close()


def run_isolated(engine: str, label: str, fn: Any, *args: Any, timeout: float | None = None) -> Any:
    """``fn(*args)`` in a child process (``fn`` must be importable): its result, its exception,
    or an :class:`EngineCrashError` if it crashed."""
    worker = IsolatedWorker(engine, label, _Call)
    try:
        return worker.call("run", fn, *args, timeout=timeout)
    finally:
        worker.close()
