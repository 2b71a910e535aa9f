"""The steps of pretraining data preparation, each usable in a Ray Data operator or in-process.

- :func:`copies_of` / :func:`shard_of`: how many copies of a document the mixture takes and which
  output shard each copy goes to. Both are pure functions of (seed, corpus index, document id,
  ratio), so they do not depend on Ray's blocks, actor count or reading order.
- :class:`CountTokens` (first pass) and :class:`TokenizeCopies` (second pass): one tokenizer per
  actor; the second emits one row per copy bound for a shard that is still to be written.
- :func:`pack_shard`: one shard's copies sorted by a stable key, shuffled with a seed keyed by
  the shard index, joined with EOS after each document and cut into rows of ``seq_len``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synthdiv.train.store import IGNORE_INDEX

COPY_SCHEMA = pa.schema(
    [
        ("shard", pa.int32()),
        ("corpus", pa.int32()),
        ("id", pa.string()),
        ("copy", pa.int32()),
        ("source", pa.string()),
        ("tokens", pa.list_(pa.int32())),
    ]
)


@dataclass(frozen=True)
class PackPlan:
    """What every packing step needs; plain data, shipped to Ray actors and tasks."""

    store_uri: str
    key: str  # written into every shard marker; a marker with another key is rewritten
    seed: int
    seq_len: int
    eos_id: int
    dtype: str  # uint16 when the vocab fits, else uint32
    n_shards: int
    ratios: tuple[float, ...]  # per corpus: target / natural tokens
    labels: tuple[str, ...]  # per corpus: the source label of documents without meta.source
    pending: frozenset[int]  # shards still to write


def _hash64(*parts: object) -> int:
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big")


def copies_of(seed: int, corpus: int, doc_id: str, ratio: float) -> int:
    """floor(ratio) copies, plus one with probability frac(ratio) decided by a stable hash: the
    expected tokens taken equal ratio × the corpus's tokens."""
    whole = math.floor(ratio)
    return whole + int(_hash64(seed, corpus, doc_id, "keep") / 2**64 < ratio - whole)


def shard_of(seed: int, corpus: int, doc_id: str, copy: int, n_shards: int) -> int:
    return _hash64(seed, corpus, doc_id, copy, "shard") % n_shards


class _Encoder:
    """One tokenizer per Ray actor (loaded from ``tokenizer_dir``), or a given one in-process."""

    def __init__(self, tokenizer_dir: str | None = None, tokenizer: Any = None):
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        self.tokenizer = tokenizer

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """All token ids concatenated (int32) and each text's length."""
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
        flat = np.fromiter(itertools.chain.from_iterable(encoded), np.int32, int(lengths.sum()))
        return flat, lengths


class CountTokens(_Encoder):
    """First pass: tokens per corpus in a batch, EOS included. Only the counts leave the actor."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        _flat, lengths = self.encode([str(t) for t in batch["text"]])
        corpus = batch["corpus"].astype(np.int64)
        present = np.unique(corpus)
        sums = np.bincount(corpus, weights=lengths + 1)[present]
        return {"corpus": present, "tokens": sums.astype(np.int64)}


class TokenizeCopies(_Encoder):
    """Second pass: one row per copy of a document going to a pending shard (``COPY_SCHEMA``).
    Documents with no such copy are not tokenized."""

    def __init__(self, plan: PackPlan, tokenizer_dir: str | None = None, tokenizer: Any = None):
        super().__init__(tokenizer_dir, tokenizer)
        self.plan = plan

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        plan = self.plan
        docs: list[int] = []  # batch rows with at least one pending copy
        doc_of, shards, copies = [], [], []
        for row, (corpus, doc_id) in enumerate(zip(batch["corpus"], batch["id"], strict=True)):
            corpus, doc_id, first = int(corpus), str(doc_id), True
            for copy in range(copies_of(plan.seed, corpus, doc_id, plan.ratios[corpus])):
                shard = shard_of(plan.seed, corpus, doc_id, copy, plan.n_shards)
                if shard in plan.pending:
                    if first:
                        docs.append(row)
                        first = False
                    doc_of.append(len(docs) - 1)
                    shards.append(shard)
                    copies.append(copy)
        flat, lengths = self.encode([str(batch["text"][r]) for r in docs])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        tokens = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.int32()))
        take = np.asarray(doc_of, dtype=np.int64)
        rows = [docs[i] for i in doc_of]
        return pa.table(
            {
                "shard": pa.array(shards, pa.int32()),
                "corpus": pa.array(batch["corpus"][rows].astype(np.int32)),
                "id": pa.array([str(batch["id"][r]) for r in rows], pa.string()),
                "copy": pa.array(copies, pa.int32()),
                "source": pa.array([self._label(batch, r) for r in rows], pa.string()),
                "tokens": tokens.take(pa.array(take)),
            },
            schema=COPY_SCHEMA,
        )

    def _label(self, batch: dict[str, np.ndarray], row: int) -> str:
        """A mixture directory labels each document's origin in ``meta.source``."""
        meta = str(batch["meta"][row]) if "meta" in batch else ""
        source = json.loads(meta).get("source") if '"source"' in meta else None
        return str(source) if source is not None else self.plan.labels[int(batch["corpus"][row])]


def pack(
    flat: np.ndarray, lengths: np.ndarray, eos_id: int, seq_len: int, dtype: str | np.dtype
) -> np.ndarray:
    """Documents (``flat`` concatenated, ``lengths`` each) with EOS after each, cut into rows of
    ``seq_len``; the tail that does not fill a row is dropped. Attention crosses document
    boundaries inside a row, as in GPT-2/nanoGPT pretraining."""
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64) + 1) - 1
    stream = np.empty(len(flat) + len(lengths), dtype)
    is_eos = np.zeros(len(stream), bool)
    is_eos[ends] = True
    stream[is_eos] = eos_id
    stream[~is_eos] = flat
    n_rows = len(stream) // seq_len
    return stream[: n_rows * seq_len].reshape(n_rows, seq_len)


def pack_shard(table: pa.Table, plan: PackPlan, shard: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Rows of one shard and its marker (key, rows, per-corpus copies and tokens, by source).

    Sorting by (corpus, id, copy) first makes the rows independent of the order Ray delivered
    the copies in; the seeded shuffle then mixes corpora within the shard."""
    table = table.sort_by([("corpus", "ascending"), ("id", "ascending"), ("copy", "ascending")])
    order = np.random.default_rng([plan.seed, shard]).permutation(table.num_rows)
    table = table.take(pa.array(order))
    tokens = table["tokens"].combine_chunks()
    lengths = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    rows = pack(
        tokens.flatten().to_numpy(zero_copy_only=False),
        lengths,
        plan.eos_id,
        plan.seq_len,
        plan.dtype,
    )
    corpus = table["corpus"].to_numpy().astype(np.int64)
    n = len(plan.ratios)
    by_source: Counter[str] = Counter()
    for label, length in zip(table["source"].to_pylist(), lengths.tolist(), strict=True):
        by_source[label] += length + 1
    marker = {
        "key": plan.key,
        "rows": len(rows),
        "copies": np.bincount(corpus, minlength=n).tolist(),
        "tokens": np.bincount(corpus, weights=lengths + 1, minlength=n).astype(np.int64).tolist(),
        "by_source": dict(sorted(by_source.items())),
    }
    return rows, marker


def empty_marker(plan: PackPlan) -> dict[str, Any]:
    """The marker of a shard no copy was assigned to (only with tiny corpora)."""
    n = len(plan.ratios)
    return {"key": plan.key, "rows": 0, "copies": [0] * n, "tokens": [0] * n, "by_source": {}}


def write_group(table: pa.Table, plan: PackPlan) -> dict[str, list[Any]]:
    """Ray Data ``map_groups`` step: pack one shard's copies, write it, return its marker."""
    from synthdiv.train.store import write_shard

    shard = int(table["shard"][0].as_py())
    rows, marker = pack_shard(table, plan, shard)
    write_shard(plan.store_uri, shard, {"input_ids": rows}, marker)
    return {"shard": [shard], "marker": [json.dumps(marker)]}


# --------------------------------------------------------------------------- SFT
# Conversations are packed into rows of seq_len (best fit, longest first) with a ``segments``
# array beside input_ids/labels: 1, 2, … per conversation in the row, 0 for padding. The loop
# turns it into position ids that restart at 0 per conversation, which transformers' mask
# builder reads as packed sequences and answers with a block-diagonal causal mask (sdpa, eager;
# flash-attention's varlen path reads the same position ids): no token attends across a
# conversation boundary, and each conversation sees RoPE positions from 0, as if alone.


def best_fit_bins(lengths: np.ndarray, capacity: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into bins of at most ``capacity``: longest first, each into
    the fullest bin it still fits (best-fit decreasing). Ties go by index, so it is
    deterministic."""
    import bisect

    order = sorted(range(len(lengths)), key=lambda i: (-int(lengths[i]), i))
    free: list[tuple[int, int]] = []  # (remaining capacity, bin), sorted
    bins: list[list[int]] = []
    for i in order:
        need = int(lengths[i])
        at = bisect.bisect_left(free, (need, -1))
        if at == len(free):
            bins.append([i])
            bisect.insort(free, (capacity - need, len(bins) - 1))
            continue
        remaining, b = free.pop(at)
        bins[b].append(i)
        bisect.insort(free, (remaining - need, b))
    return bins


def pack_conversations(
    ids: list[np.ndarray], labels: list[np.ndarray], seq_len: int, pad_id: int, pack: bool = True
) -> dict[str, np.ndarray]:
    """Rows of ``input_ids``, ``labels`` and ``segments`` (int32, 0 = padding).

    ``pack=False`` puts one conversation per row (right-padded), the layout before packing. The
    first token of every conversation carries no label: it is never predicted from the one
    before it in the row."""
    lengths = np.fromiter(map(len, ids), np.int64, len(ids))
    bins = best_fit_bins(lengths, seq_len) if pack else [[i] for i in range(len(ids))]
    shape = (len(bins), seq_len)
    out = {
        "input_ids": np.full(shape, pad_id, np.int64),
        "labels": np.full(shape, IGNORE_INDEX, np.int64),
        "segments": np.zeros(shape, np.int32),
    }
    for row, members in enumerate(bins):
        at = 0
        for segment, i in enumerate(members, start=1):
            end = at + int(lengths[i])
            out["input_ids"][row, at:end] = ids[i]
            out["labels"][row, at:end] = labels[i]
            out["labels"][row, at] = IGNORE_INDEX
            out["segments"][row, at:end] = segment
            at = end
    return out


def segment_positions(segments: np.ndarray) -> np.ndarray:
    """Position ids restarting at 0 where the segment changes (padding counts as one more)."""
    segments = np.asarray(segments)
    index = np.broadcast_to(np.arange(segments.shape[-1]), segments.shape)
    starts = np.ones(segments.shape, bool)
    starts[..., 1:] = segments[..., 1:] != segments[..., :-1]
    first = np.maximum.accumulate(np.where(starts, index, 0), axis=-1)
    return (index - first).astype(np.int64)


def batch_arrays(arrays: dict[str, Any], rows: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
    """The model inputs of ``rows`` (position ids from ``segments`` when the store has them) and
    how many of their tokens are real: padding is neither throughput nor MFU."""
    input_ids = np.asarray(arrays["input_ids"][rows], dtype=np.int64)
    batch = {
        "input_ids": input_ids,
        "labels": np.asarray(arrays["labels"][rows], dtype=np.int64)
        if "labels" in arrays
        else input_ids.copy(),
    }
    if "segments" not in arrays:
        return batch, int(input_ids.size)
    segments = np.asarray(arrays["segments"][rows])
    batch["position_ids"] = segment_positions(segments)
    return batch, int((segments > 0).sum())
