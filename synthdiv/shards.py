"""Sharded stage outputs with completion markers, on local disk or any fsspec filesystem (s3://).

Every long stage (generate, embed, judge, train data) writes its output as shards. A shard is
written under a temporary name and renamed into place, then its marker is written; the stage's
``_SUCCESS`` is written last. A rerun lists finished shards and skips them, so a killed job
resumes, and a reader never sees a torn shard.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import fsspec

SUCCESS = "_SUCCESS"
MARKER_SUFFIX = ".done"


def is_remote(uri: str) -> bool:
    """True for an object-store URI (``s3://``, ``gs://``…): read and write it through fsspec; it
    has no local path and no atomic rename. Plain paths and ``file://`` URIs are local."""
    return "://" in uri and not uri.startswith("file://")


def local_path(uri: str) -> str:
    """The filesystem path of a local URI (``file:///x`` → ``/x``; a plain path as is)."""
    return uri.removeprefix("file://")


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem and the path within it for a local path or URI."""
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def temp_path(path: str) -> str:
    """A unique hidden name beside ``path``: the rename stays within one directory, and the
    ``.tmp-`` prefix is how :meth:`ShardedOutput.clean_temporaries` and readers spot leftovers."""
    return posixpath.join(
        posixpath.dirname(path), f".tmp-{uuid.uuid4().hex}-{posixpath.basename(path)}"
    )


@contextmanager
def open_atomic(fs: fsspec.AbstractFileSystem, path: str) -> Iterator[Any]:
    """A binary file that appears at ``path`` only once the block ends: written under
    :func:`temp_path`, renamed last. A block that fails leaves the temp file (as a killed process
    would) for ``clean_temporaries``, and ``path`` untouched."""
    tmp = temp_path(path)
    with fs.open(tmp, "wb") as fh:
        yield fh
    fs.mv(tmp, path)


def write_bytes_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    with open_atomic(fs, path) as fh:
        fh.write(data)


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, default=str).encode()


def write_json_atomic(uri: str, obj: Any) -> str:
    """Write ``obj`` as JSON to a local path or fsspec URI; a killed write leaves no torn file."""
    fs, path = filesystem(uri)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    write_bytes_atomic(fs, path, _json_bytes(obj))
    return uri


class ShardedOutput:
    """A directory of shards named ``<prefix>-<index:05d>.<ext>`` with per-shard markers."""

    def __init__(self, uri: str, ext: str, prefix: str = "part"):
        self.uri = uri.rstrip("/")
        self.fs, self.root = filesystem(self.uri)
        self.ext = ext
        self.prefix = prefix
        self.fs.makedirs(self.root, exist_ok=True)

    def shard_path(self, index: int) -> str:
        return posixpath.join(self.root, f"{self.prefix}-{index:05d}.{self.ext}")

    def _marker(self, index: int) -> str:
        return self.shard_path(index) + MARKER_SUFFIX

    def is_done(self, index: int) -> bool:
        return self.fs.exists(self._marker(index))

    def _list(self) -> list[str]:
        try:
            return self.fs.ls(self.root, detail=False)
        except FileNotFoundError:  # object stores have no empty directories
            return []

    def done_indices(self) -> set[int]:
        done: set[int] = set()
        for path in self._list():
            name = posixpath.basename(path)
            if name.startswith(self.prefix + "-") and name.endswith(MARKER_SUFFIX):
                done.add(int(name[len(self.prefix) + 1 :].split(".")[0]))
        return done

    def write(
        self, index: int, writer: Callable[[Any], None], meta: dict[str, Any] | None = None
    ) -> str:
        """Write shard ``index`` by calling ``writer(file_object)``; atomic, then marked done."""
        final = self.shard_path(index)
        with open_atomic(self.fs, final) as fh:
            writer(fh)
        with self.fs.open(self._marker(index), "w") as fh:
            fh.write(json.dumps(meta or {}))
        return final

    def write_json(self, name: str, obj: Any) -> str:
        """A small JSON file (manifest, summary) beside the shards, written atomically."""
        path = posixpath.join(self.root, name)
        write_bytes_atomic(self.fs, path, _json_bytes(obj))
        return path

    def read_marker(self, index: int) -> dict[str, Any]:
        with self.fs.open(self._marker(index), "r") as fh:
            return json.loads(fh.read() or "{}")

    def completed_shards(self) -> list[str]:
        return [self.shard_path(i) for i in sorted(self.done_indices())]

    @property
    def complete(self) -> bool:
        return self.fs.exists(posixpath.join(self.root, SUCCESS))

    def mark_complete(self, summary: dict[str, Any] | None = None) -> None:
        """Written last: readers treat a directory without it as unfinished."""
        with self.fs.open(posixpath.join(self.root, SUCCESS), "w") as fh:
            fh.write(json.dumps(summary or {}, indent=2, default=str))

    def clean_temporaries(self) -> int:
        """Remove leftovers of writes that were killed midway; returns how many."""
        stale = [p for p in self._list() if posixpath.basename(p).startswith(".tmp-")]
        for path in stale:
            self.fs.rm(path)
        return len(stale)
