"""Required GPU throughput for the paper's models, and MFU measured on this machine's device.

    .venv/bin/python benchmarks/gpu_mfu.py                    # table + a short measurement
    .venv/bin/python benchmarks/gpu_mfu.py --preset 350m --seq-len 2048 --micro-batch 8 --steps 20

FLOPs/token = 6·N + 12·L·H·Q·T (nanoGPT, with the attention term; N excludes an untied input
embedding). Required tokens/s/GPU = MFU × peak ÷ FLOPs/token. The measurement runs forward +
backward + AdamW in bf16 autocast on GPU (fp32 on CPU, against the *nominal* CPU peak).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from synthdiv.train.config import ModelSpec
from synthdiv.train.mfu import PEAK_FLOPS, current_device_name, flops_per_token, mfu, peak_for
from synthdiv.train.model import build_model, count_parameters, llama_config

VOCAB = 49152  # SmolLM2 tokenizer (the paper's CodeGen: ~50.3k; <3% difference in N)


def table(seq_len: int) -> None:
    print(f"Required tokens/s per GPU (seq_len={seq_len}, vocab={VOCAB}, bf16 dense peaks)")
    print(
        f"{'model':6} {'params':>8} {'GFLOP/tok':>10} {'GPU':10} {'peak TF':>8} "
        f"{'@40% tok/s':>11} {'@50% tok/s':>11}"
    )
    for preset in ("350m", "1b"):
        config = llama_config(ModelSpec(preset=preset), VOCAB)
        fpt = flops_per_token(config, seq_len)
        for gpu in ("A100", "H100 SXM", "L40S", "A10G"):
            peak = PEAK_FLOPS[gpu]
            print(
                f"{preset:6} {count_parameters(config) / 1e6:7.0f}M {fpt / 1e9:10.2f} {gpu:10} "
                f"{peak / 1e12:8.0f} {0.4 * peak / fpt:11,.0f} {0.5 * peak / fpt:11,.0f}"
            )
    for preset, tokens, gpus in (("350m", 50e9, 16), ("1b", 150e9, 32)):
        fpt = flops_per_token(llama_config(ModelSpec(preset=preset), VOCAB), seq_len)
        days = tokens / (gpus * 0.45 * PEAK_FLOPS["A100"] / fpt) / 86400
        print(f"{preset}: {tokens / 1e9:.0f}B tokens on {gpus} A100 at 45% MFU = {days:.1f} days")


def measure(preset: str, seq_len: int, micro_batch: int, steps: int, compile_model: bool) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = llama_config(ModelSpec(preset=preset), VOCAB, attention="sdpa")
    model = build_model(config, seed=0).to(device)
    if compile_model:
        model = torch.compile(model)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=3e-4, betas=(0.9, 0.95), fused=device.type == "cuda"
    )
    batch = torch.randint(0, VOCAB, (micro_batch, seq_len), device=device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    times = []
    for _ in range(steps):
        began = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    steady = statistics.median(times[2:] if len(times) > 4 else times)
    tokens_per_s = micro_batch * seq_len / steady
    name, peak = peak_for(current_device_name())
    fpt = flops_per_token(config, seq_len)
    print(
        f"\nmeasured on {current_device_name()} (peak key {name!r} = {peak / 1e12:g} TFLOP/s"
        f"{', nominal' if name == 'cpu' else ''}): preset={preset} seq_len={seq_len} "
        f"micro_batch={micro_batch} threads={torch.get_num_threads()} compile={compile_model}"
    )
    print(
        f"  {tokens_per_s:,.0f} tokens/s, {fpt * tokens_per_s / 1e12:.3f} TFLOP/s achieved, "
        f"MFU {mfu(tokens_per_s, fpt, peak, 1):.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--preset", default=None, help="default: 350m on GPU, tiny on CPU")
    parser.add_argument("--seq-len", type=int, default=None)
    parser.add_argument("--micro-batch", type=int, default=None)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    table(2048)
    measure(
        args.preset or ("350m" if gpu else "tiny"),
        args.seq_len or (2048 if gpu else 256),
        args.micro_batch or (8 if gpu else 4),
        args.steps,
        args.compile,
    )


if __name__ == "__main__":
    main()
