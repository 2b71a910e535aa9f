"""Packed training arrays on local disk or S3, and the deterministic order workers read them in.

A token store is a directory: ``input_ids.npy`` (and ``labels.npy`` for SFT), ``meta.json``, the
tokenizer under ``tokenizer/``, and ``_SUCCESS`` written last. The sampler maps
(step, rank, micro batch) to rows with a seeded permutation per epoch, so the data position is just
the step counter: resuming at step s replays exactly what an uninterrupted run would have read.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from synthdiv.shards import SUCCESS, filesystem

IGNORE_INDEX = -100  # labels that carry no loss (padding, prompts); the HF loss skips them


def stable_digest(obj: Any) -> str:
    """Content hash of JSON-able data (configs, parsed rows)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def write_store(uri: str, arrays: dict[str, np.ndarray], meta: dict[str, Any],
                tokenizer: Any) -> None:
    """Write arrays, meta and tokenizer; ``_SUCCESS`` last so a torn store never looks done."""
    fs, root = filesystem(uri)
    fs.makedirs(root, exist_ok=True)
    for name, array in arrays.items():
        buf = io.BytesIO()
        np.save(buf, array)
        tmp = posixpath.join(root, f".tmp-{name}.npy")
        with fs.open(tmp, "wb") as fh:
            fh.write(buf.getvalue())
        fs.mv(tmp, posixpath.join(root, f"{name}.npy"))
    with tempfile.TemporaryDirectory() as tok_dir:
        tokenizer.save_pretrained(tok_dir)
        fs.put(tok_dir.rstrip("/") + "/", posixpath.join(root, "tokenizer") + "/", recursive=True)
    with fs.open(posixpath.join(root, "meta.json"), "w") as fh:
        fh.write(json.dumps(meta, indent=2))
    with fs.open(posixpath.join(root, SUCCESS), "w") as fh:
        fh.write(json.dumps({"rows": int(next(iter(arrays.values())).shape[0])}))


def store_complete(uri: str) -> bool:
    fs, root = filesystem(uri)
    return fs.exists(posixpath.join(root, SUCCESS))


def read_meta(uri: str) -> dict[str, Any]:
    fs, root = filesystem(uri)
    with fs.open(posixpath.join(root, "meta.json"), "r") as fh:
        return json.loads(fh.read())


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


def load_arrays(uri: str) -> dict[str, np.ndarray]:
    """The store's arrays; memory-mapped when local, read into memory from object storage."""
    if not store_complete(uri):
        raise FileNotFoundError(f"token store {uri} is missing or incomplete (no {SUCCESS})")
    fs, root = filesystem(uri)
    out: dict[str, np.ndarray] = {}
    for name in ("input_ids", "labels"):
        path = posixpath.join(root, f"{name}.npy")
        if not fs.exists(path):
            continue
        if "://" not in uri or uri.startswith("file://"):
            out[name] = np.load(path, mmap_mode="r")
        else:
            with fs.open(path, "rb") as fh:
                out[name] = np.load(io.BytesIO(fh.read()))
    return out


def localize(uri: str, cache_dir: str | None = None) -> Path:
    """A local directory with the contents of ``uri`` (downloaded once if it is remote)."""
    if "://" not in uri or uri.startswith("file://"):
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
    (seed, n), never on the number of restarts.
    """

    def __init__(self, n_rows: int, global_batch: int, micro_batch: int, world: int,
                 rank: int, seed: int):
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
        return np.array([self._perm(int(e))[o] for e, o in zip(epochs, offsets)])

    def _perm(self, epoch: int) -> np.ndarray:
        return _permutation(self.n_rows, self.seed, epoch)


@lru_cache(maxsize=4)
def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)
