"""Tokens/s of the Ray Train loop vs a plain single-process PyTorch loop, same run.

    .venv/bin/python benchmarks/bench_train.py                 # small: tiny model, 10 steps
    .venv/bin/python benchmarks/bench_train.py --steps 40 --seq-len 256 --threads 2

Both sides train the same tiny Llama on the same packed rows with the same global batch, micro
batch, optimizer and torch threads; Ray Train runs 1 worker (so no extra compute), the plain loop
runs in this process. Reported: median tokens/s over the steps after the first two, and the ratio
(target ≥ 0.8 on CPU). The Ray side's figure is what it logged to MLflow per step, so it includes
the loop's own per-step overheads (loss all-reduce, rank-0 MLflow logging, checkpoint steps).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = "the cat sat on a mat while dogs ran over green hills and rivers flow into seas".split()


def write_corpus(path: Path, n_docs: int) -> None:
    rng = random.Random(0)
    path.write_text(
        "".join(
            json.dumps({"id": f"d{i}", "text": " ".join(rng.choice(WORDS) for _ in range(200))})
            + "\n"
            for i in range(n_docs)
        )
    )


def plain_loop(data_uri: str, model_config: dict, args: argparse.Namespace) -> list[float]:
    import numpy as np
    import torch
    from transformers import LlamaConfig

    from synthdiv.train.config import OptimSpec
    from synthdiv.train.model import build_model
    from synthdiv.train.optim import build_optimizer, build_scheduler
    from synthdiv.train.store import BatchSampler, load_arrays

    torch.set_num_threads(args.threads)
    model = build_model(LlamaConfig.from_dict(model_config), seed=0)
    optimizer = build_optimizer(model.named_parameters(), OptimSpec())
    scheduler = build_scheduler(optimizer, OptimSpec(), args.steps)
    arrays = load_arrays(data_uri)
    sampler = BatchSampler(len(arrays["input_ids"]), args.batch, args.micro, 1, 0, 0)
    rates = []
    for step in range(args.steps):
        began = time.perf_counter()
        for micro in range(sampler.accumulation_steps):
            ids = torch.from_numpy(
                np.asarray(arrays["input_ids"][sampler.rows(step, micro)], dtype=np.int64)
            )
            (model(input_ids=ids, labels=ids).loss / sampler.accumulation_steps).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        rates.append(args.batch * args.seq_len / (time.perf_counter() - began))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--micro", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import ray
    from mlflow.tracking import MlflowClient

    from synthdiv.config import parse_config
    from synthdiv.runtime import WORKER_ENV
    from synthdiv.stage import run_stage
    from synthdiv.train.config import PretrainConfig
    from synthdiv.train.pretrain import PretrainStage

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    write_corpus(work / "corpus.jsonl", 200)
    cfg = parse_config(
        {
            "runtime": {
                "tracking_uri": f"sqlite:///{work}/mlflow.db",
                "storage_uri": str(work / "runs"),
                "experiment": "bench-train",
            },
            "data": {
                "corpora": [{"corpus": {"path": str(work / "corpus.jsonl")}}],
                "seq_len": args.seq_len,
                "tokenize_with_ray": False,
            },
            "model": {"preset": "tiny"},
            "train": {
                "schedule": {
                    "global_batch_size": args.batch,
                    "micro_batch_size": args.micro,
                    "max_steps": args.steps,
                },
                "scale": {
                    "num_workers": 1,
                    "threads_per_worker": args.threads,
                    "cpus_per_worker": args.threads,
                },
                "checkpoint": {"every_steps": args.steps},
            },
        },
        PretrainConfig,
    )
    ray.init(
        num_cpus=8,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {**WORKER_ENV, "OMP_NUM_THREADS": str(args.threads)}},
    )
    try:
        result = run_stage(PretrainStage(cfg))
    finally:
        ray.shutdown()
    history = MlflowClient(cfg.runtime.tracking_uri).get_metric_history(
        result.outputs["mlflow_run_id"], "train/tokens_per_s"
    )
    ray_rates = [m.value for m in sorted(history, key=lambda m: m.step)]
    from synthdiv.train.config import ModelSpec
    from synthdiv.train.model import llama_config
    from synthdiv.train.store import read_meta

    meta = read_meta(result.outputs["data"])
    model_config = llama_config(
        ModelSpec(preset="tiny"), meta["vocab_size"], eos_id=meta["eos_id"]
    ).to_dict()
    plain_rates = plain_loop(result.outputs["data"], model_config, args)
    ray_tps = statistics.median(ray_rates[2:])
    plain_tps = statistics.median(plain_rates[2:])
    print(
        f"settings: tiny preset, seq_len={args.seq_len}, global batch={args.batch}, "
        f"micro={args.micro}, threads={args.threads}, steps={args.steps}, cpu"
    )
    print(f"plain loop : {plain_tps:10,.0f} tokens/s")
    print(f"Ray Train  : {ray_tps:10,.0f} tokens/s (1 worker, incl. per-step MLflow logging)")
    print(f"ratio      : {ray_tps / plain_tps:10.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
