"""Generation benchmarks (issue 4).

1. Throughput: the generate pipeline (plan → runner → validate → render → shards) vs the raw
   backend on the same requests, both uncached. Prints valid samples/s (a raw answer counts when
   the pipeline's validator would accept it; the pipeline retries the others), output tokens/s
   and the ratios (target ≥ 0.8).
2. Designed diversity is visible: corpora from 1, 4 and 16 topics, and from the four prompt
   families, scored by every cheap metric (lexical + MiniLM embedding metrics). Each design asks
   for ``--oversample`` × size generations and keeps ``--size`` valid ones spread over its topics,
   so rejects neither shrink a corpus nor skew it. Prints each metric's values, Spearman ρ against
   the designed order, and P(ρ>0) over random 3/4-subsamples of every corpus (how much of the
   order is sampling noise at this size). ``--family-topics`` sets the families' 𝒯 (a small 𝒯 puts
   most document pairs on the same topic, where style and persona are what can differ);
   ``--extra-topics-from sampled taxonomy`` adds a multi-topic design per pool of extra topics.

    .venv/bin/python benchmarks/bench_generate.py --small                     # minutes on a CPU
    .venv/bin/python benchmarks/bench_generate.py --size 16 --parts families  # one part
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np
from scipy.stats import ConstantInputWarning, spearmanr

from synthdiv.config import CorpusConfig, RuntimeConfig, parse_config
from synthdiv.corpus import Corpus, read_corpus
from synthdiv.generate.config import GenerateConfig
from synthdiv.generate.pipeline import generate_corpus
from synthdiv.generate.plan import build_plan
from synthdiv.generate.validate import sample_validator
from synthdiv.llm import LLMRunner, build_backend
from synthdiv.llm.runner import check_response
from synthdiv.metrics import MetricContext, create

PARTS = ("throughput", "topics", "families")
# a subsample whose designs all tie has no ρ; it counts as "not ρ > 0", which is what P reports
warnings.filterwarnings("ignore", category=ConstantInputWarning)
# the quality gate: the default; without Gopher's repetition rules (most of SmolLM2-135M's samples
# fail them, see docs/generate.md); or only the JSON contract
QUALITY = {
    "full": {},
    "no-repetition": {"repetition": False},
    "off": {"min_passage_words": 0, "min_stop_words": 0, "repetition": False},
}
# the first three families; the fourth, multi_topic, is one design per pool of its extra topics
SINGLE_TOPIC_FAMILIES = ["topic", "topic_style", "topic_style_persona"]
MULTI_TOPIC = {
    "multi_topic": "sampled",
    "multi_taxonomy": "taxonomy",
}  # design label → extra_topics_from
POOL_NAMES = {"sampled": "the sampled topics", "taxonomy": "the whole taxonomy"}
METRICS = [
    "distinct_n",
    "ngram_diversity",
    "compression_ratio",
    "self_repetition",
    "vendi",
    "pairwise_cosine_distance",
    "remote_clique",
]


def base_config(
    root: Path, args: argparse.Namespace, concurrency: int = 1, **overrides
) -> GenerateConfig:
    data = {
        "runtime": {
            "storage_uri": str(root / "runs"),
            "tracking_uri": f"sqlite:///{root}/mlflow.db",
            "experiment": "bench-generate",
        },
        "seed": args.seed,
        "max_text_chars": args.max_text_chars,
        "output": {"shard_size": 4},
        "quality": QUALITY[args.quality],
        "generators": [
            {
                "llm": {
                    "backend": "embedded",
                    "temperature": 0.8,
                    "top_p": 0.95,
                    "max_tokens": args.max_tokens,
                    "max_retries": 1,
                    "concurrency": concurrency,
                    "batch_size": 1,
                    "cache_dir": args.cache_dir,
                    "engine_kwargs": {"n_threads": args.threads} if args.threads else {},
                }
            }
        ],
        **overrides,
    }
    return parse_config(data, GenerateConfig, "bench")


def throughput(root: Path, args: argparse.Namespace) -> None:
    cfg = base_config(
        root, args, family="topic_style", n_topics=args.throughput_samples, generations_per_topic=1
    )
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
    validate = sample_validator(cfg.quality)
    raw_valid = sum(
        check_response(r, q, validate) is None for r, q in zip(raw, requests, strict=True)
    )
    # the pipeline drives the same loaded engine (no cache), so only its own overhead differs
    result = generate_corpus(
        cfg,
        runner_factory=lambda llm, _cache: LLMRunner(
            backend, cache=None, max_retries=llm.max_retries
        ),
    )
    m = result.metrics
    print(f"\n== throughput (embedded SmolLM2-135M, {len(requests)} samples, uncached) ==")
    valid_rate = (len(requests) - m["generate.n_rejected"]) / m["run.seconds"]
    raw_rate = raw_valid / raw_s
    print(
        f"raw backend : {raw_rate:6.3f} valid samples/s  {raw_tokens / raw_s:7.1f} out tok/s"
        f"  ({raw_valid}/{len(raw)} answers valid)"
    )
    print(
        f"pipeline    : {valid_rate:6.3f} valid samples/s "
        f" {m['run.output_tokens_per_s']:7.1f} out tok/s"
        f"  (retries {m['generate.retries']:.0f}, rejected {m['generate.n_rejected']:.0f})"
    )
    print(
        f"ratio       : valid samples/s {valid_rate / max(raw_rate, 1e-9):.2f}"
        f"  tok/s {m['run.output_tokens_per_s'] / (raw_tokens / raw_s):.2f}  (target ≥ 0.8)"
    )


def balanced_subset(corpus: Corpus, size: int) -> Corpus:
    """``size`` documents spread over the topics: every topic's first valid generation, then
    every topic's second, … (ids are ``t<topic>-g<generation>``), so a design's rejects do not
    shrink its corpus or skew its topics. Ids may carry a ``<design>/`` prefix."""

    def generation_then_topic(i: int) -> list[str]:
        return corpus.ids[i].rsplit("/", 1)[-1].split("-")[::-1]

    return corpus.take(sorted(range(len(corpus)), key=generation_then_topic)[:size])


def on_topic_cosine(corpus: Corpus, encoded: np.ndarray, minilm) -> float:
    """Mean cosine between each document and its own topic (path and keywords, from the meta):
    how closely the generator keeps to the topic it was given. Generic text scores low and pulls
    documents on different topics together."""
    topics = [" > ".join(m["topic_path"]) + ": " + ", ".join(m["keywords"]) for m in corpus.metas]
    topic_vecs = minilm.encode(
        topics, batch_size=32, convert_to_numpy=True, normalize_embeddings=True
    )
    doc_vecs = encoded / np.linalg.norm(encoded, axis=1, keepdims=True)
    return float(np.mean(np.sum(topic_vecs * doc_vecs, axis=1)))


def metric_values(corpus: Corpus, vectors: dict[str, np.ndarray]) -> dict[str, float]:
    """Every metric, signed so that higher = more diverse."""
    ctx = MetricContext(
        seed=0, n_seeds=2, embeddings=lambda sub: np.stack([vectors[i] for i in sub.ids])
    )
    out = {}
    for name in METRICS:
        metric = create(name)
        value = metric.compute(corpus, ctx).value
        out[name] = value if metric.higher_is_more_diverse else -value
    return out


def order_report(
    labels: list[str],
    corpora: dict[str, Corpus],
    vectors: dict[str, np.ndarray],
    draws: int,
    rng: np.random.Generator,
) -> None:
    """Each metric's values, Spearman ρ against the designed order, and how often ρ > 0 when every
    corpus is replaced by a random 3/4 of itself: the sampling noise of the order at this size."""
    full = {lbl: metric_values(corpora[lbl], vectors) for lbl in labels}
    subsampled = []
    for _ in range(draws):
        subs = {}
        for lbl in labels:
            c = corpora[lbl]
            keep = np.sort(rng.choice(len(c), size=max(2, 3 * len(c) // 4), replace=False))
            subs[lbl] = metric_values(c.take(keep.tolist()), vectors)
        subsampled.append(subs)
    print(
        "metric".ljust(26)
        + "".join(lbl.split("=")[1][:14].rjust(16) for lbl in labels)
        + "       ρ  P(ρ>0)"
    )
    for name in METRICS:
        values = [full[lbl][name] for lbl in labels]
        rho = spearmanr(range(len(values)), values).statistic
        rhos = [
            spearmanr(range(len(labels)), [d[lbl][name] for lbl in labels]).statistic
            for d in subsampled
        ]
        print(
            name.ljust(26)
            + "".join(f"{v:16.4f}" for v in values)
            + f"  {rho:+.2f}  {np.mean(np.array(rhos) > 0):6.0%}"
        )


def diversity(root: Path, args: argparse.Namespace) -> None:
    from sentence_transformers import SentenceTransformer

    from synthdiv.models import minilm_path

    minilm = SentenceTransformer(str(minilm_path()), device="cpu")
    size, par = args.size, args.concurrency  # engines (Ray actors): only the corpora matter here
    per_topic = max(1, math.ceil(args.oversample * size))  # generations asked for, before rejects
    topic_counts = [t for t in (1, 4, 16) if t <= size] if "topics" in args.parts else []
    designs = {
        f"T={t}": base_config(
            root,
            args,
            par,
            family="topic",
            n_topics=t,
            generations_per_topic=math.ceil(per_topic / t),
        )
        for t in topic_counts
    }
    multi = {lbl: pool for lbl, pool in MULTI_TOPIC.items() if pool in args.extra_topics_from}
    if "families" in args.parts:
        n_topics = args.family_topics or max(1, size // 2)
        family_cell = {
            "n_topics": n_topics,
            "generations_per_topic": math.ceil(per_topic / n_topics),
        }
        designs.update(
            {
                f"family={f}": base_config(root, args, par, family=f, **family_cell)
                for f in SINGLE_TOPIC_FAMILIES
            }
        )
        designs.update(
            {
                f"family={lbl}": base_config(
                    root, args, par, family="multi_topic", extra_topics_from=pool, **family_cell
                )
                for lbl, pool in multi.items()
            }
        )
    corpora, vectors = {}, {}
    for label, cfg in designs.items():
        started = time.perf_counter()
        result = generate_corpus(cfg)
        corpus, _ = read_corpus(CorpusConfig(path=result.outputs["corpus"]))
        corpora[label] = balanced_subset(corpus, size)
        encoded = minilm.encode(corpora[label].texts, batch_size=32, convert_to_numpy=True)
        on_topic = on_topic_cosine(corpora[label], encoded, minilm)
        vectors.update(
            {f"{label}/{i}": v for i, v in zip(corpora[label].ids, encoded, strict=True)}
        )
        corpora[label] = Corpus(
            ids=[f"{label}/{i}" for i in corpora[label].ids], texts=corpora[label].texts
        )
        m = result.metrics
        print(
            f"generated {label}: {m['generate.n_ok']:.0f} valid of {m['generate.n_requested']:.0f}"
            f" ({m['generate.n_rejected']:.0f} rejected), kept {len(corpora[label])}"
            f" (on-topic cosine {on_topic:.3f})"
            f" in {time.perf_counter() - started:.0f}s",
            flush=True,
        )
    rng = np.random.default_rng(args.seed)
    groups = [("topics", [f"T={t}" for t in topic_counts])]
    if "families" in args.parts:
        groups += [
            (
                f"families, multi-topic extras from {POOL_NAMES[pool]}",
                [f"family={f}" for f in SINGLE_TOPIC_FAMILIES] + [f"family={lbl}"],
            )
            for lbl, pool in multi.items()
        ]
    for group, labels in groups:
        if len(labels) > 1:
            n = min(len(corpora[lbl]) for lbl in labels)  # equal sizes within a comparison
            print(
                f"\n== designed diversity: {group}, {n} docs "
                "each (signed: higher = more diverse) =="
            )
            order_report(
                labels,
                {lbl: balanced_subset(corpora[lbl], n) for lbl in labels},
                vectors,
                args.draws,
                rng,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="tiny sizes to prove it runs")
    parser.add_argument(
        "--size", type=int, default=16, help="docs per corpus in the diversity part"
    )
    parser.add_argument("--throughput-samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=700)
    parser.add_argument("--max-text-chars", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="llama.cpp threads (default: backend's)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="llama.cpp engines for the diversity corpora (throughput uses 1)",
    )
    parser.add_argument("--cache-dir", default=None, help="LLM response cache (default: per run)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument(
        "--oversample",
        type=float,
        default=2.0,
        help="generations asked for per kept document (rejects are trimmed away)",
    )
    parser.add_argument("--quality", choices=list(QUALITY), default="full", help="quality gate")
    parser.add_argument("--draws", type=int, default=50, help="3/4-subsamples behind P(ρ>0)")
    parser.add_argument(
        "--family-topics",
        type=int,
        default=None,
        help="𝒯 of the family corpora (default size/2; small = mostly same-topic pairs)",
    )
    parser.add_argument(
        "--extra-topics-from",
        nargs="+",
        choices=sorted(set(MULTI_TOPIC.values())),
        default=["sampled"],
        help="multi_topic designs: pools of their extra topics",
    )
    args = parser.parse_args()
    if args.small:
        args.size, args.throughput_samples = 4, 4
    from synthdiv.runtime import ray_session

    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp, ray_session(RuntimeConfig()):
        root = Path(tmp)
        if "throughput" in args.parts:
            throughput(root, args)
        if {"topics", "families"} & set(args.parts):
            diversity(root, args)


if __name__ == "__main__":
    main()
