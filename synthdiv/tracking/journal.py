"""When the tracking server goes away: the work goes on, and what could not be logged waits on
local disk until the server answers again.

Every write of a :class:`~synthdiv.tracking.Tracker` goes through :meth:`Guard.call`. MLflow's
client retries a failed HTTP call itself (bounded here by :data:`HTTP_RETRY_DEFAULTS`); when it
still fails, the call is appended to a JSONL journal (one file per run, in
:func:`journal_dir`) and the stage carries on. While the server is away the guard does not wait
for every call: it journals at once and probes ``/health`` at most every
:data:`PROBE_SECONDS`. Once a probe or a call succeeds, the journal is replayed in order, and the
run is tagged ``synthdiv.tracking.gaps`` with the journal logged as ``tracking/gaps.jsonl`` — the
gap is recorded, nothing is lost. ``synthdiv tracking-sync`` replays journals left behind by
a job that ended while the server was still away.

On a cluster the journal lives on the job's shared storage (``<storage_uri>/.synthdiv/
tracking_gaps`` when that is a URI such as ``s3://``): a training worker on another node journals
there, and the driver replays it (:mod:`synthdiv.tracking.shared_journal`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("synthdiv.tracking")

# MLflow's own default (7 retries, backoff factor 2, 120 s timeout) waits ~4 min per call; a
# study that makes hundreds of calls must not stall that long for each one. Users may override.
HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
PROBE_SECONDS = 15.0
GAP_TAG = "synthdiv.tracking.gaps"
GAP_ARTIFACT = "tracking"
OFFLINE_PREFIX = "offline-"  # run ids of stages that started while the server was away
# Errors that mean "the server is not there", not "the request is wrong" (those still raise).
_PERMANENT_CODES = {
    "INVALID_PARAMETER_VALUE",
    "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_DOES_NOT_EXIST",
    "BAD_REQUEST",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
}


def apply_http_retry_defaults() -> None:
    for key, value in HTTP_RETRY_DEFAULTS.items():
        os.environ.setdefault(key, value)


def journal_dir() -> Path:
    return Path(
        os.environ.get("SYNTHDIV_TRACKING_JOURNAL", Path.cwd() / ".synthdiv" / "tracking_gaps")
    )


def reachable(tracking_uri: str) -> bool:
    """A cheap liveness check: the server's ``/health`` (other stores: assume yes, and try)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return True
    import requests

    try:
        return requests.get(f"{tracking_uri.rstrip('/')}/health", timeout=5).ok
    except requests.RequestException:
        return False


def is_unavailable(err: BaseException) -> bool:
    """True when ``err`` says the tracking server could not be reached or failed (5xx)."""
    from mlflow.exceptions import MlflowException

    if isinstance(err, MlflowException):
        return err.error_code not in _PERMANENT_CODES
    import requests

    return isinstance(err, (ConnectionError, TimeoutError, requests.RequestException))


def new_entry(op: str, args: dict[str, Any], error: str) -> dict[str, Any]:
    """One journaled call: what it was, when, and why it waited."""
    return {"time": time.time(), "op": op, "args": args, "error": error[:500]}


def jsonl(entries: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(e, default=str) + "\n" for e in entries)


def read_entries(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


class Journal:
    """Append-only JSONL of the calls of one run that did not reach the server.

    ``<run>.jsonl`` waits to be replayed; ``<run>.replayed.jsonl`` keeps what was replayed.
    """

    def __init__(self, directory: Path, run_id: str):
        self.path = directory / f"{run_id}.jsonl"
        self.replayed_path = directory / f"{run_id}.replayed.jsonl"

    def append(self, op: str, args: dict[str, Any], error: str) -> None:
        self._write(self.path, [new_entry(op, args, error)])

    def put_back(self, entries: list[dict[str, Any]]) -> None:
        self._write(self.path, entries)

    def entries(self) -> list[dict[str, Any]]:
        return read_entries(self.path)

    def claim_path(self) -> Path:
        """Where this process and thread hold entries they took (``<run>.claimed-<pid>-<tid>``)."""
        return self.path.with_suffix(f".claimed-{os.getpid()}-{threading.get_ident()}")

    def claim(self, force: bool = False) -> Path | None:
        """Atomically take the pending entries (None if there are none or another took them).
        ``force``: look now even where looking is throttled (a journal on shared storage)."""
        claimed = self.claim_path()
        try:
            os.replace(self.path, claimed)
        except FileNotFoundError:
            return None
        return claimed

    def retire(self, claimed: Path, replayed: list[dict[str, Any]]) -> None:
        self._write(self.replayed_path, replayed)
        claimed.unlink(missing_ok=True)

    @staticmethod
    def _write(path: Path, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:  # one append per batch: safe across processes
            f.write(jsonl(entries))


def recover_orphans(directory: Path) -> int:
    """Put back the entries of journals claimed by a process that died while replaying them.

    A claim is ``<run>.claimed-<pid>-<thread>``; once that pid is gone nobody will retire it, so
    its entries are appended back to ``<run>.jsonl`` (taken by an atomic rename first, so two
    recoverers never both do it). Replay is at-least-once: calls the dead process had already sent
    are sent again, which MLflow absorbs (same params, tags and artifacts; metric points keep
    their timestamps and steps). Returns how many claims were recovered."""
    recovered = 0
    for claimed in sorted(directory.glob("*.claimed-*")) if directory.is_dir() else []:
        run, _, owner = claimed.name.partition(".claimed-")
        pid = owner.split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        journal = Journal(directory, run)
        mine = journal.claim_path()
        try:
            os.replace(claimed, mine)
        except FileNotFoundError:  # another recoverer took it
            continue
        journal.put_back(read_entries(mine))
        mine.unlink()
        recovered += 1
    return recovered


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class Guard:
    """Runs tracking calls; journals them while the server is away; replays them once it is back."""

    def __init__(
        self,
        tracking_uri: str,
        journal: Journal,
        replay: Callable[[str, dict[str, Any]], None],
        *,
        online: bool = True,
    ):
        self.tracking_uri = tracking_uri
        self.journal = journal
        self._replay_one = replay
        self._online = online  # False: a run that was never created; every call is journaled
        self._down_since: float | None = None if online else time.monotonic()
        self._last_probe = 0.0
        self._lock = threading.RLock()
        self._replaying = False

    @property
    def offline(self) -> bool:
        return self._down_since is not None

    def call(
        self, op: str, args: dict[str, Any], fn: Callable[[], Any], default: Any = None
    ) -> Any:
        with self._lock:
            if not self._replaying and self._online and (not self.offline or self._probe()):
                self.flush()  # calls journaled earlier (here or by another process) go first
            if not self._online or self.offline:
                self.journal.append(
                    op, args, "tracking server unavailable (journaled without a call)"
                )
                return default
            try:
                return fn()
            except Exception as err:
                if not is_unavailable(err):
                    raise
                self._went_away(err)
                self.journal.append(op, args, f"{type(err).__name__}: {err}")
                return default

    def _went_away(self, err: BaseException) -> None:
        if self._down_since is None:
            log.warning(
                "MLflow at %s is unreachable (%s); the stage goes on and journals its "
                "tracking calls to %s",
                self.tracking_uri,
                err,
                self.journal.path,
            )
        self._down_since = self._last_probe = time.monotonic()

    def _probe(self) -> bool:
        """Whether the server is back, asked at most every PROBE_SECONDS."""
        now = time.monotonic()
        if now - self._last_probe < PROBE_SECONDS:
            return False
        self._last_probe = now
        if reachable(self.tracking_uri):
            self._down_since = None
            return True
        return False

    def flush(self, force: bool = False) -> int:
        """Replay the journal in order; returns how many calls were replayed (0 if still down).

        The journal is first claimed by an atomic rename, so two processes never replay the same
        entries; what could not be replayed is appended back for the next attempt. ``force``:
        also look where looking is throttled (the end of a run, ``synthdiv tracking-sync``).
        """
        with self._lock:
            if self._replaying or not self._online:
                return 0  # a run that was never created is opened first (Tracker.sync)
            claimed = self.journal.claim(force)
            if claimed is None:
                return 0
            entries = read_entries(claimed)
            replayed: list[dict[str, Any]] = []
            self._replaying = True
            try:
                for i, entry in enumerate(entries):
                    try:
                        self._replay_one(entry["op"], entry["args"])
                    except Exception as err:
                        if is_unavailable(err):  # gone again: keep the rest for the next attempt
                            self.journal.put_back(entries[i:])
                            self._went_away(err)
                            return 0
                        # a call the server refuses would be refused forever: record, do not retry
                        entry["replay_error"] = f"{type(err).__name__}: {err}"[:500]
                        log.warning("journaled %s refused by MLflow: %s", entry["op"], err)
                    replayed.append(entry)
            finally:
                self._replaying = False
                self.journal.retire(claimed, replayed)
            done = len(replayed)
            self._down_since = None
            log.warning("MLflow is back: replayed %d journaled tracking calls", done)
            self._record_gap()
            return done

    def _record_gap(self) -> None:
        """Tag the run with how many calls waited, and log their record (the gap itself)."""
        record = self.journal.replayed_path
        gaps = len(read_entries(record))
        self._replay_one("set_tags", {"tags": {GAP_TAG: str(gaps)}})
        self._replay_one("log_artifact", {"path": str(record), "artifact_path": GAP_ARTIFACT})
