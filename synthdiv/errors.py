"""The base of synthdiv's own errors: what the CLI prints whole, as ``error: …``, without a
traceback. An error that is not a ``SynthdivError`` is a bug, and keeps its traceback."""

from __future__ import annotations


class SynthdivError(Exception):
    """An expected failure the user can act on; its message says what happened and what to do."""


class EngineCrashError(SynthdivError, RuntimeError):
    """A native engine (llama.cpp, an embedding actor, a training worker) died in its process.

    ``signal`` is the signal's name (``SIGSEGV``) or None when the process vanished without a
    fatal-error report (SIGKILL, e.g. the kernel's OOM killer); ``log`` is the crash report's
    path on the node where it died, or None.
    """

    def __init__(self, engine: str, signal: str | None, log: str | None, detail: str = ""):
        self.engine, self.signal, self.log = engine, signal, log
        how = (
            f"died with {signal}"
            if signal
            else "died without a fatal-error report (SIGKILL? "
            "the kernel's OOM killer leaves none: check `dmesg`)"
        )
        where = f"crash report: {log}" if log else "no crash report on this node"
        super().__init__(f"{engine} {how}; {where}" + (f"\n{detail}" if detail else ""))
