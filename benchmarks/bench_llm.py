"""The embedded backend through LLMRunner against llama-cpp-python called directly.

Same model (packaged SmolLM2 GGUF), same prompts, same grammar-constrained JSON and decoding
settings, model load excluded from both. Prints calls/s and completion tokens/s for:

- direct:  ``Llama.create_chat_completion`` in a loop (the floor: no cache, no validation);
- runner:  ``build_runner(...).run(...)`` with a fresh cache (target: ≥ 0.8 × direct);
- cached:  the same requests again from the cache (target: ≥ 50 × faster than the runner run).

    .venv/bin/python benchmarks/bench_llm.py               # 8 prompts, 64 tokens
    .venv/bin/python benchmarks/bench_llm.py --n 64 --max-tokens 128

On a shared machine the direct/runner ratio carries the noise of both runs: alternate order
with --repeat to see it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from synthdiv.config import LLMConfig
from synthdiv.llm import build_runner, chat_request
from synthdiv.llm.embedded import _NEUTRAL_SAMPLING, default_threads
from synthdiv.models import smollm2_chat_gguf

SCHEMA = {
    "type": "object",
    "properties": {"topic": {"type": "string"}, "tone": {"type": "string"}},
    "required": ["topic", "tone"],
}
SUBJECTS = ["a river", "tax law", "a chess game", "bread", "volcanoes", "a startup", "jazz", "rain"]
TARGET_RATIO, TARGET_SPEEDUP = 0.8, 50.0


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [
            {"role": "system", "content": "Label the text. Answer with JSON only."},
            {
                "role": "user",
                "content": f"Text {i}: a short note about {SUBJECTS[i % len(SUBJECTS)]}.",
            },
        ]
        for i in range(n)
    ]


def bench_direct(cfg: LLMConfig, messages: list, threads: int) -> tuple[float, int]:
    from llama_cpp import Llama

    llama = Llama(
        str(smollm2_chat_gguf()),
        n_ctx=cfg.context_length,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    fmt = {"type": "json_object", "schema": SCHEMA}
    llama.create_chat_completion(messages=[{"role": "user", "content": "warm up"}], max_tokens=4)
    started, tokens = time.perf_counter(), 0
    for m in messages:
        out = llama.create_chat_completion(
            messages=m, response_format=fmt, temperature=cfg.temperature, top_p=cfg.top_p,
            max_tokens=cfg.max_tokens, seed=0, **_NEUTRAL_SAMPLING,
        )  # fmt: skip
        tokens += out["usage"]["completion_tokens"]
    seconds = time.perf_counter() - started
    llama.close()
    return seconds, tokens


def bench_runner(cfg: LLMConfig, messages: list, cache_dir: str) -> tuple[float, int, float, int]:
    def requests():
        return [
            chat_request(cfg, f"r{i}", m, json_schema=SCHEMA, seed=0)
            for i, m in enumerate(messages)
        ]

    with build_runner(cfg, cache_dir=cache_dir) as runner:
        runner.run(
            [chat_request(cfg, "warm", [{"role": "user", "content": "warm up"}], max_tokens=4)]
        )
        warm_calls = runner.usage.calls
        started = time.perf_counter()
        answers = runner.run(requests())
        seconds = time.perf_counter() - started
        tokens = sum(a.completion_tokens for a in answers)
        failures = sum(not a.ok for a in answers)
        runner.usage.calls -= warm_calls
        calls = runner.usage.calls
    with build_runner(cfg, cache_dir=cache_dir) as cached_runner:
        started = time.perf_counter()
        cached_runner.run(requests())
        cached_seconds = time.perf_counter() - started
        assert cached_runner.usage.calls == 0, "cached rerun reached the backend"
    if failures:
        print(f"warning: {failures} runner answers failed validation")
    return seconds, tokens, cached_seconds, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="prompts per run")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1, help="alternate direct/runner this often")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = auto)")
    args = parser.parse_args()
    threads = args.threads or default_threads(1)  # fixed once: both sides use the same count
    cfg = LLMConfig(
        max_tokens=args.max_tokens,
        temperature=0.0,
        context_length=1024,
        engine_kwargs={"n_threads": threads},
    )
    messages = prompts(args.n)

    rows = []
    for rep in range(args.repeat):
        d_s, d_tok = bench_direct(cfg, messages, threads)
        with tempfile.TemporaryDirectory() as cache_dir:
            r_s, r_tok, c_s, r_calls = bench_runner(cfg, messages, cache_dir)
        rows.append(
            {
                "rep": rep,
                "direct_calls_per_s": args.n / d_s,
                "direct_tokens_per_s": d_tok / d_s,
                "runner_calls_per_s": r_calls / r_s,
                "runner_tokens_per_s": r_tok / r_s,
                "runner_requests_per_s": args.n / r_s,
                "ratio_tokens_per_s": (r_tok / r_s) / (d_tok / d_s),
                "cached_seconds": c_s,
                "cached_speedup": r_s / c_s,
            }
        )
    print(
        f"embedded SmolLM2 GGUF, {args.n} prompts, max_tokens={args.max_tokens}, threads={threads}"
    )
    print(f"{'':10}{'calls/s':>10}{'tok/s':>10}")
    for row in rows:
        print(f"{'direct':10}{row['direct_calls_per_s']:>10.2f}{row['direct_tokens_per_s']:>10.1f}")
        print(f"{'runner':10}{row['runner_calls_per_s']:>10.2f}{row['runner_tokens_per_s']:>10.1f}")
        print(
            f"runner/direct tok/s = {row['ratio_tokens_per_s']:.2f} (target ≥ {TARGET_RATIO}); "
            f"cached rerun {row['cached_seconds'] * 1000:.1f} ms = {row['cached_speedup']:.0f}× "
            f"faster (target ≥ {TARGET_SPEEDUP:.0f}×)"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
