"""Why the embedded backend runs SmolLM2 as Q8_0: the packaged Q4_1 GGUF against its cached
Q8_0 requantization (``synthdiv.models.smollm2_chat_gguf``), same threads, same prompts.

Prints, per file: prompt reading tokens/s (a ~900-token prompt, like a cluster-agent call),
free decoding tokens/s and grammar-constrained JSON decoding tokens/s, and how far the Q8_0
weights sit from the Q4_1 ones (max |Δ| over one tensor, relative to its Q4 step).

    .venv/bin/python benchmarks/bench_llama_quant.py [--threads 2] [--max-tokens 300]
"""

from __future__ import annotations

import argparse
import time

from synthdiv.llm.base import ChatRequest
from synthdiv.llm.embedded import LlamaChat, default_threads
from synthdiv.models import smollm2_chat_gguf, smollm2_gguf_path

SCHEMA = {
    "type": "object",
    "properties": {
        "passages": {"type": "array", "items": {"type": "string"}},
        "question": {"type": "string"},
    },
    "required": ["passages", "question"],
}
LONG_PROMPT = (
    "Summarize: " + "The volcano erupted and lava flowed into the valley where farmers lived. " * 60
)


def request(content: str, max_tokens: int, schema: dict | None = None) -> ChatRequest:
    messages = [{"role": "user", "content": content}]
    return ChatRequest(id="q", messages=messages, temperature=0.8, top_p=0.95,
                       max_tokens=max_tokens, seed=1, json_schema=schema)  # fmt: skip


def speeds(path: str, threads: int, max_tokens: int) -> dict[str, float]:
    chat = LlamaChat(path, 4096, {"n_threads": threads}, 1)
    chat.answer(request("warm up", 4))
    out: dict[str, float] = {}
    started = time.perf_counter()
    read = chat.answer(request(LONG_PROMPT, 1))
    out["prompt_tok_s"] = read.prompt_tokens / (time.perf_counter() - started)
    for label, schema in (("free_tok_s", None), ("json_tok_s", SCHEMA)):
        ask = "Write a long textbook passage about volcanoes as JSON with passages and a question."
        started = time.perf_counter()
        answer = chat.answer(request(ask, max_tokens, schema))
        out[label] = answer.completion_tokens / (time.perf_counter() - started)
    return out


def weight_gap(tensor: str = "blk.0.ffn_down.weight") -> float:
    """max |Q8_0 − Q4_1| over one tensor, in units of that tensor's mean Q4_1 step (range/15)."""
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize

    def values(path: str) -> np.ndarray:
        t = next(t for t in GGUFReader(path).tensors if t.name == tensor)
        return dequantize(t.data, t.tensor_type).reshape(-1, 32)

    q4, q8 = values(str(smollm2_gguf_path())), values(str(smollm2_chat_gguf()))
    step = ((q4.max(axis=1) - q4.min(axis=1)) / 15).mean()
    return float(np.abs(q8 - q4).max() / step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = all cores)")
    parser.add_argument("--max-tokens", type=int, default=300)
    args = parser.parse_args()
    threads = args.threads or default_threads(1)
    print(f"threads={threads}  max_tokens={args.max_tokens}")
    print(f"{'file':40s} {'prompt tok/s':>12s} {'free tok/s':>10s} {'json tok/s':>10s}")
    for path in (smollm2_gguf_path(), smollm2_chat_gguf()):
        s = speeds(str(path), threads, args.max_tokens)
        print(
            f"{path.name:40s} {s['prompt_tok_s']:12.0f} "
            f"{s['free_tok_s']:10.1f} {s['json_tok_s']:10.1f}"
        )
    print(f"max |Q8_0 - Q4_1| on blk.0.ffn_down: {weight_gap():.3f} Q4 steps")


if __name__ == "__main__":
    main()
