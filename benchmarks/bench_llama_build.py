"""The speed cost of a portable llama.cpp build: two llama-cpp-python wheels (e.g. pip's native
build against ``scripts/build_llama_wheel.sh``'s GGML_NATIVE=OFF one) on the same prompts, each
with extra buffer types on and off (off is the AMX guard of ``synthdiv.cpu``).

Each measurement runs in a fresh interpreter whose ``llama_cpp`` comes from the unpacked wheel;
rounds alternate between the wheels so drifting machine load hits both alike. Prints the build's
compiled-in features and the median prompt / free / JSON tokens/s over the rounds.

    .venv/bin/python benchmarks/bench_llama_build.py --wheel native=A.whl --wheel portable=B.whl \\
        [--rounds 3] [--threads 1] [--max-tokens 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(threads: int, max_tokens: int, extra: bool) -> dict:
    """In the child: speeds of the Q8_0 chat model with this interpreter's llama_cpp."""
    import llama_cpp

    sys.path.insert(0, str(HERE))
    from bench_llama_quant import speeds

    import synthdiv.llm.embedded as embedded
    from synthdiv import cpu
    from synthdiv.models import smollm2_chat_gguf

    embedded._use_extra_buffers = lambda requested: extra  # the guard's decision, forced
    out = speeds(str(smollm2_chat_gguf()), threads, max_tokens)
    features = cpu.parse_system_info(llama_cpp.llama_print_system_info().decode())
    out["features"] = " ".join(k for k, on in features.items() if on and k in cpu.BUILD_TO_FLAG)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", action="append", required=True, help="LABEL=path.whl")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=300)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # "on"/"off": measure here, print JSON
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.threads, args.max_tokens, args.child == "on")))
        return
    dirs = {}
    for spec in args.wheel:
        label, path = spec.split("=", 1)
        dirs[label] = tempfile.mkdtemp(prefix=f"llama-{label}-")
        zipfile.ZipFile(path).extractall(dirs[label])
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for label, lib_dir in dirs.items():
            for extra in ("on", "off"):
                cmd = [
                    sys.executable,
                    __file__,
                    "--wheel",
                    "x=y",
                    "--child",
                    extra,
                    "--threads",
                    str(args.threads),
                    "--max-tokens",
                    str(args.max_tokens),
                ]
                env = dict(os.environ, PYTHONPATH=lib_dir, HF_HUB_OFFLINE="1")
                done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
                runs.setdefault((label, extra), []).append(json.loads(done.stdout.splitlines()[-1]))
    print(f"threads={args.threads} max_tokens={args.max_tokens} rounds={args.rounds} (medians)")
    print(
        f"{'build':10s} {'extra bufs':10s} {'prompt tok/s':>12s} {'free tok/s':>10s} "
        f"{'json tok/s':>10s}  compiled for"
    )
    for (label, extra), rows in runs.items():
        med = {
            k: statistics.median(r[k] for r in rows)
            for k in ("prompt_tok_s", "free_tok_s", "json_tok_s")
        }
        print(
            f"{label:10s} {extra:10s} {med['prompt_tok_s']:12.0f} {med['free_tok_s']:10.1f} "
            f"{med['json_tok_s']:10.1f}  {rows[0]['features']}"
        )


if __name__ == "__main__":
    main()
