"""The ``cluster_agent`` metric: Stage A (criteria) + Stage B (clustering) per seed, D ± t-CI.

Per seed s (``ctx.seed + seed + i`` for i < ``n_seeds``: the caller's seed moves the draws too): the
corpus is subsampled to ``ctx.sample_size`` (when set), criteria are generated from it, N clustering
iterations are scored, and D_s = mean of D_i over the iterations that succeeded. The reported value
is the mean of D_s with a Student-t interval (the paper's bootstrap protocol); with a single seed,
whose t-interval would have zero width, the interval is a percentile bootstrap over that seed's D_i
instead. Failed iterations are counted, never fatal, and their rate is reported with every score; a
seed where *every* iteration failed scores NaN (the reason is in its summary). D before self-
verification is reported beside D.

Records: per-iteration C_i, n_i, S_i, D_i and valid/invalid counts (``details`` and
``iterations.jsonl``), the criteria (JSON and text), the prompt template refs, LLM usage. They are
logged once: through ``ctx.tracker`` when there is one, else returned as ``artifacts``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from synthdiv.config import LLMConfig
from synthdiv.corpus import Corpus
from synthdiv.llm.runner import LLMRunner, LLMUsage
from synthdiv.metrics.base import MetricContext, MetricResult, register
from synthdiv.metrics.cluster_agent.clustering import Iteration, run_iterations
from synthdiv.metrics.cluster_agent.config import (
    CHARS_PER_TOKEN,
    ClusterAgentParams,
    UserCriteria,
)
from synthdiv.metrics.cluster_agent.criteria import (
    Criteria,
    Criterion,
    generate_criteria,
    slugify,
)
from synthdiv.metrics.cluster_agent.prompts import template_refs, truncate
from synthdiv.metrics.protocol import ConfiguredMetric, seeded_subsamples

RUNNER_RESOURCE = "llm_runner"
# Resamples of the single-seed interval; the bootstrap runs in chunks of this many rows, so its
# memory stays at ITERATION_BOOTSTRAP × N / 5 floats even at the paper's N = 5000.
ITERATION_BOOTSTRAP = 1000
BOOTSTRAP_CHUNK = 200


@register
class ClusterAgent(ConfiguredMetric):
    """LLM cluster-agent diversity (Chen et al. 2024): mean C_i² / n_i over N clusterings of K."""

    name: ClassVar[str] = "cluster_agent"
    # 2: documents enter each prompt in random order; 1-seed CI. 3: a missing 1-5 score no longer
    # fails the iteration (counted instead)
    version: ClassVar[str] = "3"
    higher_is_more_diverse: ClassVar[bool] = True
    Params = ClusterAgentParams
    params: ClusterAgentParams

    def compute(self, corpus: Corpus, ctx: MetricContext) -> MetricResult:
        p = self.params
        size = len(corpus) if ctx.sample_size is None else min(ctx.sample_size, len(corpus))
        stage_a = p.generate_criteria and p.criteria is None
        needed = max(p.K, p.J if stage_a else 0)
        if size < needed:
            raise ValueError(
                f"cluster_agent: {size} documents to draw from, but K={p.K}"
                + (f" / J={p.J}" if stage_a else "")
                + f" need at least {needed}; use a larger corpus or sample_size, or lower K/J"
            )
        runner = shared_runner(p, ctx)
        usage_before = dataclasses.replace(runner.usage)
        started = time.perf_counter()
        out_dir = Path(ctx.work_dir) / "cluster_agent" / corpus.digest[:16]
        outcomes: dict[int, dict[str, Any]] = {}

        def one_seed(subsample: Corpus, seed: int) -> tuple[float, dict[str, Any]]:
            outcome = run_seed(subsample, p, runner, seed, ctx)
            write_seed_files(outcome, out_dir / f"seed_{seed}")
            outcomes[seed] = outcome
            return outcome["D"], outcome["summary"]

        result = seeded_subsamples(
            self,
            corpus,
            one_seed,
            dataclasses.replace(ctx, seed=ctx.seed + p.seed, n_seeds=p.n_seeds),
        )
        usage = usage_delta(runner.usage, usage_before)
        summaries = [o["summary"] for o in outcomes.values()]
        failed = sum(s["failed_iterations"] for s in summaries)
        failure_rate = failed / sum(s["N"] for s in summaries)
        unverified = [s["D_unverified"] for s in summaries if s["D_unverified"] is not None]
        D_unverified = sum(unverified) / len(unverified) if unverified else math.nan
        result.ci_low, result.ci_high, ci_method = interval(result, outcomes, ctx.confidence)
        prompt_stats = pooled_prompt_stats(summaries, p)
        result.tokens = usage.prompt_tokens + usage.completion_tokens
        result.details |= {
            "reading": "D_i = C_i^2 / n_i (S_i = n_i / C_i, mean cluster size); bounds [1/K, K]",
            "invalid_cluster_rule": p.invalid_cluster_rule,
            "prompts": template_refs(p.prompt_version),
            "ci_method": ci_method,
            "failed_iterations": failed,
            "failure_rate": failure_rate,
            "verify": p.verify,
            "D_unverified": D_unverified,
            **prompt_stats,
            "llm_usage": dataclasses.asdict(usage),
            "iterations": {
                s: [it.compact() for it in o["iterations"]] for s, o in outcomes.items()
            },
            "criteria": {s: o["criteria"].to_dict() for s, o in outcomes.items()},
            "artifact_dir": str(out_dir),
        }
        summary_metrics = {
            "cluster_agent.failed_iterations": failed,
            "cluster_agent.failure_rate": failure_rate,
            "cluster_agent.D_unverified": D_unverified,
            **{f"cluster_agent.{k}": v for k, v in prompt_stats.items()},
            "cluster_agent.wall_seconds": time.perf_counter() - started,
            **usage.as_metrics(prefix="cluster_agent.llm."),
            **{f"cluster_agent.seed_{s}.D": o["D"] for s, o in outcomes.items()},
        }
        result.details["summary_metrics"] = summary_metrics
        if ctx.tracker is not None:
            log_to_tracker(ctx.tracker, outcomes, summary_metrics, result.details["prompts"])
        else:
            result.artifacts = {"cluster_agent": out_dir}
        return result


def interval(
    result: MetricResult, outcomes: dict[int, dict[str, Any]], confidence: float
) -> tuple[float, float, str]:
    """(low, high, how): the t-interval over seeds, or with one seed a bootstrap over its D_i.

    The single-seed interval holds the criteria fixed, so it reflects only which documents the N
    iterations drew: narrower than a between-seed interval, but not the false certainty of a
    zero-width one."""
    if len(outcomes) > 1:
        return result.ci_low, result.ci_high, f"student_t over {len(outcomes)} seeds"
    ((seed, outcome),) = outcomes.items()
    values = [it.D for it in outcome["iterations"] if it.ok]
    if len(values) < 2:
        return result.ci_low, result.ci_high, f"undefined: {len(values)} scored iteration(s)"
    low, high = bootstrap_mean_interval(values, confidence, seed)
    return low, high, f"percentile bootstrap over {len(values)} iterations' D_i (1 seed)"


def bootstrap_mean_interval(
    values: list[float], confidence: float, seed: int, n_boot: int = ITERATION_BOOTSTRAP
) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` over seeded resamples with replacement."""
    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng([seed, len(x)])
    means = np.concatenate([
        x[rng.integers(0, len(x), size=(min(BOOTSTRAP_CHUNK, n_boot - start), len(x)))].mean(axis=1)
        for start in range(0, n_boot, BOOTSTRAP_CHUNK)
    ])  # fmt: skip
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def shared_runner(params: ClusterAgentParams, ctx: MetricContext) -> LLMRunner:
    """One runner per LLM config in ``ctx.resources``: the model loads once for all corpora and
    seeds. Whoever owns ``ctx.resources`` closes it (see
    :func:`synthdiv.metrics.base.close_resources`)."""
    key = runner_key(params.llm)
    if key not in ctx.resources:
        from synthdiv.llm import build_runner

        ctx.resources[key] = build_runner(
            params.llm, cache_dir=str(Path(ctx.work_dir) / "llm_cache")
        )
    return ctx.resources[key]


def runner_key(llm: LLMConfig) -> tuple[str, str]:
    """The ``ctx.resources`` key of the runner for ``llm`` (callers may pre-seed their own)."""
    blob = json.dumps(llm.model_dump(mode="json"), sort_keys=True)
    return (RUNNER_RESOURCE, hashlib.sha256(blob.encode()).hexdigest()[:16])


def run_seed(
    corpus: Corpus, params: ClusterAgentParams, runner: LLMRunner, seed: int, ctx: MetricContext
) -> dict[str, Any]:
    if ctx.progress is not None:
        ctx.progress("cluster_agent criteria", 0, 1)
    if params.criteria is not None:  # the user's criteria: Stage A is skipped
        criteria = user_criteria(params.criteria)
    else:
        criteria = generate_criteria(corpus.texts, params, runner, seed)
    if ctx.progress is not None:
        ctx.progress("cluster_agent criteria", 1, 1)
    iterations = run_iterations(
        corpus.ids, corpus.texts, criteria, params, runner, seed, ctx.progress
    )
    ok = [it for it in iterations if it.ok]
    # A seed where every iteration failed has no score: NaN (with the reason), not a crash.
    D = sum(it.D for it in ok) / len(ok) if ok else math.nan
    summary = (
        iteration_summary(iterations, params.K)
        | answer_stats(iterations, criteria, corpus, params)
        | {"D": D, "seed": seed}
    )
    if not ok:
        summary["first_error"] = next((it.error for it in iterations if it.error), "unknown")
    return {"D": D, "summary": summary, "iterations": iterations, "criteria": criteria}


def iteration_summary(iterations: list[Iteration], K: int) -> dict[str, Any]:
    ok = [it for it in iterations if it.ok]
    # Every iteration with an answered partition, whether or not verification then passed: the
    # set ``verify: false`` would have scored.
    answered = [it.D_unverified for it in iterations if it.D_unverified is not None]
    by_status: dict[str, int] = {}
    for it in iterations:
        by_status[it.status] = by_status.get(it.status, 0) + 1
    return {
        "N": len(iterations),
        "K": K,
        "ok_iterations": len(ok),
        "failed_iterations": len(iterations) - len(ok),
        "failure_rate": (len(iterations) - len(ok)) / len(iterations),
        "status_counts": by_status,
        "D_unverified": sum(answered) / len(answered) if answered else None,
        "mean_C": sum(it.C for it in ok) / len(ok) if ok else None,
        "mean_S": sum(it.S for it in ok) / len(ok) if ok else None,
        "valid_clusters": sum(sum(it.valid) for it in ok),
        "invalid_clusters": sum(len(it.valid) - sum(it.valid) for it in ok),
        "repaired_iterations": sum(it.repaired for it in ok),
    }


def user_criteria(given: UserCriteria) -> Criteria:
    """The ``criteria`` param as the clusterer sees it (names normalised like generated ones)."""
    return Criteria(
        metadata=[Criterion("metadata", slugify(c.name), c.definition) for c in given.metadata],
        metrics=[Criterion("metric", slugify(c.name), c.definition) for c in given.metrics],
        notes={"generated": False, "user_supplied": True},
    )


def answer_stats(
    iterations: list[Iteration], criteria: Criteria, corpus: Corpus, params: ClusterAgentParams
) -> dict[str, Any]:
    """Truncation of the documents shown to the clusterer, and 1-5 scores the clusterer left out.

    A document is truncated when it is longer than the per-sample character budget (the prompt
    code cuts it there, marked with "..."). A missing or out-of-range score does not fail an
    iteration whose partition is valid (D uses only the partition); it is counted here."""
    chars = params.sample_char_budget()
    text_of = dict(zip(corpus.ids, corpus.texts, strict=True))
    shown = [text_of[i] for it in iterations for i in it.sample_ids]
    truncated = sum(truncate(t, chars) != " ".join(t.split()) for t in shown)
    names = [c.name for c in criteria.metrics]
    missing, affected = 0, 0
    for it in iterations:
        if not it.ok or it.repaired or it.answer is None:  # a repaired answer kept no scores
            continue
        gaps = sum(
            not _has_score(cluster, name) for cluster in it.answer["clusters"] for name in names
        )
        missing, affected = missing + gaps, affected + (gaps > 0)
    return {
        "samples_shown": len(shown),
        "samples_truncated": truncated,
        "missing_scores": missing,
        "iterations_with_missing_scores": affected,
    }


def _has_score(cluster: dict[str, Any], name: str) -> bool:
    scores = cluster.get("scores")
    entry = scores.get(name) if isinstance(scores, dict) else None
    value = entry.get("score") if isinstance(entry, dict) else None
    return not isinstance(value, bool) and value in (1, 2, 3, 4, 5)


def pooled_prompt_stats(summaries: list[dict[str, Any]], params: ClusterAgentParams) -> dict:
    """Over every seed: the per-sample budget and the share of shown documents it truncated,
    logged with each score so a truncation by the context window is never silent."""
    shown = sum(s["samples_shown"] for s in summaries)
    chars = params.sample_char_budget()
    return {
        "context_length": params.llm.context_length,
        "sample_char_budget": chars,
        "sample_token_budget": int(chars / CHARS_PER_TOKEN),
        "truncated_share": sum(s["samples_truncated"] for s in summaries) / shown if shown else 0.0,
        "missing_scores": sum(s["missing_scores"] for s in summaries),
        "iterations_with_missing_scores": sum(
            s["iterations_with_missing_scores"] for s in summaries
        ),
    }


def write_seed_files(outcome: dict[str, Any], folder: Path) -> None:
    """iterations.jsonl, criteria.json, criteria.md, summary.json; each written then renamed."""
    folder.mkdir(parents=True, exist_ok=True)
    criteria: Criteria = outcome["criteria"]
    files = {
        "iterations.jsonl": "".join(json.dumps(it.row()) + "\n" for it in outcome["iterations"]),
        "criteria.json": json.dumps(criteria.to_dict(), indent=2),
        "criteria.md": criteria_markdown(criteria),
        "summary.json": json.dumps(outcome["summary"], indent=2),
    }
    for name, text in files.items():
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(folder / name)


def criteria_markdown(criteria: Criteria) -> str:
    lines = ["# Cluster-agent criteria", ""]
    for c in criteria.interleaved():
        lines += [
            f"## {c.name} ({c.kind})",
            "",
            f"- definition: {c.definition}",
            f"- guidance: {c.guidance}",
            "",
        ]
    lines += ["## As given to the clusterer", "", criteria.as_prompt_text(), ""]
    return "\n".join(lines)


def log_to_tracker(
    tracker: Any,
    outcomes: dict[int, dict[str, Any]],
    metrics: dict[str, float],
    prompts: dict[str, str],
) -> None:
    tracker.log_metrics(metrics)
    tracker.log_dict(prompts, "cluster_agent/prompts.json")
    for seed, o in outcomes.items():
        base = f"cluster_agent/seed_{seed}"
        tracker.log_text(
            "".join(json.dumps(it.row()) + "\n" for it in o["iterations"]),
            f"{base}/iterations.jsonl",
        )
        tracker.log_dict(o["criteria"].to_dict(), f"{base}/criteria.json")
        tracker.log_text(criteria_markdown(o["criteria"]), f"{base}/criteria.md")
        tracker.log_dict(o["summary"], f"{base}/summary.json")


def usage_delta(after: LLMUsage, before: LLMUsage) -> LLMUsage:
    """What this compute call cost on a runner shared with other calls."""
    return LLMUsage(
        **{
            f.name: getattr(after, f.name) - getattr(before, f.name)
            for f in dataclasses.fields(LLMUsage)
        }
    )
