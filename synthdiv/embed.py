"""Sentence embeddings of a corpus: Ray Data ``map_batches`` over an actor pool that loads one
sentence-transformers model per actor (CUDA when present, else CPU).

Output is a directory of Parquet shards ``(id, vector)`` written through
:class:`synthdiv.shards.ShardedOutput`: each shard's marker records its content digest and the
embedding settings, so a rerun skips every shard that is already done for the same documents and
model, and re-embeds a shard whose input changed. ``_SUCCESS`` (listing the shards) comes last.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from synthdiv import crash
from synthdiv.config import StrictModel
from synthdiv.corpus import Corpus, digest_documents
from synthdiv.errors import SynthdivError
from synthdiv.models import MINILM_ID, ModelNotFoundError, resolve_embedding_model
from synthdiv.shards import SUCCESS, ShardedOutput, filesystem


class EmbedConfig(StrictModel):
    """How documents become vectors. Defaults suit a CPU laptop; on GPUs set gpus_per_actor=1."""

    model: str | None = Field(
        None, description="sentence-transformers path or hub id; None = packaged all-MiniLM-L6-v2."
    )
    batch_size: int = Field(64, ge=1, description="Documents per encode call.")
    num_actors: int = Field(2, ge=1, description="Actors in the pool; each loads the model once.")
    cpus_per_actor: float = Field(
        0.5, gt=0, description="Fractional on purpose: whole-CPU actors starve Ray's readers."
    )
    gpus_per_actor: float = Field(0.0, ge=0, description="Set 1 on GPU clusters.")
    threads_per_actor: int | None = Field(
        None, ge=1, description="torch threads per CPU actor; None = max(1, int(cpus_per_actor))."
    )
    normalize: bool = Field(True, description="Unit-length vectors (cosine = dot product).")
    max_seq_length: int | None = Field(None, gt=0, description="Truncate longer inputs (tokens).")
    shard_size: int = Field(10_000, ge=1, description="Documents per output shard (resume unit).")


ENGINE = "embed-actor"  # the crash reports' file prefix (synthdiv.crash)


class EmbedError(SynthdivError, RuntimeError):
    """Embeddings that cannot be produced or loaded; the message names the cause."""


@dataclass
class EmbedResult:
    vectors: np.ndarray  # float32, rows aligned with corpus.ids
    shards_written: int
    shards_skipped: int
    docs_embedded: int
    seconds: float

    def metrics(self) -> dict[str, float]:
        rate = self.docs_embedded / self.seconds if self.seconds > 0 else 0.0
        return {
            "embed.shards_written": float(self.shards_written),
            "embed.shards_skipped": float(self.shards_skipped),
            "embed.docs_embedded": float(self.docs_embedded),
            "embed.seconds": self.seconds,
            "embed.docs_per_s": rate,
        }


def resolve_model_path(name: str | None) -> str:
    """The model to load, checked on the driver so a bad path fails before any Ray work."""
    model = resolve_embedding_model(name)
    if model.startswith(("/", "./", "../", "~")) or Path(model).exists():
        if not Path(model).expanduser().exists():
            raise ModelNotFoundError(f"embedding model path does not exist: {model}")
        return str(Path(model).expanduser())
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(model, "config.json"), str):
            raise ModelNotFoundError(
                f"embedding model {model!r} is neither a local path nor in the Hugging Face cache "
                "(HF_HUB_OFFLINE is set)"
            )
    return model


class SentenceEmbedder:
    """Ray Data actor: loads the model once, then encodes batches of ``text``."""

    def __init__(
        self, model: str, normalize: bool, max_seq_length: int | None, batch_size: int, threads: int
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        crash.arm(ENGINE)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu":
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(model, device=device)
        if max_seq_length:
            self.model.max_seq_length = max_seq_length
        self.normalize = normalize
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        crash.maybe_inject(ENGINE)
        vectors = self.model.encode(
            [str(t) for t in batch["text"]],
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return {"shard": batch["shard"], "pos": batch["pos"], "vector": vectors.astype(np.float32)}


@dataclass(frozen=True)
class _Shard:
    index: int
    start: int
    stop: int
    marker: dict[str, Any]  # what a finished shard's marker must say to be reused


def _plan(corpus: Corpus, cfg: EmbedConfig) -> list[_Shard]:
    settings = {
        "model": cfg.model or MINILM_ID,
        "normalize": cfg.normalize,
        "max_seq_length": cfg.max_seq_length,
    }
    shards = []
    for index, start in enumerate(range(0, len(corpus), cfg.shard_size)):
        stop = min(start + cfg.shard_size, len(corpus))
        digest = digest_documents(corpus.ids[start:stop], corpus.texts[start:stop])
        shards.append(
            _Shard(index, start, stop, {"n_docs": stop - start, "digest": digest, **settings})
        )
    return shards


def _is_reusable(out: ShardedOutput, shard: _Shard) -> bool:
    if not out.is_done(shard.index):
        return False
    marker = out.read_marker(shard.index)
    return all(marker.get(k) == v for k, v in shard.marker.items())


def _write_shard(out: ShardedOutput, shard: _Shard, ids: list[str], vectors: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = pa.array(vectors.astype(np.float32).ravel(), pa.float32())
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
        }
    )
    out.write(
        shard.index, lambda fh: pq.write_table(table, fh), {**shard.marker, "dim": vectors.shape[1]}
    )


def _embed_pending(
    corpus: Corpus, cfg: EmbedConfig, model: str, out: ShardedOutput, pending: list[_Shard]
) -> None:
    """Embed the pending shards' documents on the actor pool; write each shard as it fills."""
    import pyarrow as pa
    import ray

    # Longest first within each shard: encode pads a batch to its longest text, so batches of
    # similar lengths waste no compute (plain ``encode`` sorts its whole input the same way).
    # Sorting per shard, not globally, keeps shards finishing (and freeing memory) in order.
    rows = [
        (s.index, i - s.start, i)
        for s in pending
        for i in sorted(range(s.start, s.stop), key=lambda i: -len(corpus.texts[i]))
    ]
    n = len(rows)
    # Several blocks per actor, so the pool shares the work and shards finish progressively.
    block = min(4096, max(cfg.batch_size, math.ceil(n / (cfg.num_actors * 4))))
    tables = [
        pa.table(
            {
                "shard": [r[0] for r in rows[lo : lo + block]],
                "pos": [r[1] for r in rows[lo : lo + block]],
                "text": [corpus.texts[r[2]] for r in rows[lo : lo + block]],
            }
        )
        for lo in range(0, n, block)
    ]
    threads = cfg.threads_per_actor or max(1, int(cfg.cpus_per_actor))
    # Ray Data restarts dead actors forever by default, so a crash that repeats (a native fault)
    # would loop. A dead actor fails the stage instead; a rerun resumes from the finished shards.
    # (Ray 2.60 deprecates extra remote args without offering another way to say this.)
    remote_args: dict[str, Any] = {"num_cpus": cfg.cpus_per_actor, "max_restarts": 0}
    if cfg.gpus_per_actor:
        remote_args["num_gpus"] = cfg.gpus_per_actor
    # from_blocks keeps our blocks and reads their metadata here; from_arrow would spend a remote
    # task (seconds on a cold worker) just to read it
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        embedded = ray.data.from_blocks(tables).map_batches(
            SentenceEmbedder,
            fn_constructor_kwargs={
                "model": model,
                "normalize": cfg.normalize,
                "max_seq_length": cfg.max_seq_length,
                "batch_size": cfg.batch_size,
                "threads": threads,
            },
            batch_size=cfg.batch_size,
            compute=ray.data.ActorPoolStrategy(size=cfg.num_actors),
            **remote_args,
        )
    by_index = {s.index: s for s in pending}
    buffers: dict[int, np.ndarray] = {}
    filled: dict[int, int] = {}
    for batch in embedded.iter_batches(batch_format="numpy", batch_size=None):
        for shard_index in np.unique(batch["shard"]):
            shard = by_index[int(shard_index)]
            sel = batch["shard"] == shard_index
            vectors = batch["vector"][sel]
            buf = buffers.setdefault(
                shard.index, np.empty((shard.stop - shard.start, vectors.shape[1]), np.float32)
            )
            buf[batch["pos"][sel]] = vectors
            filled[shard.index] = filled.get(shard.index, 0) + int(sel.sum())
            if filled[shard.index] == len(buf):
                _write_shard(
                    out, shard, corpus.ids[shard.start : shard.stop], buffers.pop(shard.index)
                )
    if buffers:
        raise EmbedError(f"Ray returned too few vectors for shards {sorted(buffers)}")


def run_embedding(corpus: Corpus, cfg: EmbedConfig, out_uri: str) -> EmbedResult:
    """Embed ``corpus`` into ``out_uri``, skipping shards a previous run finished."""
    model = resolve_model_path(cfg.model)
    if len(corpus) == 0:
        raise EmbedError("empty corpus: nothing to embed")
    import ray

    if not ray.is_initialized():
        raise EmbedError("Ray is not initialised: call inside synthdiv.runtime.ray_session(...)")
    started = time.perf_counter()
    out = ShardedOutput(out_uri, "parquet")
    out.clean_temporaries()
    plan = _plan(corpus, cfg)
    pending = [s for s in plan if not _is_reusable(out, s)]
    if pending:
        if out.complete:  # until every shard is right again, readers must see it as unfinished
            out.fs.rm(posixpath.join(out.root, SUCCESS))
        since = time.time()
        try:
            _embed_pending(corpus, cfg, model, out, pending)
        except Exception as err:  # an actor that died of a signal left a report: name it
            if crash.find_report(ENGINE, since) is None:
                raise
            raise crash.crash_error(
                ENGINE, f"embedding actor ({model})", since=since, cause=str(err).splitlines()[0]
            ) from None
    settings = {k: v for k, v in plan[0].marker.items() if k not in ("n_docs", "digest")}
    out.mark_complete(
        {  # rewritten every time: it lists exactly this corpus's shards
            "n_docs": len(corpus),
            "digest": corpus.digest,
            "shard_size": cfg.shard_size,
            **settings,
            "shards": [posixpath.basename(out.shard_path(s.index)) for s in plan],
        }
    )
    vectors = load_embeddings(out_uri, corpus.ids)
    return EmbedResult(
        vectors=vectors,
        shards_written=len(pending),
        shards_skipped=len(plan) - len(pending),
        docs_embedded=sum(s.stop - s.start for s in pending),
        seconds=time.perf_counter() - started,
    )


def embed_corpus(corpus: Corpus, cfg: EmbedConfig, out_uri: str) -> np.ndarray:
    """float32 vectors, one row per ``corpus.ids`` entry, in that order."""
    return run_embedding(corpus, cfg, out_uri).vectors


def load_embeddings(out_uri: str, ids: list[str]) -> np.ndarray:
    """Vectors for ``ids`` (in that order) from a finished embedding directory."""
    import pyarrow.parquet as pq

    fs, root = filesystem(out_uri)
    success = posixpath.join(root, SUCCESS)
    if not fs.exists(success):
        raise EmbedError(f"incomplete embeddings {out_uri} (no _SUCCESS): rerun the embed stage")
    with fs.open(success, "r") as fh:
        shards = json.load(fh)["shards"]
    id_parts, vector_parts = [], []
    for name in shards:
        with fs.open(posixpath.join(root, name), "rb") as fh:
            table = pq.read_table(fh)
        vectors = table["vector"].combine_chunks()
        dim = vectors.type.list_size
        vector_parts.append(vectors.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim))
        id_parts.extend(table["id"].to_pylist())
    matrix = np.concatenate(vector_parts).astype(np.float32, copy=False)
    row_of = {doc_id: row for row, doc_id in enumerate(id_parts)}
    missing = [i for i in ids if i not in row_of]
    if missing:
        raise EmbedError(f"{len(missing)} ids have no embedding in {out_uri}, e.g. {missing[0]!r}")
    return matrix[[row_of[i] for i in ids]]


class LazyEmbeddings:
    """Embeds ``corpus`` once, on first use, and serves the rows of any corpus built from it,
    keyed by text: a score stage's subsamples, and validate-metrics' copies (new ids, same text)
    reuse the original's vector. Texts a builder made (edited copies, cut documents, canaries) are
    encoded once, on first use, in one batch per call:
    :meth:`expect` queues a repeat's texts so that batch holds all of them. ``local`` encodes in
    this process; otherwise the Ray Data pipeline writes resumable shards under ``out_uri``."""

    def __init__(self, corpus: Corpus, cfg: EmbedConfig, out_uri: str, local: bool = False):
        self.corpus, self.cfg, self.out_uri, self.local = corpus, cfg, out_uri, local
        self._row: dict[str, int] = {}
        self._vectors: np.ndarray | None = None
        self._pending: dict[str, None] = {}

    def expect(self, texts: list[str]) -> None:
        self._pending.update(dict.fromkeys(texts))

    def __call__(self, subset: Corpus) -> np.ndarray:
        if self._vectors is None:
            self._vectors = self._encode(self.corpus, self.out_uri)
            self._row = {text: i for i, text in enumerate(self.corpus.texts)}
        self.expect(subset.texts)
        new = [t for t in self._pending if t not in self._row]
        self._pending = {}
        if new:
            ids = [f"t{len(self._row) + i}" for i in range(len(new))]
            extra = Corpus(ids, new)
            vectors = self._encode(extra, f"{self.out_uri}/built/{extra.digest[:16]}")
            self._row |= {t: len(self._vectors) + i for i, t in enumerate(new)}
            self._vectors = np.concatenate([self._vectors, vectors])
        return self._vectors[[self._row[t] for t in subset.texts]]

    def _encode(self, corpus: Corpus, out_uri: str) -> np.ndarray:
        return (encode_locally if self.local else embed_corpus)(corpus, self.cfg, out_uri)


def encode_locally(corpus: Corpus, cfg: EmbedConfig, out_uri: str | None = None) -> np.ndarray:
    """In-process sentence-transformers encoding with the embed stage's model and settings."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model_path(cfg.model), device="cpu")
    if cfg.max_seq_length:
        model.max_seq_length = cfg.max_seq_length
    vectors = model.encode(
        corpus.texts, batch_size=cfg.batch_size, normalize_embeddings=cfg.normalize,
        convert_to_numpy=True, show_progress_bar=False,
    )  # fmt: skip
    return vectors.astype(np.float32)
