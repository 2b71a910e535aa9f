"""The SFT token store: JSONL conversations → packed rows of (input_ids, labels, segments).

Each non-blank line is identified by ``order = file index << 32 | line number`` and sent to
output shard ``hash(order) % n_shards``; within a shard, rows are sorted by ``order`` before
packing, so the bytes written depend neither on Ray's block order nor on the number of actors.
With ``tokenize_with_ray`` (the default) one Ray task per file reads lines, a tokenizer actor pool
encodes them, Ray groups them by shard and a Ray task packs and writes each shard; the driver
only sums the shards' markers. ``tokenize_with_ray: false`` runs the same functions in the driver
process, holding every token at once: for tiny sets and debugging.
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from synthdiv.corpus.format import ContentDigest
from synthdiv.shards import filesystem
from synthdiv.train.config import SftData
from synthdiv.train.packing import _hash64, pack_conversations
from synthdiv.train.sft_data import (
    ChatTemplate,
    encode_row,
    iter_lines,
    pad_id_of,
    parse_line,
    sft_files,
)
from synthdiv.train.store import IGNORE_INDEX, finish_store, write_shard

ARRAYS = ["input_ids", "labels", "segments"]
LINES_PER_BLOCK = 4096
ENCODED_SCHEMA = pa.schema(
    [
        ("shard", pa.int32()),
        ("order", pa.int64()),
        ("input_ids", pa.list_(pa.int32())),
        ("labels", pa.list_(pa.int32())),
        ("reason", pa.string()),  # "" = usable; else why the row was rejected
        ("hash", pa.string()),  # the line's content hash (the dataset digest sums them)
    ]
)


@dataclass(frozen=True)
class SftPlan:
    """What every step needs; plain data, shipped to Ray actors and tasks."""

    store_uri: str
    seq_len: int
    pad_id: int
    pack: bool
    n_shards: int
    template: str  # resolved ChatTemplate kind: chatml | simple
    system_prompt: str | None


def read_file(batch: dict[str, np.ndarray]) -> Any:
    """Ray task: every non-blank line of the batch's files with its ``order``."""
    for file_uri, index in zip(batch["file"], batch["index"], strict=True):
        numbers, lines = [], []
        for number, line in iter_lines(str(file_uri)):
            numbers.append((int(index) << 32) | number)
            lines.append(line)
            if len(lines) == LINES_PER_BLOCK:  # blocks, so one big file feeds every actor
                yield pa.table({"order": pa.array(numbers, pa.int64()), "line": pa.array(lines)})
                numbers, lines = [], []
        if lines:
            yield pa.table({"order": pa.array(numbers, pa.int64()), "line": pa.array(lines)})


class EncodeConversations:
    """One tokenizer per Ray actor (from ``tokenizer_dir``), or a given one in-process."""

    def __init__(self, plan: SftPlan, tokenizer_dir: str | None = None, tokenizer: Any = None):
        if tokenizer is None:
            from transformers import AutoTokenizer

            from synthdiv.train.store import localize

            tokenizer = AutoTokenizer.from_pretrained(str(localize(tokenizer_dir)))
        self.plan = plan
        self.template = ChatTemplate(tokenizer, plan.template)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        plan = self.plan
        cols: dict[str, list[Any]] = {name: [] for name in ENCODED_SCHEMA.names}
        for order, line in zip(batch["order"].tolist(), batch["line"], strict=True):
            try:
                ids, labels = encode_row(
                    parse_line(str(line)), self.template, plan.seq_len, plan.system_prompt
                )
                reason = ""
            except ValueError as err:
                ids, labels, reason = [], [], str(err)
            cols["shard"].append(_hash64(order, "sft") % plan.n_shards)
            cols["order"].append(order)
            cols["input_ids"].append(ids)
            cols["labels"].append(labels)
            cols["reason"].append(reason)
            cols["hash"].append(hashlib.sha256(str(line).encode()).hexdigest()[:32])
        return pa.table(cols, schema=ENCODED_SCHEMA)


def _lists(column: pa.ChunkedArray) -> list[np.ndarray]:
    array = column.combine_chunks()
    values = array.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = array.offsets.to_numpy()
    offsets = offsets - offsets[0]  # a sliced array's offsets point into its parent's values
    return [values[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def pack_shard(table: pa.Table, plan: SftPlan) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One shard's rows (sorted by order, then packed) and its marker."""
    table = table.sort_by("order")
    ok = np.asarray(table["reason"].to_pylist()) == ""
    digest = ContentDigest()
    for h in table["hash"].to_pylist():
        digest.merge(int(h, 16), 1)
    rejected = [
        {"row": o & 0xFFFFFFFF, "file": o >> 32, "reason": r}
        for o, r in zip(table["order"].to_pylist(), table["reason"].to_pylist(), strict=True)
        if r
    ]
    usable = table.filter(pa.array(ok))
    arrays = pack_conversations(
        _lists(usable["input_ids"]), _lists(usable["labels"]), plan.seq_len, plan.pad_id, plan.pack
    )
    arrays = {name: a.astype(np.int32) for name, a in arrays.items()}
    marker = {
        "rows": len(arrays["input_ids"]),
        "conversations": usable.num_rows,
        "tokens": int((arrays["segments"] > 0).sum()),
        "assistant_tokens": int((arrays["labels"] != IGNORE_INDEX).sum()),
        "rejected": rejected,
        "acc": f"{digest.acc:032x}",
        "n": digest.n,
    }
    return arrays, marker


def write_group(table: pa.Table, plan: SftPlan) -> dict[str, list[Any]]:
    """Ray Data ``map_groups`` step: pack one shard, write it, return its marker."""
    shard = int(table["shard"][0].as_py())
    arrays, marker = pack_shard(table, plan)
    write_shard(plan.store_uri, shard, arrays, marker)
    return {"shard": [shard], "marker": [json.dumps(marker)]}


def _with_ray(
    files: list[str], plan: SftPlan, data: SftData, tokenizer_dir: str
) -> dict[int, dict[str, Any]]:
    import ray.data

    listing = ray.data.from_items(
        [{"file": f, "index": i} for i, f in enumerate(files)], override_num_blocks=len(files)
    )
    lines = listing.map_batches(read_file, batch_size=1, batch_format="numpy")
    encoded = lines.map_batches(
        EncodeConversations,
        fn_constructor_kwargs={"plan": plan, "tokenizer_dir": tokenizer_dir},
        batch_size=data.tokenize_batch_size,
        num_cpus=data.cpus_per_tokenizer,
        compute=ray.data.ActorPoolStrategy(size=data.tokenize_actors),
        batch_format="numpy",
    )
    written = encoded.groupby("shard", num_partitions=plan.n_shards).map_groups(
        write_group,
        fn_kwargs={"plan": plan},
        batch_format="pyarrow",
        num_cpus=data.cpus_per_tokenizer,
    )
    return {int(r["shard"]): json.loads(r["marker"]) for r in written.take_all()}


def _here(files: list[str], plan: SftPlan, data: SftData, tokenizer: Any) -> dict[int, Any]:
    import pyarrow.compute as pc

    encode = EncodeConversations(plan, tokenizer=tokenizer)
    parts = []
    for index, file in enumerate(files):
        for lines in read_file({"file": np.array([file]), "index": np.array([index])}):
            for start in range(0, lines.num_rows, data.tokenize_batch_size):
                part = lines.slice(start, data.tokenize_batch_size)
                parts.append(encode({"order": part["order"].to_numpy(), "line": part["line"]}))
    table = pa.concat_tables(parts) if parts else ENCODED_SCHEMA.empty_table()
    out = {}
    for shard in sorted(set(table["shard"].to_pylist())):
        result = write_group(table.filter(pc.equal(table["shard"], shard)), plan)
        out[shard] = json.loads(result["marker"][0])
    return out


def _share_tokenizer(store_uri: str, tokenizer: Any) -> str:
    """The tokenizer under the store, where every node's actors can load it (the base model may
    sit in a driver-local download); ``finish_store`` writes the same files again at the end."""
    fs, root = filesystem(store_uri)
    target = posixpath.join(root, "tokenizer")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        fs.put(tmp.rstrip("/") + "/", target + "/", recursive=True)
    return posixpath.join(store_uri, "tokenizer")


def build_sft_store(
    data: SftData, tokenizer: Any, template: ChatTemplate, store_uri: str
) -> dict[str, Any]:
    """Write the store (shards, tokenizer, ``meta.json``, ``_SUCCESS``) and return its meta
    (the caller adds the recipe key to it before it is written)."""
    files, path = sft_files(data)
    total_bytes = 0
    for file in files:
        fs, local = filesystem(file)
        total_bytes += fs.size(local)
    plan = SftPlan(
        store_uri=store_uri,
        seq_len=data.seq_len,
        pad_id=pad_id_of(tokenizer),
        pack=data.pack,
        n_shards=max(1, math.ceil(total_bytes / data.shard_bytes)),
        template=template.kind,
        system_prompt=data.system_prompt,
    )
    if data.tokenize_with_ray:
        markers = _with_ray(files, plan, data, _share_tokenizer(store_uri, tokenizer))
    else:
        markers = _here(files, plan, data, tokenizer)
    for shard in set(range(plan.n_shards)) - set(markers):  # no line hashed there (tiny sets)
        marker, arrays = _empty(plan)
        markers[shard] = marker
        write_shard(store_uri, shard, arrays, marker)
    return summarize(markers, plan, path)


def _empty(plan: SftPlan) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    marker = {"rows": 0, "conversations": 0, "tokens": 0, "assistant_tokens": 0}
    marker |= {"rejected": [], "acc": "0", "n": 0}
    return marker, {name: np.empty((0, plan.seq_len), np.int32) for name in ARRAYS}


def summarize(markers: dict[int, dict[str, Any]], plan: SftPlan, path: str) -> dict[str, Any]:
    """The store's meta, summed over its shards' markers (exact, not estimated)."""
    ordered = [markers[i] for i in range(plan.n_shards)]
    digest = ContentDigest()
    for m in ordered:
        digest.merge(int(m["acc"], 16), m["n"])
    rows = sum(m["rows"] for m in ordered)
    tokens = sum(m["tokens"] for m in ordered)
    rejected = sorted(
        (r for m in ordered for r in m["rejected"]), key=lambda r: (r["file"], r["row"])
    )
    return {
        "path": path,
        "template": plan.template,
        "pack": plan.pack,
        "seq_len": plan.seq_len,
        "n_in": digest.n,
        "conversations": sum(m["conversations"] for m in ordered),
        "rows": rows,
        "shards": [{"index": i, "rows": m["rows"]} for i, m in enumerate(ordered)],
        "tokens": tokens,
        "assistant_tokens": sum(m["assistant_tokens"] for m in ordered),
        "fill": tokens / (rows * plan.seq_len) if rows else 0.0,  # real / (real + padding)
        "rejected": rejected,
        "digest": digest.hexdigest(),
    }


def finish(uri: str, meta: dict[str, Any], tokenizer: Any) -> None:
    finish_store(uri, ARRAYS, meta["shards"], meta, tokenizer)
