"""Resolve what the user calls a model into something lm-eval can load, or say why it cannot.

A local checkpoint must hold a config, weights and a tokenizer; a missing tokenizer is the common
failure (training loops often save only the model), so it is named with the fix. Remote URIs
(s3://…) are copied once into the local cache, atomically, because transformers reads local dirs.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from synthdiv.errors import SynthdivError
from synthdiv.evaluate.config import ModelConfig
from synthdiv.models import SMOLLM2_ID, ModelNotFoundError, cache_root, smollm2_hf_dir
from synthdiv.shards import filesystem

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")


class CheckpointError(SynthdivError, ValueError):
    """A model directory that cannot be evaluated; the message names the path and the fix."""


@dataclass(frozen=True)
class ResolvedModel:
    path: str  # local dir or hub id
    tokenizer: str | None  # None = lm-eval loads the tokenizer from ``path``
    source: str  # what the config said, for the record


def has_tokenizer(directory: Path) -> bool:
    return any((directory / name).is_file() for name in TOKENIZER_FILES)


def check_checkpoint_dir(directory: Path, tokenizer: str | None) -> None:
    if not (directory / "config.json").is_file():
        raise CheckpointError(f"checkpoint {directory} has no config.json (not a Hugging Face dir)")
    if not any(any(directory.glob(p)) for p in WEIGHT_PATTERNS):
        raise CheckpointError(
            f"checkpoint {directory} has no weights (*.safetensors or pytorch_model*.bin)"
        )
    if tokenizer is None and not has_tokenizer(directory):
        raise CheckpointError(
            f"checkpoint {directory} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
            "save one beside the weights or set model.tokenizer "
            "to the tokenizer it was trained with"
        )


def _looks_local(path: str) -> bool:
    return path.startswith(("/", "./", "../", "~")) or Path(path).exists()


def fetch_remote(uri: str) -> Path:
    """Copy a remote checkpoint dir into the cache once; a killed copy never looks complete."""
    target = cache_root() / "eval-models" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if (target / "_FETCHED").is_file():
        return target
    fs, root = filesystem(uri)
    if not fs.isdir(root):
        raise ModelNotFoundError(f"model path does not exist: {uri}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
    for remote in fs.find(root):
        local = tmp / Path(remote).relative_to(root.rstrip("/"))
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get(remote, str(local))
    (tmp / "_FETCHED").write_text(uri)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def resolve_model(cfg: ModelConfig) -> ResolvedModel:
    tokenizer = cfg.tokenizer
    if tokenizer and _looks_local(tokenizer):
        tok_dir = Path(tokenizer).expanduser()
        if not tok_dir.exists():
            raise ModelNotFoundError(f"tokenizer path does not exist: {tokenizer}")
        tokenizer = str(tok_dir.resolve())
    if cfg.path in ("", SMOLLM2_ID):
        return ResolvedModel(str(smollm2_hf_dir()), tokenizer, cfg.path)
    if "://" in cfg.path:  # any URI, file:// too: fetched through fsspec once, then cached
        local = fetch_remote(cfg.path)
    elif _looks_local(cfg.path):
        local = Path(cfg.path).expanduser()
        if not local.is_dir():
            raise ModelNotFoundError(f"model path does not exist or is not a directory: {cfg.path}")
    else:  # a hub id: lm-eval/transformers resolve it (from the HF cache when offline)
        return ResolvedModel(cfg.path, tokenizer, cfg.path)
    check_checkpoint_dir(local, tokenizer)
    return ResolvedModel(str(local.resolve()), tokenizer, cfg.path)
