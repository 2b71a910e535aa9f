"""Pretraining data preparation: the sharded Ray Data pipeline vs tokenizing and packing in one
process, on the same documents and tokenizer (the packaged SmolLM2 one).

    .venv/bin/python benchmarks/bench_pretrain_data.py --docs 20000

The plain side reads the JSONL with ``json``, tokenizes in batches with the fast tokenizer and
packs with numpy: the least work that produces the same kind of rows, all in memory. The pipeline
(``prepare_pretrain_store``) validates and quarantines rows, counts tokens in a first pass,
tokenizes again to pack, groups copies by shard and writes each shard with its marker; Ray is
started before the clock. Both report selected tokens per second.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from synthdiv.config import RuntimeConfig, parse_config
from synthdiv.runtime import ray_session
from synthdiv.train.config import PretrainData
from synthdiv.train.data import load_tokenizer, prepare_pretrain_store
from synthdiv.train.packing import pack


def write_docs(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    words = [
        f"{rng.choice('bcdfglmnprst')}{rng.choice('aeiou')}{rng.choice('nrstl')}{i % 97}"
        for i in range(5000)
    ]
    with path.open("w") as fh:
        for i in range(n):
            text = " ".join(rng.choices(words, k=rng.randint(50, 300)))
            fh.write(json.dumps({"id": f"d{i}", "text": text}) + "\n")


def plain(path: Path, tokenizer, seq_len: int, batch: int) -> tuple[float, int, int]:
    started = time.perf_counter()
    texts = [json.loads(line)["text"] for line in path.open()]
    ids: list[np.ndarray] = []
    for lo in range(0, len(texts), batch):
        encoded = tokenizer(texts[lo : lo + batch], add_special_tokens=False)["input_ids"]
        ids.extend(np.asarray(e, dtype=np.int32) for e in encoded)
    lengths = np.array([len(x) for x in ids])
    rows = pack(np.concatenate(ids), lengths, tokenizer.eos_token_id, seq_len, "uint16")
    return time.perf_counter() - started, int(lengths.sum() + len(lengths)), len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--shard-tokens", type=int, default=1_000_000)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pretrain-data-"))
    corpus = work / "corpus.jsonl"
    write_docs(corpus, args.docs)
    tokenizer = load_tokenizer(None)
    plain_s, plain_tokens, plain_rows = plain(corpus, tokenizer, args.seq_len, args.batch)
    data = parse_config(
        {
            "corpora": [{"corpus": {"path": str(corpus)}, "weight": 1.0}],
            "seq_len": args.seq_len,
            "shard_tokens": args.shard_tokens,
            "tokenize_actors": args.actors,
            "tokenize_batch_size": args.batch,
        },
        PretrainData,
        "bench",
    )
    with ray_session(RuntimeConfig()):
        started = time.perf_counter()
        summary = prepare_pretrain_store(data, tokenizer, 0, str(work / "store"), "bench")
        ray_s = time.perf_counter() - started
    ray_tokens = summary["corpora"][0]["selected_tokens"]
    print(
        f"docs={args.docs} tokens={plain_tokens:,} seq_len={args.seq_len} "
        f"shards={summary['shards']} actors={args.actors} cores={os.cpu_count()}"
    )
    print(
        f"plain, one process : {plain_tokens / plain_s:12,.0f} tokens/s  ({plain_s:.1f} s, "
        f"{plain_rows} rows)"
    )
    print(
        f"sharded pipeline   : {ray_tokens / ray_s:12,.0f} tokens/s  ({ray_s:.1f} s, "
        f"{summary['rows']} rows)"
    )
    print(
        f"ratio pipeline / plain: {(ray_tokens / ray_s) / (plain_tokens / plain_s):.2f} "
        "(the pipeline tokenizes twice: count, then pack)"
    )


if __name__ == "__main__":
    main()
