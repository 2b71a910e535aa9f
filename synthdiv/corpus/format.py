"""What a corpus row is, on disk and in hand: reason codes, the content digest, and the row
codec both directions share — :func:`parse_row` validates one raw row into ``{id, text, meta}``,
:func:`encode_shard` turns documents back into a shard's bytes.

Reading (:mod:`synthdiv.corpus`, :mod:`synthdiv.corpus.dataset`) and writing
(:mod:`synthdiv.corpus.write`) both build on this module; it depends on neither.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

from synthdiv.config import CorpusConfig
from synthdiv.errors import SynthdivError

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
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".jsonl.gz": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class CorpusError(SynthdivError, ValueError):
    """A corpus that cannot be used; the message is one line naming the path and the cause."""


def format_of(name: str) -> str | None:
    """``jsonl`` or ``parquet`` by the file name's extension; None for anything else."""
    lower = name.lower()
    return next((fmt for ext, fmt in _EXTENSIONS.items() if lower.endswith(ext)), None)


class ContentDigest:
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
    digest = ContentDigest()
    for doc_id, text in zip(ids, texts, strict=True):
        digest.add(doc_id, text)
    return digest.hexdigest()


# -- raw rows and their validation -------------------------------------------------------------
@dataclass(frozen=True)
class RawRow:
    location: str  # "<file name>:<1-based line or row>": where to look, and the generated id
    value: bytes | dict[str, Any]  # a JSONL line, or a Parquet row


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


def _utf8(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Reject("not_utf8", str(err)) from None


def _json_object(value: Any) -> dict[str, Any]:
    """The row as a dict: raw bytes are decoded and parsed, anything else must already be one."""
    if isinstance(value, bytes):
        try:
            value = json.loads(_utf8(value))
        except json.JSONDecodeError as err:
            raise Reject("bad_json", str(err)) from None
    if not isinstance(value, dict):
        raise Reject("not_object", f"a JSON {type(value).__name__}, not an object")
    return value


def _text(obj: dict[str, Any], field: str) -> str:
    text = obj.get(field)
    if text is None:
        raise Reject("missing_text", f"no {field!r} field")
    if isinstance(text, bytes):
        text = _utf8(text)
    if not isinstance(text, str):
        raise Reject("wrong_type", f"{field!r} is {type(text).__name__}, not a string")
    return text


def _doc_id(obj: dict[str, Any], field: str, location: str) -> str:
    doc_id = obj.get(field)
    if doc_id is None:
        return location
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        return str(doc_id)
    if not isinstance(doc_id, str) or not doc_id:
        raise Reject("wrong_type", f"{field!r} is {doc_id!r}, not a non-empty string")
    return doc_id


def _meta(obj: dict[str, Any], reserved: set[str]) -> dict[str, Any]:
    """``meta`` plus every unreserved top-level field."""
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
    return {**meta, **{k: v for k, v in obj.items() if k not in reserved}}


def parse_row(row: RawRow, cfg: CorpusConfig) -> dict[str, Any]:
    """A document ``{id, text, meta}``, or :class:`Reject`. Duplicates are checked by callers."""
    obj = _json_object(row.value)
    text = _text(obj, cfg.text_field)
    doc_id = _doc_id(obj, cfg.id_field, row.location)
    meta = _meta(obj, {cfg.text_field, cfg.id_field, "meta"})
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


# -- documents back into shard bytes -----------------------------------------------------------
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
