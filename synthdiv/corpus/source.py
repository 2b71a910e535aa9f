"""Where a corpus's rows are: the data files of a path (a file, a directory, finished shards; local
or any fsspec filesystem) and their raw rows."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from synthdiv.config import CorpusConfig
from synthdiv.corpus.format import (
    MANIFEST,
    CorpusError,
    RawRow,
    format_of,
)
from synthdiv.shards import MARKER_SUFFIX, SUCCESS, filesystem


@dataclass(frozen=True)
class CorpusSource:
    uri: str
    files: list[str]  # full URIs, in reading order
    fmt: str


def one_line_error(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def resolve_source(cfg: CorpusConfig) -> CorpusSource:
    """The data files of ``cfg.path`` and their format; refuses unfinished shard directories."""
    try:
        fs, root = filesystem(cfg.path)
        info = fs.info(root)
    except FileNotFoundError:
        raise CorpusError(f"corpus not found: {cfg.path}") from None
    except Exception as err:  # noqa: BLE001 — any filesystem/credential error becomes one line
        raise CorpusError(f"cannot read {cfg.path}: {one_line_error(err)}") from None
    if info["type"] == "directory":
        files = _directory_files(fs, root, cfg.path)
        formats = {format_of(f) for f in files}
        if len(formats) > 1:
            raise CorpusError(
                f"mixed formats in {cfg.path}: {sorted(formats)}; keep one per directory"
            )
        fmt = formats.pop()
    else:
        files = [root]
        fmt = format_of(root) if cfg.format == "auto" else cfg.format
        if fmt is None:
            raise CorpusError(
                f"unknown format of {cfg.path}: name it .jsonl or .parquet, or set corpus.format"
            )
    if cfg.format != "auto" and fmt != cfg.format:
        raise CorpusError(f"corpus.format is {cfg.format} but {cfg.path} holds {fmt} files")
    return CorpusSource(cfg.path, [fs.unstrip_protocol(f) for f in files], fmt)


def _directory_files(fs: Any, root: str, uri: str) -> list[str]:
    paths = {posixpath.basename(p.rstrip("/")): p for p in fs.ls(root, detail=False)}
    markers = [
        n for n in paths if n.endswith(MARKER_SUFFIX) or n == MANIFEST or n.startswith(".tmp-")
    ]
    if markers and SUCCESS not in paths:
        raise CorpusError(
            f"incomplete corpus {uri} (no _SUCCESS): its writer did not finish; rerun it"
        )
    if SUCCESS in paths and MANIFEST in paths:  # our own output: exactly the shards it lists
        with fs.open(paths[MANIFEST], "r") as fh:
            return [posixpath.join(root, s["path"]) for s in json.load(fh)["shards"]]
    files = sorted(
        p
        for n, p in paths.items()
        if not n.startswith((".", "_")) and not n.endswith(MARKER_SUFFIX) and format_of(n)
    )
    if not files:
        raise CorpusError(f"empty corpus: no .jsonl or .parquet files in {uri}")
    return files


def iter_raw_rows(file_uri: str, fmt: str) -> Iterator[RawRow]:
    fs, path = filesystem(file_uri)
    name = posixpath.basename(path)
    if fmt == "jsonl":
        with fs.open(path, "rb", compression="infer") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():  # blank lines separate nothing and are not rows
                    yield RawRow(f"{name}:{lineno}", line.rstrip(b"\r\n"))
    else:
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as fh:
            rowno = 0
            for batch in pq.ParquetFile(fh).iter_batches(batch_size=4096):
                for row in batch.to_pylist():
                    rowno += 1
                    yield RawRow(f"{name}:{rowno}", row)
