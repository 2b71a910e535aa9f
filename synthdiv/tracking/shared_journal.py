"""Tracking journals on a job's shared storage (``s3://``, ``gs://``): a worker on any node
journals there while MLflow is away from it, and the driver, or ``synthdiv tracking-sync
--storage-uri``, replays what every node wrote."""

from __future__ import annotations

import json
import posixpath
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from synthdiv.shards import filesystem, is_remote, local_path
from synthdiv.tracking.journal import Journal, journal_dir, jsonl, new_entry

# Every tracking call first looks for journaled calls to replay. On object storage a look is a
# LIST request, so a process that found nothing looks again only after this many seconds (or at
# once after journaling a call itself): a training loop does not pay one LIST per metric call.
REMOTE_LIST_SECONDS = 15.0
_SUBDIR = ".synthdiv/tracking_gaps"  # under the job's storage_uri
_PENDING_SUFFIX = ".d"
_REPLAYED_SUFFIX = ".replayed.d"


def shared_journal_root(storage_uri: str | None) -> str | None:
    """The journal directory on a job's shared storage, when that storage is a URI (S3, GCS):
    every node sees it. None: the local default (:func:`synthdiv.tracking.journal.journal_dir`)."""
    if not storage_uri or not is_remote(storage_uri):
        return None
    return posixpath.join(storage_uri.rstrip("/"), _SUBDIR)


def open_journal(root: str, run_id: str) -> Journal:
    """The journal of ``run_id`` under ``root``: a local directory, or a URI on shared storage."""
    if is_remote(root):
        return RemoteJournal(root, run_id)
    return Journal(Path(local_path(root)), run_id)


def sync_command(journal_root: str) -> str:
    """The command that replays journals under ``journal_root`` once MLflow answers again."""
    if not is_remote(journal_root):
        return "synthdiv tracking-sync"
    storage_uri = journal_root.rstrip("/").removesuffix("/" + _SUBDIR)
    return f"synthdiv tracking-sync --storage-uri {storage_uri}"


def pending_remote_journals(root: str) -> list[str]:
    """Ids of the runs with journaled calls waiting under a shared ``root``."""
    names = [posixpath.basename(p.rstrip("/")) for p in _list_fresh(*filesystem(root))]
    return sorted(
        n.removesuffix(_PENDING_SUFFIX)
        for n in names
        if n.endswith(_PENDING_SUFFIX) and not n.endswith(_REPLAYED_SUFFIX)
    )


def _list_fresh(fs: Any, path: str) -> list[str]:
    """What is under ``path`` now (another node may have written since fsspec cached a listing);
    [] when nothing is."""
    fs.invalidate_cache(path)
    return fs.ls(path, detail=False) if fs.exists(path) else []


class RemoteJournal(Journal):
    """A journal on object storage, which has neither appends nor atomic renames.

    Each append is its own object ``<root>/<run>.d/<time ns>-<uuid>.jsonl``, so writers on any
    node never overwrite each other; reading lists them in time order. A replay works on a local
    copy of the pending segments (``claim``) and deletes exactly those segments once it has
    replayed them or put the rest back as one new segment, so appends that arrive meanwhile stay
    pending. Two drivers replaying one run at once may both send a call: replay is
    at-least-once, as for :func:`~synthdiv.tracking.journal.recover_orphans`. ``replayed_path``
    is a local file (it is logged as the gap artifact); the replayed entries are also kept under
    ``<run>.replayed.d``.
    """

    def __init__(self, root: str, run_id: str):
        self.uri = f"{root.rstrip('/')}/{run_id}{_PENDING_SUFFIX}"
        self.fs, self.root = filesystem(self.uri)
        self.replayed_root = filesystem(f"{root.rstrip('/')}/{run_id}{_REPLAYED_SUFFIX}")[1]
        self.path = Path(self.uri)  # shown in log messages only
        self.replayed_path = journal_dir() / "remote" / f"{run_id}.replayed.jsonl"
        self._claimed: dict[str, list[str]] = {}
        self._found_nothing_at: float | None = None  # monotonic time of the last empty listing

    def _segments(self) -> list[str]:
        return sorted(p for p in _list_fresh(self.fs, self.root) if p.endswith(".jsonl"))

    def _put(self, directory: str, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        name = f"{int(entries[0]['time'] * 1e9):020d}-{uuid.uuid4().hex}.jsonl"
        # one atomic PUT: a reader sees the whole segment or none of it
        self.fs.pipe_file(posixpath.join(directory, name), jsonl(entries).encode())

    def _read(self, segments: list[str]) -> list[dict[str, Any]]:
        lines = b"".join(self.fs.cat_file(p) for p in segments).decode().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def append(self, op: str, args: dict[str, Any], error: str) -> None:
        self._put(self.root, [new_entry(op, args, error)])
        self._found_nothing_at = None

    def put_back(self, entries: list[dict[str, Any]]) -> None:
        self._put(self.root, entries)
        self._forget_claimed()
        self._found_nothing_at = None

    def entries(self) -> list[dict[str, Any]]:
        return self._read(self._segments())

    def claim(self, force: bool = False) -> Path | None:
        now = time.monotonic()
        recent = self._found_nothing_at is not None
        if recent and not force and now - self._found_nothing_at < REMOTE_LIST_SECONDS:
            return None  # looked moments ago and found nothing; other nodes' calls can wait
        segments = self._segments()
        if not segments:
            self._found_nothing_at = now
            return None
        self._found_nothing_at = None
        claimed = Path(tempfile.mkdtemp(prefix="synthdiv-journal-")) / "claimed.jsonl"
        Journal._write(claimed, self._read(segments))
        self._claimed[str(claimed)] = segments
        return claimed

    def retire(self, claimed: Path, replayed: list[dict[str, Any]]) -> None:
        self._put(self.replayed_root, replayed)
        Journal._write(self.replayed_path, replayed)
        self._forget_claimed()
        claimed.unlink(missing_ok=True)

    def _forget_claimed(self) -> None:
        for segments in self._claimed.values():
            if present := [p for p in segments if self.fs.exists(p)]:
                self.fs.rm(present)
        self._claimed.clear()
