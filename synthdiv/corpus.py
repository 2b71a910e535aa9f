"""The corpus contract: documents ``{id, text, meta}``, read with validation and quarantine.

Sources: a JSONL or Parquet file, or a directory of them (plain, or shards written by
:func:`write_corpus` / :class:`synthdiv.shards.ShardedOutput`), on local disk or ``s3://`` (any
fsspec filesystem). Every input row is either a document or a quarantined reject with a reason
code, so ``n_in == n_ok + n_rejected`` always holds. :func:`read_corpus` works in memory without
Ray; :func:`read_corpus_dataset` runs the same validation as a Ray Data pipeline for big inputs.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from synthdiv.config import CorpusConfig
from synthdiv.shards import MARKER_SUFFIX, SUCCESS, ShardedOutput, filesystem

log = logging.getLogger(__name__)

REASONS = (
    "bad_json",
    "not_utf8",
    "not_object",
    "missing_text",
    "wrong_type",
    "empty_text",
    "too_long",
    "duplicate_id",
)
MANIFEST = "manifest.json"
RAW_CHARS = 1000  # raw rows are truncated to this in the quarantine file
EXAMPLES_KEPT = 20  # rejects kept in memory when there is no quarantine file to write
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".jsonl.gz": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def example_corpus_path() -> str:
    """The packaged example: 240 short documents, 20 on each of 12 distinct topics (meta.topic)."""
    return str(resources.files("synthdiv") / "data" / "example_corpus.jsonl")


class CorpusError(ValueError):
    """A corpus that cannot be used; the message is one line naming the path and the cause."""


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
        for doc_id, text, meta in zip(self.ids, self.texts, self.metas):
            yield {"id": doc_id, "text": text, "meta": meta}


class _Digest:
    """Order-independent content hash: a sum (mod 2^128) of per-document hashes, then the count.

    A sum, unlike XOR, does not cancel repeated documents; mixing in the count separates corpora
    whose sums happen to agree."""

    def __init__(self) -> None:
        self.acc = 0
        self.n = 0

    def add(self, doc_id: str, text: str) -> None:
        blob = (
            doc_id.encode("utf-8", "surrogatepass") + b"\0" + text.encode("utf-8", "surrogatepass")
        )
        self.acc = (self.acc + int.from_bytes(hashlib.sha256(blob).digest()[:16], "big")) % 2**128
        self.n += 1

    def merge(self, acc: int, n: int) -> None:
        self.acc = (self.acc + acc) % 2**128
        self.n += n

    def hexdigest(self) -> str:
        return hashlib.sha256(f"{self.n}:{self.acc:032x}".encode()).hexdigest()[:32]


def digest_documents(ids: list[str], texts: list[str]) -> str:
    """Order-independent content hash of (id, text) pairs: reading shards in another order, or
    on another machine, gives the same digest."""
    digest = _Digest()
    for doc_id, text in zip(ids, texts):
        digest.add(doc_id, text)
    return digest.hexdigest()


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


def _format_of(name: str) -> str | None:
    lower = name.lower()
    return next((fmt for ext, fmt in _EXTENSIONS.items() if lower.endswith(ext)), None)


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
        formats = {_format_of(f) for f in files}
        if len(formats) > 1:
            raise CorpusError(
                f"mixed formats in {cfg.path}: {sorted(formats)}; keep one per directory"
            )
        fmt = formats.pop()
    else:
        files = [root]
        fmt = _format_of(root) if cfg.format == "auto" else cfg.format
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
        if not n.startswith((".", "_")) and not n.endswith(MARKER_SUFFIX) and _format_of(n)
    )
    if not files:
        raise CorpusError(f"empty corpus: no .jsonl or .parquet files in {uri}")
    return files


# -- raw rows and their validation -------------------------------------------------------------
@dataclass(frozen=True)
class RawRow:
    location: str  # "<file name>:<1-based line or row>": where to look, and the generated id
    value: bytes | dict[str, Any]  # a JSONL line, or a Parquet row


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


class Reject(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")  # lone surrogates (e.g. JSON "\ud800") cannot be encoded
    except UnicodeEncodeError:
        return False
    return True


def parse_row(row: RawRow, cfg: CorpusConfig) -> dict[str, Any]:
    """A document ``{id, text, meta}``, or :class:`Reject`. Duplicates are checked by callers."""
    obj: Any = row.value
    if isinstance(obj, bytes):
        try:
            line = obj.decode("utf-8")
        except UnicodeDecodeError as err:
            raise Reject("not_utf8", str(err)) from None
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise Reject("bad_json", str(err)) from None
    if not isinstance(obj, dict):
        raise Reject("not_object", f"a JSON {type(obj).__name__}, not an object")
    text = obj.get(cfg.text_field)
    if text is None:
        raise Reject("missing_text", f"no {cfg.text_field!r} field")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise Reject("not_utf8", str(err)) from None
    if not isinstance(text, str):
        raise Reject("wrong_type", f"{cfg.text_field!r} is {type(text).__name__}, not a string")
    doc_id = obj.get(cfg.id_field)
    if doc_id is None:
        doc_id = row.location
    elif isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    elif not isinstance(doc_id, str) or not doc_id:
        raise Reject("wrong_type", f"{cfg.id_field!r} is {doc_id!r}, not a non-empty string")
    meta = obj.get("meta")
    if isinstance(meta, str):  # Parquet has no schema-free map: synthdiv writes meta as JSON text
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            pass
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise Reject("wrong_type", f"'meta' is {type(meta).__name__}, not an object")
    reserved = {cfg.text_field, cfg.id_field, "meta"}
    meta = {**meta, **{k: v for k, v in obj.items() if k not in reserved}}
    if not (_is_utf8(text) and _is_utf8(doc_id)):
        raise Reject("not_utf8", "text or id holds unpaired surrogates")
    if not text.strip():
        raise Reject("empty_text", "text is empty or whitespace")
    if len(text) > cfg.max_chars:
        raise Reject("too_long", f"{len(text)} chars > max_chars {cfg.max_chars}")
    return {"id": doc_id, "text": text, "meta": meta}


def reject_record(row: RawRow, reason: str, detail: str) -> dict[str, str]:
    """One quarantine line: reason code, where the row came from, the raw row (truncated)."""
    if isinstance(row.value, bytes):
        raw = row.value[: RAW_CHARS * 4].decode("utf-8", "backslashreplace")
    else:
        raw = json.dumps(row.value, default=str, ensure_ascii=False)
    return {
        "reason": reason,
        "source": row.location,
        "detail": detail[:200],
        "raw": raw[:RAW_CHARS],
    }


class _Quarantine:
    """Rejected rows streamed as JSONL to a temp name beside ``uri``, renamed into place on
    ``close()`` (removed on ``discard()``); with no ``uri``, the first few are kept in memory."""

    def __init__(self, uri: str | None):
        self.uri = uri
        self.examples: list[dict[str, Any]] = []
        self._fh = None
        if uri:
            self._fs, self._path = filesystem(uri)
            self._fs.makedirs(posixpath.dirname(self._path) or ".", exist_ok=True)
            self._tmp = _temp_name(self._path)
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


def _temp_name(path: str) -> str:
    return posixpath.join(
        posixpath.dirname(path), f".tmp-{uuid.uuid4().hex}-{posixpath.basename(path)}"
    )


def _write_atomic(fs: Any, path: str, data: bytes) -> None:
    tmp = _temp_name(path)
    with fs.open(tmp, "wb") as fh:
        fh.write(data)
    fs.mv(tmp, path)


def quarantine_uri(cfg: CorpusConfig, quarantine_dir: str | None) -> str | None:
    if cfg.quarantine_path:
        return cfg.quarantine_path
    return f"{quarantine_dir.rstrip('/')}/quarantine.jsonl" if quarantine_dir else None


# -- in-memory reading -------------------------------------------------------------------------
def read_corpus(
    cfg: CorpusConfig, quarantine_dir: str | None = None
) -> tuple[Corpus, ValidationReport]:
    """Read and validate ``cfg.path`` into memory. Rejects go to ``cfg.quarantine_path`` or
    ``<quarantine_dir>/quarantine.jsonl``; with neither, the first few are kept in the report."""
    source = resolve_source(cfg)
    quarantine = _Quarantine(quarantine_uri(cfg, quarantine_dir))
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


# -- writing -----------------------------------------------------------------------------------
def encode_shard(docs: list[dict[str, Any]], fmt: str) -> bytes:
    """Documents as one shard's bytes. Parquet keeps ``meta`` as JSON text: documents carry
    differently shaped meta, which a fixed Arrow struct cannot hold."""
    if fmt == "jsonl":
        return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": pa.array([d["id"] for d in docs], pa.string()),
            "text": pa.array([d["text"] for d in docs], pa.string()),
            "meta": pa.array(
                [json.dumps(d.get("meta", {}), ensure_ascii=False) for d in docs], pa.string()
            ),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


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
    total = _Digest()
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
    _write_atomic(
        out.fs, posixpath.join(out.root, MANIFEST), json.dumps(manifest, indent=2).encode()
    )
    out.mark_complete(manifest)
    return manifest


def read_corpus_dataset(cfg: CorpusConfig, quarantine_dir: str | None = None) -> Any:
    """Ray Data version of :func:`read_corpus` for inputs larger than memory (see
    :mod:`synthdiv.corpus_dataset`)."""
    from synthdiv.corpus_dataset import read_corpus_dataset as read

    return read(cfg, quarantine_dir)
