"""Training checkpoints: sharded per rank, everything needed to continue bit-for-bit, and proof
they are complete.

A checkpoint is a directory ``step_<8 digits>`` in the Ray Train run directory (local or S3),
written in place by every rank through ``torch.distributed.checkpoint`` (DCP): each rank writes
its own ``__<rank>_0.distcp`` (its FSDP shard; under DDP, DCP spreads the replicated tensors over
the ranks), the coordinator writes DCP's ``.metadata`` once all ranks are done, then rank 0 writes
``trainer.pt`` (scheduler, RNG, data position) and ``_COMPLETE`` last, listing every file with its
size. No rank ever holds the whole state in one buffer, and on resume each rank reads only what
its own state needs. A checkpoint counts as complete only when its marker exists *and* every
listed file is there at its recorded size; resume picks the newest complete one, torn ones are
skipped, never loaded.
"""

from __future__ import annotations

import json
import posixpath
import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed.checkpoint as dcp

from synthdiv.errors import SynthdivError
from synthdiv.shards import filesystem, is_remote, local_path

TRAINER_FILE = "trainer.pt"
DCP_METADATA = ".metadata"
MARKER = "_COMPLETE"
_DIR_PATTERN = re.compile(r"^step_(\d{8})$")


class CorruptCheckpointError(SynthdivError, RuntimeError):
    """A checkpoint whose marker is missing or whose files do not match the marker."""


def dir_name(step: int) -> str:
    return f"step_{step:08d}"


def step_of(path: str) -> int:
    """The step of a checkpoint directory ``…/step_<8 digits>``."""
    match = _DIR_PATTERN.match(posixpath.basename(str(path).rstrip("/")))
    if match is None:
        raise ValueError(f"not a checkpoint directory: {path}")
    return int(match.group(1))


def rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def _writer(uri: str) -> Any:
    if is_remote(uri):
        from torch.distributed.checkpoint._fsspec_filesystem import FsspecWriter

        return FsspecWriter(uri)
    return dcp.FileSystemWriter(local_path(uri))


def _reader(uri: str) -> Any:
    if is_remote(uri):
        from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader

        return FsspecReader(uri)
    return dcp.FileSystemReader(uri.removeprefix("file://"))


def save(uri: str, tensors: dict[str, Any], trainer_state: dict[str, Any] | None) -> None:
    """Write one checkpoint (a collective: every rank calls it with its own ``tensors``, e.g.
    ``{"model": …, "optimizer": …}`` sharded state dicts). ``trainer_state`` is given on the
    coordinator (rank 0) only; it writes it, then the marker, after every rank's shard is in."""
    fs, root = filesystem(uri)
    fs.makedirs(root, exist_ok=True)
    dcp.save(tensors, storage_writer=_writer(uri))  # .metadata once every rank has written
    if trainer_state is None:
        return
    with fs.open(posixpath.join(root, TRAINER_FILE), "wb") as fh:
        torch.save(trainer_state, fh)
    files = _sizes(fs, root)
    marker = {"step": trainer_state["step"], "files": files, "bytes": sum(files.values())}
    fs.pipe_file(posixpath.join(root, MARKER), json.dumps(marker).encode())


def _sizes(fs: Any, root: str) -> dict[str, int]:
    fs.invalidate_cache(root)  # S3 listings are cached: other ranks wrote here meanwhile
    return {
        posixpath.basename(e["name"].rstrip("/")): int(e["size"])
        for e in fs.ls(root, detail=True)
        if e["type"] == "file" and posixpath.basename(e["name"]) != MARKER
    }


def verify(uri: str) -> dict[str, Any]:
    """The marker of a complete checkpoint; raises :class:`CorruptCheckpointError` if it is
    missing or a listed file is absent or of another size (a torn or truncated upload)."""
    fs, root = filesystem(uri)
    marker_path = posixpath.join(root, MARKER)
    if not fs.exists(marker_path):
        raise CorruptCheckpointError(f"checkpoint {uri} has no {MARKER} marker (torn write)")
    marker = json.loads(fs.cat_file(marker_path))
    found = _sizes(fs, root)
    wrong = sorted(n for n, size in marker["files"].items() if found.get(n) != size)
    if wrong or DCP_METADATA not in marker["files"]:
        raise CorruptCheckpointError(
            f"checkpoint {uri}: {wrong or [DCP_METADATA]} do not match its marker "
            "(missing, truncated or corrupt)"
        )
    return marker


def load(uri: str, tensors: dict[str, Any]) -> dict[str, Any]:
    """Fill ``tensors`` (this rank's sharded state dicts, as for :func:`save`) in place from a
    verified checkpoint and return its trainer state (a collective)."""
    verify(uri)
    dcp.load(tensors, storage_reader=_reader(uri))
    return read_trainer_state(uri)


def read_trainer_state(uri: str) -> dict[str, Any]:
    fs, root = filesystem(uri)
    with fs.open(posixpath.join(root, TRAINER_FILE), "rb") as fh:
        return torch.load(fh, map_location="cpu", weights_only=False)


def load_model_state(uri: str) -> dict[str, torch.Tensor]:
    """The full model weights of a verified checkpoint, in one process without a process group
    (checkpoint evals, export); the optimizer state is not read."""
    from torch.distributed.checkpoint.default_planner import _EmptyStateDictLoadPlanner
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    verify(uri)
    state: dict[str, Any] = {}
    _load_state_dict(
        state,
        storage_reader=_reader(uri),
        planner=_EmptyStateDictLoadPlanner(keys={"model"}),
        no_dist=True,
    )
    return state["model"]


@dataclass(frozen=True)
class CheckpointRef:
    uri: str
    step: int


def list_checkpoints(run_root: str) -> tuple[list[CheckpointRef], list[str]]:
    """(checkpoints with a marker oldest → newest, checkpoint dirs without one: torn)."""
    fs, root = filesystem(run_root)
    if not fs.exists(root):
        return [], []
    fs.invalidate_cache(root)
    complete, torn = [], []
    for path in fs.ls(root, detail=False):
        match = _DIR_PATTERN.match(posixpath.basename(path.rstrip("/")))
        if not match:
            continue
        if fs.exists(posixpath.join(path, MARKER)):
            complete.append(CheckpointRef(_uri_like(run_root, path), int(match.group(1))))
        else:
            torn.append(path)
    return sorted(complete, key=lambda c: c.step), sorted(torn)


def _uri_like(run_root: str, path: str) -> str:
    scheme = run_root.split("://", 1)[0] + "://" if "://" in run_root else ""
    return scheme + path if scheme and not path.startswith(scheme) else path


def latest_complete(run_root: str) -> tuple[CheckpointRef | None, list[str]]:
    """The newest checkpoint that verifies against its marker, and what was skipped (why)."""
    complete, torn = list_checkpoints(run_root)
    skipped = [f"{p}: no {MARKER}" for p in torn]
    for ref in reversed(complete):
        try:
            verify(ref.uri)
            return ref, skipped
        except CorruptCheckpointError as err:
            skipped.append(str(err))
    return None, skipped
