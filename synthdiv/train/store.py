"""Token stores on local disk or S3, and the deterministic order workers read their rows in.

A token store is a directory of sharded arrays: ``<array>-<index:05d>.npy`` (``input_ids``, plus
``labels`` for SFT), each written atomically with a ``.done`` marker (:class:`ShardedOutput`),
then ``meta.json``, the tokenizer under ``tokenizer/`` and ``_SUCCESS`` last, which lists the
arrays and every shard's row count. Pretraining writes many shards from Ray workers; SFT writes
one. Both are read by :func:`load_arrays`: a global row maps to (shard, offset) through the
counts in ``_SUCCESS``; a remote store's shard is downloaded only when a worker first reads one of
its rows, so step 0 waits for the shards of one batch, not for the whole store. The sampler maps
(step, rank, micro batch) to global rows with a seeded permutation per epoch, so the data position
is just the step counter: resuming at step s replays exactly what an uninterrupted run would have
read.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import posixpath
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from synthdiv.shards import SUCCESS, ShardedOutput, filesystem, is_remote

IGNORE_INDEX = -100  # labels that carry no loss (padding, prompts); the HF loss skips them
MAX_OPEN_SHARDS = 64  # each memory map holds a file descriptor; a store may have thousands


def stable_digest(obj: Any) -> str:
    """Content hash of JSON-able data (configs, parsed rows)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _is_local(uri: str) -> bool:
    return not is_remote(uri)


def shard_name(array: str, index: int) -> str:
    """The file name :class:`ShardedOutput` gives shard ``index`` of ``array``."""
    return f"{array}-{index:05d}.npy"


def shard_output(uri: str, array: str = "input_ids") -> ShardedOutput:
    return ShardedOutput(uri, "npy", prefix=array)


def write_shard(
    uri: str, index: int, arrays: dict[str, np.ndarray], marker: dict[str, Any]
) -> None:
    """Shard ``index`` of every array (temp name, rename, then its marker with ``marker``)."""
    for name, array in arrays.items():
        buf = io.BytesIO()
        np.save(buf, array)
        shard_output(uri, name).write(index, lambda fh, b=buf: fh.write(b.getvalue()), marker)


def finish_store(
    uri: str, arrays: list[str], shards: list[dict[str, int]], meta: dict[str, Any], tokenizer: Any
) -> None:
    """Tokenizer, ``meta.json``, then ``_SUCCESS`` listing ``shards`` ({index, rows}) last."""
    fs, root = filesystem(uri)
    with tempfile.TemporaryDirectory() as tok_dir:
        tokenizer.save_pretrained(tok_dir)
        fs.put(tok_dir.rstrip("/") + "/", posixpath.join(root, "tokenizer") + "/", recursive=True)
    with fs.open(posixpath.join(root, "meta.json"), "w") as fh:
        fh.write(json.dumps(meta, indent=2))
    listing = {
        "arrays": arrays,
        "rows": sum(s["rows"] for s in shards),
        "shards": shards,
        "build": uuid.uuid4().hex,
    }  # names the cache of a download: a rebuild is new
    with fs.open(posixpath.join(root, SUCCESS), "w") as fh:
        fh.write(json.dumps(listing))


def write_store(
    uri: str, arrays: dict[str, np.ndarray], meta: dict[str, Any], tokenizer: Any
) -> None:
    """A one-shard store (SFT): same layout and reader as pretraining's sharded one."""
    rows = int(next(iter(arrays.values())).shape[0])
    write_shard(uri, 0, arrays, {"rows": rows})
    finish_store(uri, list(arrays), [{"index": 0, "rows": rows}], meta, tokenizer)


def store_complete(uri: str) -> bool:
    fs, root = filesystem(uri)
    return fs.exists(posixpath.join(root, SUCCESS))


def read_meta(uri: str) -> dict[str, Any]:
    fs, root = filesystem(uri)
    with fs.open(posixpath.join(root, "meta.json"), "r") as fh:
        return json.loads(fh.read())


def read_listing(uri: str) -> dict[str, Any]:
    """``_SUCCESS`` of a finished store: arrays, total rows and each shard's rows."""
    if not store_complete(uri):
        raise FileNotFoundError(f"token store {uri} is missing or incomplete (no {SUCCESS})")
    fs, root = filesystem(uri)
    listing = json.loads(fs.cat_file(posixpath.join(root, SUCCESS)))
    if "shards" not in listing:
        raise FileNotFoundError(f"token store {uri} predates sharded stores; delete it to rebuild")
    return listing


def reuse_or_build(uri: str, recipe: str, build: Any) -> dict[str, Any]:
    """The store's meta, building it first with ``build()`` unless a complete store made from the
    same ``recipe`` (a digest of the data config) is there. A store from another recipe is an
    error, not a silent reuse: the job id then names two different datasets."""
    if not store_complete(uri):
        build()
    meta = read_meta(uri)
    if meta.get("recipe") != recipe:
        raise ValueError(
            f"token store {uri} was built from a different data config; use a new job id "
            "(runtime.job_id / --job-id) or delete that directory"
        )
    return meta


class ShardedRows:
    """The rows of one array across its shards, indexed like one (n_rows, seq_len) array.

    Shards are memory-mapped on first use and kept in a small LRU, so a store with thousands of
    shards neither opens them all nor reads any into memory. ``path_of(i)`` gives shard i's local
    file (and downloads it first, for a remote store)."""

    def __init__(self, path_of: Callable[[int], Path], counts: list[int]):
        self.path_of = path_of
        self.starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        self._open: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return int(self.starts[-1])

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shard, offset) of each global row. ``side='right'`` skips empty shards."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows outside 0..{len(self) - 1}")
        shard = np.searchsorted(self.starts, rows, side="right") - 1
        return shard, rows - self.starts[shard]

    def shard(self, index: int) -> np.ndarray:
        if index in self._open:
            self._open.move_to_end(index)
        else:
            self._open[index] = np.load(self.path_of(index), mmap_mode="r")
            if len(self._open) > MAX_OPEN_SHARDS:
                self._open.popitem(last=False)
        return self._open[index]

    def __getitem__(self, rows: Any) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):
            return self[np.array([rows])][0]
        if isinstance(rows, slice):
            rows = np.arange(len(self))[rows]
        shard, offset = self.locate(rows)
        if shard.size == 0:
            return self.shard(0)[:0]
        parts = {int(s): self.shard(int(s))[offset[shard == s]] for s in np.unique(shard)}
        first = next(iter(parts.values()))
        out = np.empty((len(shard), *first.shape[1:]), first.dtype)
        for s, part in parts.items():
            out[shard == s] = part
        return out

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.asarray(self[np.arange(len(self))], dtype=dtype)


def load_arrays(uri: str, cache_dir: str | None = None) -> dict[str, ShardedRows]:
    """The store's arrays by name. Local shards are memory-mapped in place; a remote shard is
    downloaded into ``cache_dir`` (default: a per-store dir under ``~/.cache/synthdiv``) when a
    row of it is first read, once per node, and memory-mapped from there."""
    listing = read_listing(uri)
    counts = [s["rows"] for s in listing["shards"]]
    indices = [s["index"] for s in listing["shards"]]
    if _is_local(uri):
        root = Path(uri.removeprefix("file://"))
        return {
            name: ShardedRows(lambda i, n=name: root / shard_name(n, indices[i]), counts)
            for name in listing["arrays"]
        }
    cache = _ShardCache(uri, listing, cache_dir)
    return {
        name: ShardedRows(lambda i, n=name: cache.get(shard_name(n, indices[i])), counts)
        for name in listing["arrays"]
    }


class _ShardCache:
    """Shards of a remote store, each downloaded on first use into a node-local directory."""

    def __init__(self, uri: str, listing: dict[str, Any], cache_dir: str | None):
        from synthdiv.models import cache_root

        self.local = (
            Path(cache_dir)
            if cache_dir
            else cache_root() / "token-stores" / stable_digest([uri, listing])[:16]
        )
        self.local.mkdir(parents=True, exist_ok=True)
        self.fs, self.root = filesystem(uri)

    def get(self, name: str) -> Path:
        target = self.local / name
        if target.exists():  # renamed into place only when complete
            return target
        with open(self.local / f".lock-{name}", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # workers on one node download each shard once
            if not target.exists():
                tmp = self.local / f".tmp-{name}"
                self.fs.get(posixpath.join(self.root, name), str(tmp))
                os.replace(tmp, target)
        return target


def localize(uri: str, cache_dir: str | None = None) -> Path:
    """A local directory with the contents of ``uri`` (downloaded once if it is remote)."""
    if _is_local(uri):
        path = Path(uri.removeprefix("file://"))
        if not path.exists():
            raise FileNotFoundError(f"not found: {uri}")
        return path
    fs, root = filesystem(uri)
    if not fs.exists(root):
        raise FileNotFoundError(f"not found: {uri}")
    local = Path(cache_dir or tempfile.mkdtemp(prefix="synthdiv-dl-"))
    fs.get(root.rstrip("/") + "/", str(local) + "/", recursive=True)
    return local


class BatchSampler:
    """Which rows worker ``rank`` reads for micro batch ``micro`` of optimizer step ``step``.

    Global sample g = step·B + rank·(B/W) + micro·m + j; epoch = g // n; row = perm_epoch[g % n].
    Every worker reads a disjoint slice of each global batch, and the order depends only on
    (seed, n), never on the number of restarts. The permutation over all rows is what mixes
    corpora and shards: packing keeps each shard's rows together.
    """

    def __init__(
        self, n_rows: int, global_batch: int, micro_batch: int, world: int, rank: int, seed: int
    ):
        if n_rows < 1:
            raise ValueError("the token store has no rows: the corpus is shorter than one sequence")
        self.n_rows, self.global_batch, self.micro = n_rows, global_batch, micro_batch
        self.per_rank = global_batch // world
        self.rank, self.seed = rank, seed

    @property
    def accumulation_steps(self) -> int:
        return self.per_rank // self.micro

    def rows(self, step: int, micro: int) -> np.ndarray:
        start = step * self.global_batch + self.rank * self.per_rank + micro * self.micro
        g = np.arange(start, start + self.micro)
        epochs, offsets = np.divmod(g, self.n_rows)
        return np.array([self._perm(int(e))[o] for e, o in zip(epochs, offsets, strict=True)])

    def _perm(self, epoch: int) -> np.ndarray:
        return _permutation(self.n_rows, self.seed, epoch)


@lru_cache(maxsize=4)
def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)
