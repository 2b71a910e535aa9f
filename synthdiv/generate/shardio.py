"""Document shards in the corpus layout ({id, text, meta}): JSONL or Parquet, through
:class:`synthdiv.shards.ShardedOutput` so every shard is atomic and marked when complete."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pyarrow.parquet as pq

from synthdiv.corpus.format import encode_shard
from synthdiv.shards import ShardedOutput

Doc = dict[str, Any]


def docs_writer(docs: list[Doc], fmt: str) -> Callable[[Any], None]:
    """A ``writer(file)`` for :meth:`ShardedOutput.write`, in the corpus shard format."""
    return lambda fh: fh.write(encode_shard(docs, fmt))


def read_shard(out: ShardedOutput, index: int) -> list[Doc]:
    with out.fs.open(out.shard_path(index), "rb") as fh:
        data = fh.read()
    if out.ext == "jsonl":
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]
    table = pq.read_table(io.BytesIO(data))
    return [
        {"id": i, "text": t, "meta": json.loads(m) if m else {}}
        for i, t, m in zip(
            *(table.column(c).to_pylist() for c in ("id", "text", "meta")), strict=True
        )
    ]


def read_all(out: ShardedOutput) -> list[Doc]:
    """Every finished shard's documents, in shard order."""
    docs: list[Doc] = []
    for index in sorted(out.done_indices()):
        docs.extend(read_shard(out, index))
    return docs
