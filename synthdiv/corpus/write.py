"""Writing corpus files: a corpus as shards + ``manifest.json`` + ``_SUCCESS``
(:func:`write_corpus`), and the quarantine file of rows a reader rejected (:class:`Quarantine`).
Both write under a temp name and rename, so a killed writer never leaves a torn file."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Iterator
from typing import Any

from synthdiv.config import CorpusConfig
from synthdiv.corpus.format import (
    MANIFEST,
    ContentDigest,
    CorpusError,
    digest_documents,
    encode_shard,
)
from synthdiv.shards import SUCCESS, ShardedOutput, filesystem, temp_path

EXAMPLES_KEPT = 20  # rejects kept in memory when there is no quarantine file to write


class Quarantine:
    """Rejected rows streamed as JSONL to a temp name beside ``uri``, renamed into place on
    ``close()`` (removed on ``discard()``); with no ``uri``, the first few are kept in memory.

    Not :func:`synthdiv.shards.open_atomic`: the file stays open across ``add`` calls, and a
    discarded read removes its temp file rather than leaving it for a cleanup."""

    def __init__(self, uri: str | None):
        self.uri = uri
        self.examples: list[dict[str, Any]] = []
        self._fh = None
        if uri:
            self._fs, self._path = filesystem(uri)
            self._fs.makedirs(posixpath.dirname(self._path) or ".", exist_ok=True)
            self._tmp = temp_path(self._path)
            self._fh = self._fs.open(self._tmp, "wb")

    def add(self, record: dict[str, str]) -> None:
        if self._fh is not None:
            self._fh.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        elif len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(record)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self._fs.mv(self._tmp, self._path)

    def discard(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self._fs.rm(self._tmp)


def quarantine_uri(cfg: CorpusConfig, quarantine_dir: str | None) -> str | None:
    if cfg.quarantine_path:
        return cfg.quarantine_path
    return f"{quarantine_dir.rstrip('/')}/quarantine.jsonl" if quarantine_dir else None


# -- corpus shards -----------------------------------------------------------------------------
def _checked(docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for i, doc in enumerate(docs):
        doc_id, text = doc.get("id"), doc.get("text")
        if not isinstance(doc_id, str) or not isinstance(text, str):
            raise CorpusError(f"document {i} needs string 'id' and 'text', got {sorted(doc)}")
        if doc_id in seen:
            raise CorpusError(f"document {i} repeats id {doc_id!r}")
        seen.add(doc_id)
        yield {"id": doc_id, "text": text, "meta": doc.get("meta") or {}}


def _chunks(items: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_corpus(
    docs: Iterable[dict[str, Any]], out_uri: str, shard_size: int = 10_000, fmt: str = "jsonl"
) -> dict[str, Any]:
    """Write documents as shards + ``manifest.json`` + ``_SUCCESS`` (last); returns the manifest.

    A rerun skips shards whose marker records the same content digest, so a killed write resumes.
    """
    if fmt not in ("jsonl", "parquet"):
        raise CorpusError(f"unknown corpus format {fmt!r}: use jsonl or parquet")
    if shard_size < 1:
        raise CorpusError(f"shard_size must be positive, got {shard_size}")
    out = ShardedOutput(out_uri, fmt)
    out.clean_temporaries()
    if out.complete:  # from now until the end, readers must see this directory as unfinished
        out.fs.rm(posixpath.join(out.root, SUCCESS))
    total = ContentDigest()
    shards = []
    for index, chunk in enumerate(_chunks(_checked(docs), shard_size)):
        digest = digest_documents([d["id"] for d in chunk], [d["text"] for d in chunk])
        for d in chunk:
            total.add(d["id"], d["text"])
        if not (out.is_done(index) and out.read_marker(index).get("digest") == digest):
            data = encode_shard(chunk, fmt)
            out.write(
                index,
                lambda fh, data=data: fh.write(data),
                {"n_docs": len(chunk), "digest": digest},
            )
        shards.append({"path": posixpath.basename(out.shard_path(index)), "n_docs": len(chunk)})
    manifest = {"format": fmt, "n_docs": total.n, "digest": total.hexdigest(), "shards": shards}
    out.write_json(MANIFEST, manifest)
    out.mark_complete(manifest)
    return manifest
