"""Pretraining data: read corpora, weight them into a mixture, tokenize and pack shard by shard.

Each corpus contributes ``target_tokens`` (or ``weight`` × its own token count), which is how
synthetic data is "up-weighted to a target of effective tokens" (docs/method.md §4). Two passes over
Ray Data, and the driver only ever holds counts:

1. read + validate each corpus (:func:`synthdiv.corpus.read_corpus_dataset`, rejects
   quarantined) and count its tokens on a tokenizer actor pool (cached in ``counts.json``);
2. per document, the number of copies and each copy's output shard follow from a stable hash
   (:mod:`synthdiv.train.packing`); the actors emit tokenized copies bound for shards not yet
   written, Ray groups them by shard, and each group is packed and written by a Ray task.

A killed prepare resumes: a shard whose marker carries this plan's key is skipped. Rows of all
shards are mixed at training time by the sampler's global permutation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import posixpath
from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np

from synthdiv.errors import SynthdivError
from synthdiv.shards import SUCCESS, filesystem, write_json_atomic
from synthdiv.train.config import CorpusSource, PretrainData
from synthdiv.train.packing import (
    COPY_SCHEMA,
    CountTokens,
    PackPlan,
    TokenizeCopies,
    empty_marker,
    write_group,
)
from synthdiv.train.store import finish_store, shard_output, stable_digest, write_shard

log = logging.getLogger(__name__)
COUNTS = "counts.json"


class TrainDataError(SynthdivError, ValueError):
    """Training data that cannot be used; the message names the path and the cause."""


def load_tokenizer(name: str | None) -> Any:
    """The configured tokenizer; None = the SmolLM2 tokenizer of the packaged model."""
    import os

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


def source_name(source: CorpusSource) -> str:
    return source.name or posixpath.basename(source.corpus.path.rstrip("/")) or source.corpus.path


def prepare_pretrain_store(
    data: PretrainData,
    tokenizer: Any,
    seed: int,
    store_uri: str,
    recipe: str,
    quarantine_dir: str | None = None,
) -> dict[str, Any]:
    """Write the packed mixture to ``store_uri`` (sharded, resumable) and return its summary:
    metadata only, the same dict as ``meta.json`` (logged to MLflow as ``data/mixture.json``)."""
    docs, reports = _read_corpora(data, quarantine_dir)
    tokenizer_id = (tokenizer.name_or_path.rsplit("/", 1)[-1], len(tokenizer))

    natural = _natural_tokens(
        docs, data, tokenizer, store_uri, stable_digest([[r.digest for r in reports], tokenizer_id])
    )
    for src, n in zip(data.corpora, natural, strict=True):
        if n == 0:
            raise TrainDataError(f"dataset {src.corpus.path} has no tokens")
    targets = [
        src.target_tokens or max(1, round(src.weight * n))
        for src, n in zip(data.corpora, natural, strict=True)
    ]
    n_shards = max(1, math.ceil(sum(targets) / data.shard_tokens))
    key = stable_digest(
        [
            recipe,
            seed,
            data.seq_len,
            [r.digest for r in reports],
            natural,
            targets,
            n_shards,
            tokenizer_id,
        ]
    )  # all that decides the shards' bytes
    plan = PackPlan(
        store_uri=store_uri,
        key=key,
        seed=seed,
        seq_len=data.seq_len,
        eos_id=tokenizer.eos_token_id,
        dtype="uint16" if len(tokenizer) <= 2**16 else "uint32",
        n_shards=n_shards,
        ratios=tuple(t / n for t, n in zip(targets, natural, strict=True)),
        labels=tuple(source_name(src) for src in data.corpora),
        pending=frozenset(),
    )
    out = shard_output(store_uri)
    out.clean_temporaries()  # torn writes of a killed run
    markers = {
        i: m
        for i in out.done_indices()
        if i < n_shards and (m := out.read_marker(i)).get("key") == key
    }
    plan = replace(plan, pending=frozenset(range(n_shards)) - set(markers))
    log.info(
        "pretrain data: %s; plan: %d shards (%d to write), ratios %s",
        data.model_dump_json(),
        n_shards,
        len(plan.pending),
        plan.ratios,
    )
    if plan.pending:
        if out.complete:  # until every shard is right again, readers must see it as unfinished
            out.fs.rm(posixpath.join(out.root, SUCCESS))
        run = _pack_with_ray if data.tokenize_with_ray else _pack_here
        markers.update(run(docs, plan, data, tokenizer))
        for shard in plan.pending - set(markers):  # no copy hashed there: tiny corpora only
            markers[shard] = empty_marker(plan)
            write_shard(
                store_uri,
                shard,
                {"input_ids": np.empty((0, data.seq_len), plan.dtype)},
                markers[shard],
            )

    summary = _summary(data, reports, natural, targets, [markers[i] for i in range(n_shards)])
    summary.update(
        digest=mixture_digest(summary, tokenizer),
        vocab_size=len(tokenizer),
        eos_id=tokenizer.eos_token_id,
        bos_id=tokenizer.bos_token_id,
        recipe=recipe,
    )
    if summary["rows"] == 0:
        raise TrainDataError(
            f"the corpora hold fewer tokens than one sequence of seq_len={data.seq_len}"
        )
    finish_store(
        store_uri,
        ["input_ids"],
        [{"index": i, "rows": markers[i]["rows"]} for i in range(n_shards)],
        summary,
        tokenizer,
    )
    return summary


def _read_corpora(data: PretrainData, quarantine_dir: str | None) -> tuple[Any, list[Any]]:
    """All corpora as one Ray dataset of valid documents (``corpus`` column added) and each
    corpus's validation report. Every path is checked before any Ray work."""
    from synthdiv.corpus import read_corpus_dataset

    for src in data.corpora:
        fs, path = filesystem(src.corpus.path)
        if not fs.exists(path):
            raise TrainDataError(f"dataset not found: {src.corpus.path}")
    read = [
        read_corpus_dataset(
            src.corpus, posixpath.join(quarantine_dir, f"corpus{i}") if quarantine_dir else None
        )
        for i, src in enumerate(data.corpora)
    ]
    tagged = [
        ds.map_batches(
            _tag_corpus, fn_kwargs={"corpus": i}, batch_format="pyarrow", batch_size=None
        )
        for i, (ds, _report) in enumerate(read)
    ]
    docs = tagged[0].union(*tagged[1:]) if len(tagged) > 1 else tagged[0]
    return docs, [report for _ds, report in read]


def _tag_corpus(table: Any, corpus: int) -> Any:
    import pyarrow as pa

    return table.append_column("corpus", pa.array(np.full(table.num_rows, corpus, np.int32)))


def _tokenizer_pool(data: PretrainData) -> dict[str, Any]:
    import ray.data

    return {
        "batch_size": data.tokenize_batch_size,
        "num_cpus": data.cpus_per_tokenizer,
        "compute": ray.data.ActorPoolStrategy(size=data.tokenize_actors),
    }


def _natural_tokens(
    docs: Any, data: PretrainData, tokenizer: Any, store_uri: str, cache_key: str
) -> list[int]:
    """Tokens per corpus (EOS included); cached so a resumed prepare does not count again."""
    fs, root = filesystem(store_uri)
    path = posixpath.join(root, COUNTS)
    if fs.exists(path) and (cached := json.loads(fs.cat_file(path))).get("key") == cache_key:
        return cached["natural"]
    totals: Counter[int] = Counter()
    if data.tokenize_with_ray:
        counted = docs.map_batches(
            CountTokens,
            fn_constructor_kwargs={"tokenizer_dir": tokenizer.name_or_path},
            **_tokenizer_pool(data),
        )
        for row in counted.groupby("corpus").sum("tokens").take_all():
            totals[int(row["corpus"])] += int(row["sum(tokens)"])
    else:
        step = CountTokens(tokenizer=tokenizer)
        for batch in docs.iter_batches(batch_size=data.tokenize_batch_size, batch_format="numpy"):
            part = step(batch)
            totals.update(dict(zip(part["corpus"].tolist(), part["tokens"].tolist(), strict=True)))
    natural = [totals[i] for i in range(len(data.corpora))]
    write_json_atomic(posixpath.join(store_uri, COUNTS), {"key": cache_key, "natural": natural})
    return natural


def _pack_with_ray(
    docs: Any, plan: PackPlan, data: PretrainData, tokenizer: Any
) -> dict[int, dict[str, Any]]:
    """Tokenize on the actor pool, group copies by shard, pack + write each in a Ray task; only
    the shards' markers come back to the driver."""
    copies = docs.map_batches(
        TokenizeCopies,
        fn_constructor_kwargs={"plan": plan, "tokenizer_dir": tokenizer.name_or_path},
        **_tokenizer_pool(data),
    )
    written = copies.groupby("shard", num_partitions=len(plan.pending)).map_groups(
        write_group,
        fn_kwargs={"plan": plan},
        batch_format="pyarrow",
        num_cpus=data.cpus_per_tokenizer,
    )
    return {int(r["shard"]): json.loads(r["marker"]) for r in written.take_all()}


def _pack_here(
    docs: Any, plan: PackPlan, data: PretrainData, tokenizer: Any
) -> dict[int, dict[str, Any]]:
    """The same steps in this process, one pending shard at a time: it holds at most one shard's
    tokens, and rereads the documents once per shard (fine for the small corpora it is for)."""
    import pyarrow as pa

    markers = {}
    for shard in sorted(plan.pending):
        step = TokenizeCopies(replace(plan, pending=frozenset({shard})), tokenizer=tokenizer)
        parts = [
            step(b)
            for b in docs.iter_batches(batch_size=data.tokenize_batch_size, batch_format="numpy")
        ]
        table = pa.concat_tables(parts) if parts else COPY_SCHEMA.empty_table()
        if table.num_rows:
            markers[shard] = json.loads(write_group(table, plan)["marker"][0])
    return markers


def _summary(
    data: PretrainData,
    reports: list[Any],
    natural: list[int],
    targets: list[int],
    markers: list[dict[str, Any]],
) -> dict[str, Any]:
    """Per corpus and in total, summed over the shards' markers (exact, not estimated)."""
    by_source: Counter[str] = Counter()
    for marker in markers:
        by_source.update(marker["by_source"])
    corpora = []
    for i, (src, report) in enumerate(zip(data.corpora, reports, strict=True)):
        copies = sum(m["copies"][i] for m in markers)
        corpora.append(
            {
                "name": source_name(src),
                "path": src.corpus.path,
                "digest": report.digest,
                "documents": report.n_ok,
                "rejected": report.n_rejected,
                "natural_tokens": natural[i],
                "target_tokens": targets[i],
                "selected_tokens": sum(m["tokens"][i] for m in markers),
                "repeats": round(copies / report.n_ok, 3),
            }
        )
    rows = sum(m["rows"] for m in markers)
    return {
        "corpora": corpora,
        "seq_len": data.seq_len,
        "rows": rows,
        "tokens": rows * data.seq_len,
        "tokens_by_source": dict(sorted(by_source.items())),
        "shards": len(markers),
        "shard_tokens": data.shard_tokens,
    }


def mixture_digest(summary: dict[str, Any], tokenizer: Any) -> str:
    """What determines the packed data: corpus digests, targets, seq len, tokenizer vocab."""
    key = {
        "corpora": [(c["digest"], c["target_tokens"]) for c in summary["corpora"]],
        "seq_len": summary["seq_len"],
        "tokenizer": (tokenizer.name_or_path.rsplit("/", 1)[-1], len(tokenizer)),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
