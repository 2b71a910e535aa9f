"""Generation benchmarks (issue 4).

1. Throughput: the generate pipeline (plan → runner → validate → render → shards) vs the raw
   backend on the same requests, both uncached. Prints valid samples/s (a raw answer counts when
   the pipeline's validator would accept it; the pipeline retries the others), output tokens/s
   and the ratios (target ≥ 0.8).
2. Designed diversity is visible: corpora of the same size from 1, 4 and 16 topics, and from the
   four prompt families, scored by every cheap metric (lexical + MiniLM embedding metrics); prints
   each metric's order and whether it matches the designed order.

    .venv/bin/python benchmarks/bench_generate.py --small      # minutes on a laptop CPU
    .venv/bin/python benchmarks/bench_generate.py --size 16     # issue sizes: 1/4/16 topics × 16
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from scipy.stats import spearmanr

from synthdiv.config import CorpusConfig, RuntimeConfig, parse_config
from synthdiv.corpus import read_corpus
from synthdiv.generate.config import GenerateConfig
from synthdiv.generate.pipeline import generate_corpus
from synthdiv.generate.plan import build_plan
from synthdiv.generate.validate import validate_sample
from synthdiv.llm import LLMRunner, build_backend
from synthdiv.llm.runner import check_response
from synthdiv.metrics import MetricContext, create

FAMILIES = ["topic", "topic_style", "topic_style_persona", "multi_topic"]
METRICS = ["distinct_n", "ngram_diversity", "compression_ratio", "self_repetition",
           "vendi", "pairwise_cosine_distance", "remote_clique"]


def base_config(root: Path, args: argparse.Namespace, concurrency: int = 1, **overrides) -> GenerateConfig:
    data = {
        "runtime": {"storage_uri": str(root / "runs"), "tracking_uri": f"sqlite:///{root}/mlflow.db",
                    "experiment": "bench-generate"},
        "seed": args.seed,
        "max_text_chars": args.max_text_chars,
        "score_after": False,
        "output": {"shard_size": 4},
        "generators": [{"llm": {"backend": "embedded", "temperature": 0.8, "top_p": 0.95,
                                "max_tokens": args.max_tokens, "max_retries": 1,
                                "concurrency": concurrency, "batch_size": 1,
                                "cache_dir": args.cache_dir,
                                "engine_kwargs": {"n_threads": args.threads} if args.threads else {}}}],
        **overrides,
    }
    return parse_config(data, GenerateConfig, "bench")


def throughput(root: Path, args: argparse.Namespace) -> None:
    cfg = base_config(root, args, family="topic_style", n_topics=args.throughput_samples,
                      generations_per_topic=1)
    cfg.generators[0].llm.cache_dir = ""  # both sides uncached
    plan = build_plan(cfg)
    requests = [plan.request(t) for t in plan.tasks]
    backend = build_backend(cfg.generators[0].llm)
    list(backend.run(requests[:1]))  # load the model outside both timings
    started = time.perf_counter()
    raw = list(backend.run(requests))
    raw_s = time.perf_counter() - started
    raw_tokens = sum(r.completion_tokens for r in raw)
    # a raw answer the pipeline would reject is not a sample: count valid ones on both sides
    raw_valid = sum(check_response(r, q, validate_sample) is None for r, q in zip(raw, requests))
    # the pipeline drives the same loaded engine (no cache), so only its own overhead differs
    result = generate_corpus(cfg, runner_factory=lambda llm, _cache: LLMRunner(
        backend, cache=None, max_retries=llm.max_retries))
    m = result.metrics
    print(f"\n== throughput (embedded SmolLM2-135M, {len(requests)} samples, uncached) ==")
    valid_rate = (len(requests) - m["generate.n_rejected"]) / m["run.seconds"]
    raw_rate = raw_valid / raw_s
    print(f"raw backend : {raw_rate:6.3f} valid samples/s  {raw_tokens / raw_s:7.1f} out tok/s"
          f"  ({raw_valid}/{len(raw)} answers valid)")
    print(f"pipeline    : {valid_rate:6.3f} valid samples/s  {m['run.output_tokens_per_s']:7.1f} out tok/s"
          f"  (retries {m['generate.retries']:.0f}, rejected {m['generate.n_rejected']:.0f})")
    print(f"ratio       : valid samples/s {valid_rate / max(raw_rate, 1e-9):.2f}"
          f"  tok/s {m['run.output_tokens_per_s'] / (raw_tokens / raw_s):.2f}  (target ≥ 0.8)")


def score(corpus_dir: str, minilm) -> dict[str, float]:
    corpus, _ = read_corpus(CorpusConfig(path=corpus_dir))
    cache: dict[int, object] = {}

    def embeddings(sub):
        key = id(sub)
        if key not in cache:
            cache[key] = minilm.encode(sub.texts, batch_size=32, convert_to_numpy=True)
        return cache[key]

    ctx = MetricContext(seed=0, n_seeds=2, embeddings=embeddings)
    out = {}
    for name in METRICS:
        metric = create(name)
        result = metric.compute(corpus, ctx)
        out[name] = result.value if metric.higher_is_more_diverse else -result.value
    out["n_docs"] = len(corpus)
    return out


def diversity(root: Path, args: argparse.Namespace) -> None:
    from sentence_transformers import SentenceTransformer

    from synthdiv.models import minilm_path

    minilm = SentenceTransformer(str(minilm_path()), device="cpu")
    size = args.size
    topic_counts = [t for t in (1, 4, 16) if t <= size]
    par = args.concurrency  # engines (Ray actors): only the corpora matter here, not the speed
    designs = {f"T={t}": base_config(root, args, par, family="topic", n_topics=t,
                                     generations_per_topic=size // t) for t in topic_counts}
    designs.update({f"family={f}": base_config(root, args, par, family=f, n_topics=max(1, size // 2),
                                               generations_per_topic=2) for f in FAMILIES})
    scores = {}
    for label, cfg in designs.items():
        started = time.perf_counter()
        result = generate_corpus(cfg)
        scores[label] = score(result.outputs["corpus"], minilm)
        print(f"generated {label}: {scores[label]['n_docs']} docs in {time.perf_counter() - started:.0f}s",
              flush=True)
    for group, labels in (("topics", [f"T={t}" for t in topic_counts]),
                          ("families", [f"family={f}" for f in FAMILIES])):
        print(f"\n== designed diversity: {group} (values signed so higher = more diverse) ==")
        print("metric".ljust(26) + "".join(lbl.split("=")[1][:14].rjust(16) for lbl in labels) + "  spearman")
        for name in METRICS:
            values = [scores[lbl][name] for lbl in labels]
            rho = spearmanr(range(len(values)), values).statistic if len(values) > 1 else float("nan")
            print(name.ljust(26) + "".join(f"{v:16.4f}" for v in values) + f"  {rho:+.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="tiny sizes to prove it runs")
    parser.add_argument("--size", type=int, default=16, help="docs per corpus in the diversity part")
    parser.add_argument("--throughput-samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=700)
    parser.add_argument("--max-text-chars", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: backend's)")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="llama.cpp engines for the diversity corpora (throughput uses 1)")
    parser.add_argument("--cache-dir", default=None, help="LLM response cache (default: per run)")
    parser.add_argument("--skip", choices=["throughput", "diversity"], default=None)
    args = parser.parse_args()
    if args.small:
        args.size, args.throughput_samples = 4, 4
    from synthdiv.runtime import ray_session

    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp, ray_session(RuntimeConfig()):
        root = Path(tmp)
        if args.skip != "throughput":
            throughput(root, args)
        if args.skip != "diversity":
            diversity(root, args)


if __name__ == "__main__":
    main()
