"""The generate stage: plan → per-shard LLM calls → validate → render → shards → dedup → manifest.

Each shard is generated, validated and rendered as a unit, then written atomically with a marker
(its rejects first, so a marked shard always has its rejects). A rerun skips marked shards and
the response cache answers any request already paid for, so a killed job resumes without losing
or duplicating a sample. ``manifest.json`` and ``_SUCCESS`` are written last.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, ClassVar

from synthdiv.config import LLMConfig
from synthdiv.corpus.format import MANIFEST, digest_documents
from synthdiv.errors import SynthdivError
from synthdiv.generate.config import DedupConfig, GenerateConfig
from synthdiv.generate.dedup import find_duplicates
from synthdiv.generate.plan import GenerationPlan, GenerationTask, build_plan
from synthdiv.generate.preflight import check_generators
from synthdiv.generate.quality import QUALITY_PREFIX
from synthdiv.generate.render import render
from synthdiv.generate.shardio import Doc, docs_writer, read_all, read_shard
from synthdiv.generate.validate import parse_sample, sample_validator
from synthdiv.llm import LLMRunner, build_runner
from synthdiv.llm.base import ChatResponse
from synthdiv.progress import ProgressFn, no_progress
from synthdiv.shards import ShardedOutput
from synthdiv.stage import BaseStage, StageContext, StageResult

RunnerFactory = Callable[[LLMConfig, str], LLMRunner]
SHARD_COUNTS = (
    "n_requested",
    "n_ok",
    "n_rejected",
    "n_rejected_quality",
    "n_invalid_json",
    "n_engine_errors",
    "prompt_tokens",
    "completion_tokens",
    "retries",
)


class GenerateError(SynthdivError):
    """The generate stage produced nothing usable; the message gives the counts and the rejects."""


def reject_counts(rejects: list[Doc]) -> dict[str, int]:
    """Why samples were rejected: no answer at all (engine or transport error), invalid JSON,
    the quality gate; the rest of ``n_rejected`` broke the sample schema."""
    counts = {"n_rejected_quality": 0, "n_invalid_json": 0, "n_engine_errors": 0}
    for reject in rejects:
        if not reject["raw"]:
            counts["n_engine_errors"] += 1
        elif QUALITY_PREFIX in reject["error"]:
            counts["n_rejected_quality"] += 1
        elif "invalid JSON" in reject["error"] or "JSON answer is not" in reject["error"]:
            counts["n_invalid_json"] += 1
    return counts


def no_valid_samples(totals: dict[str, int], rejects_uri: str) -> GenerateError:
    other = (
        totals["n_rejected"]
        - totals["n_rejected_quality"]
        - totals["n_invalid_json"]
        - totals["n_engine_errors"]
    )
    return GenerateError(
        f"generate produced no valid samples: {totals['n_requested']} requested, "
        f"{totals['n_requested'] - totals['n_engine_errors']} answered, "
        f"{totals['n_invalid_json']} invalid JSON, {totals['n_rejected_quality']} rejected by the "
        f"quality gate, {other} not of the sample schema, {totals['n_engine_errors']} engine "
        f"errors (no answer). Each reject's reason and raw answer: {rejects_uri}"
    )


def to_documents(
    plan: GenerationPlan,
    tasks: list[GenerationTask],
    answers: list[ChatResponse],
    model_ids: dict[int, str],
) -> tuple[list[Doc], list[Doc]]:
    """Valid answers become rendered documents; the rest become rejects with the raw output."""
    docs, rejects = [], []
    for task, answer in zip(tasks, answers, strict=True):
        meta = plan.task_meta(task)
        meta["generator_model"] = model_ids[task.generator]
        sample = parse_sample(answer.parsed) if answer.ok else answer.error or "no answer"
        if isinstance(sample, str):
            rejects.append(
                {
                    "id": task.doc_id,
                    "error": sample,
                    "raw": answer.text,
                    "attempts": answer.attempts,
                    "meta": meta,
                }
            )
            continue
        text, choice = render(sample, plan.config.seed, task.doc_id)
        meta["render"] = asdict(choice)
        meta["sample"] = sample.as_dict()
        docs.append({"id": task.doc_id, "text": text, "meta": meta})
    return docs, rejects


def call_groups(indices: list[int], shard_size: int, requests_per_call: int) -> list[list[int]]:
    """Consecutive shard indices batched so each runner call holds about ``requests_per_call``."""
    per_call = max(1, requests_per_call // shard_size)
    return [indices[i : i + per_call] for i in range(0, len(indices), per_call)]


class GenerateStage(BaseStage):
    """``synthdiv generate`` as a stage. ``max_new_shards`` stops after that many new shards (a
    job split into chunks, and the test hook for resume); the corpus is then left unfinished."""

    name: ClassVar[str] = "generate"

    def __init__(
        self,
        config: GenerateConfig,
        *,
        max_new_shards: int | None = None,
        lineage: dict[str, str] | None = None,
        progress: ProgressFn = no_progress,
        runner_factory: RunnerFactory = build_runner,
    ):
        super().__init__(config, progress)
        self.runner_factory = runner_factory  # seam for reusing a loaded engine (benchmarks)
        self.max_new_shards = max_new_shards
        self.lineage = lineage or {}
        self.plan = build_plan(config)  # bad taxonomy/family/personas fail before Ray or MLflow

    @property
    def needs_ray(self) -> bool:
        """Only an in-process llama.cpp engine runs without Ray."""
        return not all(
            g.llm.backend == "embedded" and g.llm.concurrency == 1 for g in self.config.generators
        )

    def run(self, ctx: StageContext) -> StageResult:
        cfg, plan = self.config, self.plan
        corpus = ShardedOutput(cfg.output.path or f"{ctx.output_dir}/corpus", ext=cfg.output.format)
        rejects = ShardedOutput(f"{ctx.output_dir}/rejects", ext="jsonl")
        corpus.clean_temporaries()
        rejects.clean_temporaries()
        self._log_setup(ctx)
        shards = plan.shards()
        pending = [i for i in range(len(shards)) if not corpus.is_done(i)]
        budget = pending if self.max_new_shards is None else pending[: self.max_new_shards]
        run_stats = self._generate(corpus, rejects, shards, budget) if budget else {}
        totals = self._shard_totals(corpus, len(shards))
        metrics = {**run_stats, **{f"generate.{k}": float(v) for k, v in totals.items()}}
        outputs = {"corpus": corpus.uri, "rejects": rejects.uri}
        if len(corpus.done_indices()) < len(shards):
            metrics["generate.complete"] = 0.0
            return StageResult(metrics=metrics, outputs=outputs)
        if totals["n_ok"] == 0:  # fail here: a later stage would only see an empty corpus
            ctx.tracker.log_metrics(metrics)
            raise no_valid_samples(totals, rejects.uri)
        metrics.update(self._finalize(ctx, corpus, totals))
        return StageResult(metrics=metrics, outputs=outputs)

    # -- generation ------------------------------------------------------------------------
    def _generate(
        self,
        corpus: ShardedOutput,
        rejects: ShardedOutput,
        shards: list[list[GenerationTask]],
        indices: list[int],
    ) -> dict[str, float]:
        cfg = self.config
        check_generators(cfg.generators)  # unreachable endpoints fail before any work
        cache_dir = f"{cfg.runtime.storage_uri.rstrip('/')}/llm_cache"
        runners: dict[int, LLMRunner] = {}
        started = time.perf_counter()
        try:
            n_done = 0
            for group in call_groups(indices, cfg.output.shard_size, cfg.requests_per_call):
                self._generate_shards(
                    [(i, shards[i]) for i in group], runners, corpus, rejects, cache_dir
                )
                n_done += len(group)
                self.progress("generate shards", n_done, len(indices))
        finally:
            for runner in runners.values():
                runner.close()
        seconds = time.perf_counter() - started
        usage = [r.usage for r in runners.values()]
        done_samples = sum(len(shards[i]) for i in indices)
        out_tokens = sum(u.completion_tokens for u in usage)
        return {
            "run.seconds": seconds,
            "run.shards": float(len(indices)),
            "run.samples_per_s": done_samples / seconds if seconds else 0.0,
            "run.output_tokens_per_s": out_tokens / seconds if seconds else 0.0,
            "run.llm_calls": float(sum(u.calls for u in usage)),
            "run.cache_hits": float(sum(u.cache_hits for u in usage)),
            "run.prompt_tokens": float(sum(u.prompt_tokens for u in usage)),
            "run.completion_tokens": float(out_tokens),
        }

    def _generate_shards(
        self,
        group: list[tuple[int, list[GenerationTask]]],
        runners: dict[int, LLMRunner],
        corpus: ShardedOutput,
        rejects: ShardedOutput,
        cache_dir: str,
    ) -> None:
        """One runner call per generator for several shards (engines and Ray Data pipelines work
        best on large batches), then each shard written on its own."""
        cfg = self.config
        by_generator: dict[int, list[GenerationTask]] = defaultdict(list)
        for _, shard in group:
            for task in shard:
                by_generator[task.generator].append(task)
        answers: dict[str, ChatResponse] = {}
        for gen, tasks in sorted(by_generator.items()):
            if gen not in runners:
                runners[gen] = self.runner_factory(cfg.generators[gen].llm, cache_dir)
            replies = runners[gen].run(
                [self.plan.request(t) for t in tasks], validate=sample_validator(cfg.quality)
            )
            answers.update({t.doc_id: a for t, a in zip(tasks, replies, strict=True)})
        model_ids = {g: r.backend.model_id for g, r in runners.items()}
        for index, shard in group:
            replies = [answers[t.doc_id] for t in shard]
            docs, bad = to_documents(self.plan, shard, replies, model_ids)
            counts = {
                "n_requested": len(shard),
                "n_ok": len(docs),
                "n_rejected": len(bad),
                **reject_counts(bad),
                "prompt_tokens": sum(a.prompt_tokens for a in replies),
                "completion_tokens": sum(a.completion_tokens for a in replies),
                "retries": sum(a.attempts - 1 for a in replies),
            }
            rejects.write(index, docs_writer(bad, "jsonl"), meta=counts)
            corpus.write(index, docs_writer(docs, cfg.output.format), meta=counts)

    @staticmethod
    def _shard_totals(corpus: ShardedOutput, n_shards: int) -> dict[str, int]:
        """Counts summed over every finished shard's marker: right across resumed runs."""
        totals = dict.fromkeys(SHARD_COUNTS, 0)
        for index in corpus.done_indices():
            meta = corpus.read_marker(index)
            for key in SHARD_COUNTS:
                totals[key] += int(meta.get(key, 0))
        totals["shards_done"] = len(corpus.done_indices())
        totals["shards_total"] = n_shards
        return totals

    # -- finishing -------------------------------------------------------------------------
    def _finalize(
        self, ctx: StageContext, corpus: ShardedOutput, totals: dict[str, int]
    ) -> dict[str, float]:
        cfg = self.config
        docs = read_all(corpus)
        report = find_duplicates([d["text"] for d in docs], cfg.dedup)
        dropped = report.drop(cfg.dedup.filter)
        if dropped and not corpus.complete:
            docs = self._filter(corpus, docs, dropped, cfg.dedup)
        ids, texts = [d["id"] for d in docs], [d["text"] for d in docs]
        digest = digest_documents(ids, texts)
        manifest = {
            "n_docs": len(docs),
            "digest": digest,
            "format": cfg.output.format,
            "shards": self._shard_list(corpus),
            "prompt_id": self.plan.template.id,
            "generators": [g.label for g in cfg.generators],
            "counts": totals,
            "dedup": {
                **report.metrics(prefix=""),
                "filter": cfg.dedup.filter,
                "dropped": len(dropped) if cfg.dedup.filter != "none" else 0,
            },
            "lineage": self.lineage,
        }
        if not corpus.complete:
            corpus.write_json(MANIFEST, manifest)
            corpus.mark_complete({"n_docs": len(docs), "digest": digest})
        name = cfg.name or ctx.job_id
        ctx.tracker.log_dataset(
            name=name, digest=digest, source=corpus.uri, n_rows=len(docs), context="output"
        )
        ctx.tracker.set_tags({"synthdiv.output_digest": digest})
        ctx.tracker.log_dict(manifest, "generate/manifest.json")
        metrics = {"generate.n_docs": float(len(docs)), **report.metrics()}
        requested = max(totals["n_requested"], 1)
        metrics["generate.failure_rate"] = totals["n_rejected"] / requested
        metrics["generate.complete"] = 1.0
        return metrics

    @staticmethod
    def _shard_list(corpus: ShardedOutput) -> list[dict[str, Any]]:
        """The corpus manifest's shard list (the layout synthdiv.corpus reads back)."""
        rows = []
        for index in sorted(corpus.done_indices()):
            marker = corpus.read_marker(index)
            n_docs = marker["n_ok"] - marker.get("dedup_dropped", 0)
            rows.append({"path": posixpath.basename(corpus.shard_path(index)), "n_docs": n_docs})
        return rows

    @staticmethod
    def _filter(
        corpus: ShardedOutput, docs: list[Doc], dropped: set[int], cfg: DedupConfig
    ) -> list[Doc]:
        """Rewrite shards without the duplicates (idempotent: see dedup.py)."""
        drop_ids = {docs[i]["id"] for i in dropped}
        kept_all: list[Doc] = []
        for index in sorted(corpus.done_indices()):
            shard_docs = read_shard(corpus, index)
            kept = [d for d in shard_docs if d["id"] not in drop_ids]
            if len(kept) != len(shard_docs):
                meta = {**corpus.read_marker(index), "dedup_dropped": len(shard_docs) - len(kept)}
                corpus.write(index, docs_writer(kept, corpus.ext), meta=meta)
            kept_all.extend(kept)
        return kept_all

    def _log_setup(self, ctx: StageContext) -> None:
        plan = self.plan
        ctx.tracker.log_params(
            {
                "prompt.id": plan.template.id,
                "prompt.source": plan.template.source.rsplit("/", 1)[-1],
                "plan.n_samples": len(plan.tasks),
                "plan.n_shards": len(plan.shards()),
                "plan.generators": [g.label for g in self.config.generators],
            }
        )
        ctx.tracker.log_text(json.dumps(plan.schema, indent=2), "generate/response_schema.json")
        ctx.tracker.log_text(
            "".join(json.dumps(t.as_dict()) + "\n" for t in plan.topics), "generate/topics.jsonl"
        )
        tags = {"synthdiv.prompt_id": plan.template.id, "synthdiv.family": plan.template.family}
        tags.update({f"synthdiv.lineage.{k}": v for k, v in self.lineage.items()})
        ctx.tracker.set_tags(tags)


def generate_corpus(
    config: GenerateConfig,
    *,
    max_new_shards: int | None = None,
    progress: ProgressFn = no_progress,
    parent: Any = None,
    runner_factory: RunnerFactory = build_runner,
) -> StageResult:
    """Generate one corpus as a tracked stage; the library entry point behind ``synthdiv
    generate``."""
    from synthdiv.stage import run_stage

    stage = GenerateStage(
        config, max_new_shards=max_new_shards, progress=progress, runner_factory=runner_factory
    )
    return run_stage(stage, parent=parent)
