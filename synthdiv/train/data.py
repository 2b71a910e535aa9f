"""Pretraining data: read corpora, tokenize (Ray Data), weight into a mixture, pack with EOS.

Each corpus contributes ``target_tokens`` (or ``weight`` × its own token count) by repeating whole
documents in seeded passes, which is how synthetic data is "up-weighted to a target of effective
tokens" (METHOD.md §4). Documents of all corpora are shuffled together, joined with EOS between
them, and cut into rows of ``seq_len`` tokens (the tail that does not fill a row is dropped).
Attention crosses document boundaries inside a row, as in GPT-2/nanoGPT pretraining.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections import Counter
from typing import Any

import numpy as np

from synthdiv.config import CorpusConfig
from synthdiv.corpus import Corpus
from synthdiv.shards import filesystem
from synthdiv.train.config import CorpusSource, PretrainData


class TrainDataError(ValueError):
    """Training data that cannot be used; the message names the path and the cause."""


def load_tokenizer(name: str | None) -> Any:
    """The configured tokenizer; None = the SmolLM2 tokenizer of the packaged model."""
    from transformers import AutoTokenizer

    if name is None:
        from synthdiv.models import smollm2_hf_dir

        name = str(smollm2_hf_dir())
    elif os.path.exists(name):  # a local dir: absolute, so Ray Data actors find it too
        name = os.path.abspath(name)
    tokenizer = AutoTokenizer.from_pretrained(name)
    if tokenizer.eos_token_id is None:
        raise TrainDataError(f"tokenizer {name} has no EOS token: documents cannot be separated")
    return tokenizer


def read_source(cfg: CorpusConfig, quarantine_dir: str | None = None) -> Corpus:
    """Read one corpus (validated, rejects quarantined), failing early when missing or empty."""
    from synthdiv.corpus import read_corpus

    fs, path = filesystem(cfg.path)
    if not fs.exists(path):
        raise TrainDataError(f"dataset not found: {cfg.path}")
    corpus, _report = read_corpus(cfg, quarantine_dir=quarantine_dir)
    if len(corpus) == 0:
        raise TrainDataError(f"dataset {cfg.path} has no valid documents")
    return corpus


class _Tokenize:
    """Ray Data callable: one tokenizer per actor, batches of texts → token id arrays."""

    def __init__(self, tokenizer_dir: str | None = None, tokenizer: Any = None):
        from transformers import AutoTokenizer

        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(tokenizer_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        encoded = self.tokenizer(list(batch["text"]), add_special_tokens=False)["input_ids"]
        return {"row": batch["row"], "ids": [np.asarray(e, dtype=np.int64) for e in encoded]}


def tokenize_texts(texts: list[str], tokenizer: Any, tokenizer_dir: str, *, use_ray: bool,
                   batch_size: int) -> list[np.ndarray]:
    """Token ids per text, in input order."""
    if not use_ray:
        return _Tokenize(tokenizer=tokenizer)({"row": np.arange(len(texts)), "text": texts})["ids"]
    import ray.data

    ds = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)])
    ds = ds.map_batches(
        _Tokenize, fn_constructor_kwargs={"tokenizer_dir": tokenizer_dir},
        batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.5,
    )
    out: list[np.ndarray | None] = [None] * len(texts)
    for row in ds.iter_rows():
        out[int(row["row"])] = np.asarray(row["ids"], dtype=np.int64)
    return out  # type: ignore[return-value]


def select_documents(lengths: np.ndarray, target_tokens: int, seed: int) -> np.ndarray:
    """Document indices whose lengths (EOS included) add up to ~``target_tokens``.

    Whole seeded passes over the corpus repeat documents when the target exceeds the corpus; the
    last pass stops at the first document that reaches the target."""
    total = int(lengths.sum())
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    remaining = target_tokens
    while remaining > 0:
        order = rng.permutation(len(lengths))
        if remaining >= total:
            chosen.append(order)
            remaining -= total
            continue
        cumulative = np.cumsum(lengths[order])
        cut = int(np.searchsorted(cumulative, remaining)) + 1
        chosen.append(order[:cut])
        remaining = 0
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)


def pack(docs: list[np.ndarray], eos_id: int, seq_len: int) -> np.ndarray:
    """Concatenate documents with EOS after each and cut into rows of ``seq_len``."""
    stream = np.concatenate([np.append(d, eos_id) for d in docs]) if docs else np.empty(0)
    n_rows = len(stream) // seq_len
    dtype = np.uint32 if eos_id >= 2**16 or (len(stream) and stream.max() >= 2**16) else np.uint16
    return stream[: n_rows * seq_len].reshape(n_rows, seq_len).astype(dtype)


def source_name(source: CorpusSource) -> str:
    return source.name or posixpath.basename(source.corpus.path.rstrip("/")) or source.corpus.path


def build_pretrain_arrays(data: PretrainData, tokenizer: Any, tokenizer_dir: str, seed: int,
                          quarantine_dir: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The packed ``input_ids`` array and a summary (per-corpus tokens, digests) for MLflow."""
    corpora = [  # all read (and checked) before any tokenizing
        read_source(src.corpus, posixpath.join(quarantine_dir, f"corpus{i}") if quarantine_dir
                    else None) for i, src in enumerate(data.corpora)
    ]
    selected: list[np.ndarray] = []
    summary: dict[str, Any] = {"corpora": [], "seq_len": data.seq_len}
    by_source: Counter[str] = Counter()
    for index, (src, corpus) in enumerate(zip(data.corpora, corpora)):
        tokens = tokenize_texts(corpus.texts, tokenizer, tokenizer_dir,
                                use_ray=data.tokenize_with_ray,
                                batch_size=data.tokenize_batch_size)
        lengths = np.array([len(t) + 1 for t in tokens])
        natural = int(lengths.sum())
        target = src.target_tokens or max(1, round(src.weight * natural))
        picks = select_documents(lengths, target, seed + index)
        selected.extend(tokens[i] for i in picks)
        for i in picks:  # a mixture directory labels each document's origin in meta.source
            by_source[str(corpus.metas[i].get("source", source_name(src)))] += int(lengths[i])
        summary["corpora"].append({
            "name": source_name(src), "path": src.corpus.path, "digest": corpus.digest,
            "documents": len(corpus), "natural_tokens": natural, "target_tokens": target,
            "selected_tokens": int(lengths[picks].sum()), "repeats": round(len(picks) / len(corpus), 3),
        })
    order = np.random.default_rng(seed).permutation(len(selected))
    input_ids = pack([selected[i] for i in order], tokenizer.eos_token_id, data.seq_len)
    if len(input_ids) == 0:
        raise TrainDataError(
            f"the corpora hold fewer tokens than one sequence of seq_len={data.seq_len}"
        )
    summary.update(rows=len(input_ids), tokens=int(input_ids.size),
                   tokens_by_source=dict(by_source), digest=mixture_digest(summary, tokenizer))
    return input_ids, summary


def mixture_digest(summary: dict[str, Any], tokenizer: Any) -> str:
    """What determines the packed data: corpus digests, targets, seq len, tokenizer vocab."""
    key = {
        "corpora": [(c["digest"], c["target_tokens"]) for c in summary["corpora"]],
        "seq_len": summary["seq_len"],
        "tokenizer": (tokenizer.name_or_path.rsplit("/", 1)[-1], len(tokenizer)),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
