"""The corpus contract: documents ``{id, text, meta}``, read with validation and quarantine.

Sources: a JSONL or Parquet file, or a directory of them (plain, or shards written by
:func:`write_corpus` / :class:`synthdiv.shards.ShardedOutput`), on local disk or ``s3://`` (any
fsspec filesystem). Every input row is either a document or a quarantined reject with a reason
code, so ``n_in == n_ok + n_rejected`` always holds. :func:`read_corpus` works in memory without
Ray; :func:`read_corpus_dataset` runs the same validation as a Ray Data pipeline for big inputs.

This module holds :class:`Corpus` and the reading; rows are validated by
:mod:`synthdiv.corpus_format` and written by :mod:`synthdiv.corpus_write`. The names callers
use from those (``CorpusError``, ``REASONS``, ``write_corpus``, …) are importable from here too.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from synthdiv.config import CorpusConfig
from synthdiv.corpus_format import (
    MANIFEST,
    REASONS,
    CorpusError,
    RawRow,
    Reject,
    digest_documents,
    format_of,
    parse_row,
    reject_record,
)
from synthdiv.corpus_write import Quarantine, quarantine_uri, write_corpus
from synthdiv.shards import MARKER_SUFFIX, SUCCESS, filesystem

__all__ = [
    "MANIFEST",
    "REASONS",
    "Corpus",
    "CorpusError",
    "CorpusSource",
    "ValidationReport",
    "digest_documents",
    "example_corpus_path",
    "iter_raw_rows",
    "read_corpus",
    "read_corpus_dataset",
    "resolve_source",
    "write_corpus",
]

log = logging.getLogger(__name__)


def example_corpus_path() -> str:
    """The packaged example: 240 short documents, 20 on each of 12 distinct topics (meta.topic)."""
    return str(resources.files("synthdiv") / "data" / "example_corpus.jsonl")


@dataclass
class Corpus:
    """Validated documents held in memory, in a stable order. ``digest`` is a content hash."""

    ids: list[str]
    texts: list[str]
    metas: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    digest: str = ""

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.texts):
            raise ValueError("ids and texts differ in length")
        if not self.metas:
            self.metas = [{} for _ in self.ids]
        if not self.digest:
            self.digest = digest_documents(self.ids, self.texts)

    def __len__(self) -> int:
        return len(self.texts)

    def sample(self, n: int, seed: int) -> Corpus:
        """``n`` documents drawn without replacement (all of them when ``n >= len``), seeded."""
        if n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return self.take(idx.tolist())

    def take(self, indices: list[int]) -> Corpus:
        return Corpus(
            ids=[self.ids[i] for i in indices],
            texts=[self.texts[i] for i in indices],
            metas=[self.metas[i] for i in indices],
            source=self.source,
        )

    def documents(self) -> Iterator[dict[str, Any]]:
        """The documents as ``{id, text, meta}`` dicts, e.g. for :func:`write_corpus`."""
        for doc_id, text, meta in zip(self.ids, self.texts, self.metas, strict=True):
            yield {"id": doc_id, "text": text, "meta": meta}


@dataclass
class ValidationReport:
    """What happened to every input row. ``n_over_limit``: valid rows past ``limit`` (Ray path)."""

    n_in: int
    n_ok: int
    n_rejected: int
    reasons: dict[str, int]
    quarantine_path: str | None
    n_over_limit: int = 0
    digest: str = ""  # of the valid documents; set by read_corpus_dataset (Corpus has its own)
    examples: list[dict[str, Any]] = field(default_factory=list)  # when nothing is written

    def __post_init__(self) -> None:
        assert self.n_in == self.n_ok + self.n_rejected + self.n_over_limit, self
        assert sum(self.reasons.values()) == self.n_rejected, self

    def metrics(self) -> dict[str, float]:
        out = {
            "corpus.n_in": self.n_in,
            "corpus.n_ok": self.n_ok,
            "corpus.n_rejected": self.n_rejected,
        }
        out.update({f"corpus.rejected.{r}": self.reasons.get(r, 0) for r in REASONS})
        return {k: float(v) for k, v in out.items()}


# -- where the rows are ------------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusSource:
    uri: str
    files: list[str]  # full URIs, in reading order
    fmt: str


def _one_line(err: BaseException) -> str:
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
        raise CorpusError(f"cannot read {cfg.path}: {_one_line(err)}") from None
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


# -- in-memory reading -------------------------------------------------------------------------
def read_corpus(
    cfg: CorpusConfig, quarantine_dir: str | None = None
) -> tuple[Corpus, ValidationReport]:
    """Read and validate ``cfg.path`` into memory. Rejects go to ``cfg.quarantine_path`` or
    ``<quarantine_dir>/quarantine.jsonl``; with neither, the first few are kept in the report."""
    source = resolve_source(cfg)
    quarantine = Quarantine(quarantine_uri(cfg, quarantine_dir))
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict[str, Any]] = []
    seen: set[str] = set()
    reasons: Counter[str] = Counter()
    n_in = 0
    rows = (row for file_uri in source.files for row in iter_raw_rows(file_uri, source.fmt))
    try:
        for row in rows:
            n_in += 1
            try:
                doc = parse_row(row, cfg)
                if doc["id"] in seen:
                    raise Reject("duplicate_id", f"id {doc['id']!r} seen before")
            except Reject as rej:
                reasons[rej.reason] += 1
                quarantine.add(reject_record(row, rej.reason, str(rej)))
                continue
            seen.add(doc["id"])
            ids.append(doc["id"])
            texts.append(doc["text"])
            metas.append(doc["meta"])
            if cfg.limit is not None and len(ids) >= cfg.limit:
                break
    except (OSError, ValueError) as err:
        quarantine.discard()
        raise CorpusError(f"cannot read {source.uri}: {_one_line(err)}") from None
    except BaseException:
        quarantine.discard()
        raise
    quarantine.close()
    report = ValidationReport(
        n_in,
        len(ids),
        sum(reasons.values()),
        dict(reasons),
        quarantine.uri,
        examples=quarantine.examples,
    )
    if reasons:
        log.warning(
            "corpus %s: %d of %d rows rejected %s", cfg.path, report.n_rejected, n_in, dict(reasons)
        )
    if not ids:
        raise CorpusError(
            f"empty corpus: {cfg.path} has no valid documents "
            f"({n_in} rows read, rejected: {dict(reasons) or 'none'})"
        )
    return Corpus(ids, texts, metas, source=cfg.path), report


def read_corpus_dataset(cfg: CorpusConfig, quarantine_dir: str | None = None) -> Any:
    """Ray Data version of :func:`read_corpus` for inputs larger than memory (see
    :mod:`synthdiv.corpus_dataset`)."""
    from synthdiv.corpus_dataset import read_corpus_dataset as read

    return read(cfg, quarantine_dir)
