"""Training checkpoints: everything needed to continue bit-for-bit, and proof they are complete.

A checkpoint is a directory ``step_<8 digits>`` in the Ray Train run directory (local or S3)
holding ``state.pt`` (model, optimizer, scheduler, RNG, data position) and ``_COMPLETE`` — written
last, recording the step and the SHA-256 of ``state.pt``. Ray may upload files in any order, so a
checkpoint counts as complete only when its marker exists *and* the state file matches the
recorded hash. Resume picks the newest complete checkpoint; torn ones are skipped, never loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthdiv.errors import SynthdivError
from synthdiv.shards import filesystem

STATE_FILE = "state.pt"
MARKER = "_COMPLETE"
_DIR_PATTERN = re.compile(r"^step_(\d{8})$")


class CorruptCheckpointError(SynthdivError, RuntimeError):
    """A checkpoint whose marker is missing or whose state does not match the marker."""


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


def write_local(directory: Path, state: dict[str, Any], step: int) -> None:
    """Write ``state`` then the marker (with the state's hash) into a local directory."""
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    (directory / STATE_FILE).write_bytes(data)
    marker = {"step": step, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (directory / MARKER).write_text(json.dumps(marker))


@dataclass(frozen=True)
class CheckpointRef:
    uri: str
    step: int


def list_checkpoints(run_root: str) -> tuple[list[CheckpointRef], list[str]]:
    """(complete checkpoints oldest → newest, checkpoint dirs skipped because they are torn)."""
    fs, root = filesystem(run_root)
    if not fs.exists(root):
        return [], []
    complete, torn = [], []
    for path in fs.ls(root, detail=False):
        match = _DIR_PATTERN.match(posixpath.basename(path.rstrip("/")))
        if not match:
            continue
        if fs.exists(posixpath.join(path, MARKER)) and fs.exists(posixpath.join(path, STATE_FILE)):
            complete.append(CheckpointRef(_uri_like(run_root, path), int(match.group(1))))
        else:
            torn.append(path)
    return sorted(complete, key=lambda c: c.step), sorted(torn)


def _uri_like(run_root: str, path: str) -> str:
    scheme = run_root.split("://", 1)[0] + "://" if "://" in run_root else ""
    return scheme + path if scheme and not path.startswith(scheme) else path


def load_state(uri: str) -> dict[str, Any]:
    """The checkpoint's state, after checking it against its marker."""
    fs, root = filesystem(uri)
    marker_path = posixpath.join(root, MARKER)
    if not fs.exists(marker_path):
        raise CorruptCheckpointError(f"checkpoint {uri} has no {MARKER} marker (torn write)")
    marker = json.loads(fs.cat_file(marker_path))
    data = fs.cat_file(posixpath.join(root, STATE_FILE))
    if hashlib.sha256(data).hexdigest() != marker["sha256"]:
        raise CorruptCheckpointError(
            f"checkpoint {uri}: {STATE_FILE} does not match its marker (truncated or corrupt)"
        )
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def latest_loadable(run_root: str) -> tuple[CheckpointRef | None, dict[str, Any] | None, list[str]]:
    """The newest checkpoint that loads and verifies, its state, and what was skipped (why)."""
    complete, torn = list_checkpoints(run_root)
    skipped = [f"{p}: no {MARKER}" for p in torn]
    for ref in reversed(complete):
        try:
            return ref, load_state(ref.uri), skipped
        except CorruptCheckpointError as err:
            skipped.append(str(err))
    return None, None, skipped
