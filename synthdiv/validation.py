"""``validate-metrics``: does each diversity metric rank corpora of *known* diversity correctly?

The paper never validated its metric on corpora whose diversity is known (docs/method.md §1). This
stage builds such corpora from labelled text and reports, per metric, Spearman's rho between the
metric and the known order, sign-corrected by the metric's direction (+1 = ranks perfectly):

- ``topics``: equal-size corpora drawn from 1, 2, 4, … labels (more labels = more diverse);
- ``duplication`` / ``near_duplicates``: a fixed corpus in which a growing fraction of the
  documents is replaced by exact / word-edited copies of the rest (more copies = less diverse);
- ``mixture``: a fixed label count in unequal shares (known order: the mixture's entropy);
- controls, whose diversity is fixed while a nuisance grows: ``length`` (documents cut shorter)
  and ``injection`` (prompt-injection canaries). Their rho says how much a metric follows the
  nuisance (0 is ideal), with the shift in the metric's own CI widths and, for an LLM judge, the
  share of answers that obeyed the canary (:mod:`synthdiv.validation_stats`).

Every series is rebuilt ``repeats`` times with different seeds; the points of all repeats are
pooled and rho gets a paired-bootstrap interval (:func:`synthdiv.analysis.correlate`). Values are
written per repeat as shards with completion markers, so a rerun skips finished repeats.

The corpora are built by :mod:`synthdiv.validation_corpora`; the report (markdown, CSV, plot) is
written by :mod:`synthdiv.validation_report`.
"""

from __future__ import annotations

import json
import math
import time
import traceback
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from synthdiv.config import CorpusConfig, RuntimeConfig, StrictModel
from synthdiv.corpus import Corpus, example_corpus_path, read_corpus
from synthdiv.embed import EmbedConfig, LazyEmbeddings
from synthdiv.metrics import MetricContext, available, check_selection, create
from synthdiv.metrics.cluster_agent import close_resources
from synthdiv.progress import ProgressFn, no_progress
from synthdiv.shards import ShardedOutput, is_remote
from synthdiv.stage import BaseStage, StageContext, StageResult, run_stage
from synthdiv.validation_corpora import (
    BuiltCorpus,
    Series,
    SeriesSource,
    default_topic_levels,
    duplication_series,
    group_by_label,
    injection_series,
    length_series,
    mixture_series,
    near_duplicate_series,
    topic_series,
)
from synthdiv.validation_report import write_report
from synthdiv.validation_stats import below_min_rho, control_rows, one_cluster_share
from synthdiv.validation_stats import correlation_rows as _correlations

LOCAL_EMBED_MAX_DOCS = 5000
# Cheap enough to run on every built corpus of every repeat on a laptop. Model-based metrics,
# context length (not a diversity measure) and the cluster-agent (LLM calls) are opt-in.
DEFAULT_METRICS = (
    "distinct_n", "ngram_diversity", "self_repetition", "compression_ratio",
    "vendi", "pairwise_cosine_distance", "remote_clique", "kmeans",
)  # fmt: skip


def default_metrics() -> dict[str, dict[str, Any]]:
    return {name: {} for name in DEFAULT_METRICS if name in available()}


class ValidateMetricsConfig(StrictModel):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    labelled: CorpusConfig = Field(
        default_factory=lambda: CorpusConfig(path=example_corpus_path()),
        description="Labelled documents (default: the packaged example, 12 topics x 20).",
    )
    label_field: str = Field("meta.topic", description="Dotted path of the label in each document.")
    metrics: dict[str, dict[str, Any]] = Field(
        default_factory=default_metrics,
        description="metric name → params (see `synthdiv metrics`).",
    )
    series: list[Series] = Field(
        default_factory=lambda: [
            "topics", "duplication", "near_duplicates", "mixture", "length", "injection"
        ],
        min_length=1,
        description="Series to build (docs/validate_metrics.md says what each isolates).",
    )  # fmt: skip
    topic_levels: list[int] | None = Field(
        None, description="Label counts of the topics series; None = 1, 2, 4, … up to all labels."
    )
    duplication_levels: list[float] = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75], description="Fractions of copied documents."
    )
    near_duplicate_levels: list[float] = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75],
        description="Fractions of documents replaced by word-edited copies.",
    )
    near_duplicate_edit_rate: float = Field(
        0.15, gt=0, le=1, description="Chance that each word of a copy is edited."
    )
    mixture_labels: int = Field(4, ge=2, description="Labels in every mixture-series corpus.")
    mixture_levels: list[float] = Field(
        default_factory=lambda: [0.25, 0.4, 0.55, 0.7, 0.85],
        description="Share of the dominant label (the others split the rest evenly).",
    )
    length_levels: list[float] = Field(
        default_factory=lambda: [0.25, 0.5, 0.75, 1.0],
        description="Fraction of each document's words kept (length control).",
    )
    injection_levels: list[float] = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 1.0],
        description="Share of documents carrying a prompt-injection canary.",
    )
    corpus_size: int = Field(20, ge=4, description="Documents in every built corpus.")
    repeats: int = Field(3, ge=1, description="Rebuilds of each series with new seeds.")
    seed: int = 0
    metric_seeds: int = Field(
        2, ge=1, description="ctx.n_seeds of each metric call (their own CIs are not used here)."
    )
    n_boot: int = Field(1000, ge=100)
    confidence: float = Field(0.95, gt=0, lt=1)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    # A pass bar on the results, not an input to them: excluded from the dump, hence from the job
    # id (config digest) and the logged params, so moving the bar reuses the computed values
    # (and the cluster-agent's LLM cache, which lives under the job's output) instead of
    # recomputing them, and never conflicts with the params already logged on the reused run.
    min_rho: float | None = Field(
        None,
        ge=-1,
        le=1,
        exclude=True,
        description="Fail (non-zero exit) when any metric's rho on any series is below this, or "
        "undefined; None = no bar.",
    )
    embed_runner: Literal["auto", "ray", "local"] = Field(
        "auto",
        description="'ray' = the Ray Data embed pipeline (resumable shards), 'local' = one "
        f"in-process model; 'auto' = local below {LOCAL_EMBED_MAX_DOCS} labelled documents, "
        "where starting an actor pool costs more than the encoding.",
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return check_selection(value)

    @field_validator("duplication_levels", "near_duplicate_levels")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if len(value) < 2 or any(not 0 <= v < 1 for v in value):
            raise ValueError("give at least two duplication fractions in [0, 1)")
        return sorted(set(value))

    @field_validator("mixture_levels", "length_levels", "injection_levels")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        if len(set(value)) < 2 or any(not 0 <= v <= 1 for v in value):
            raise ValueError("give at least two distinct shares in [0, 1]")
        return sorted(set(value))


# -- the corpora of one repeat (builders in synthdiv.validation_corpora) --------------------------
def build_corpora(
    corpus: Corpus, groups: dict[str, list[int]], cfg: ValidateMetricsConfig, repeat: int
) -> list[BuiltCorpus]:
    rng = np.random.default_rng([cfg.seed, repeat])
    src = SeriesSource(corpus, groups, cfg.corpus_size, rng, repeat)
    built: list[BuiltCorpus] = []
    if "topics" in cfg.series:
        built += topic_series(src, cfg.topic_levels or default_topic_levels(len(groups)))
    if "duplication" in cfg.series:
        built += duplication_series(src, cfg.duplication_levels)
    if "near_duplicates" in cfg.series:
        built += near_duplicate_series(src, cfg.near_duplicate_levels, cfg.near_duplicate_edit_rate)
    if "mixture" in cfg.series:
        built += mixture_series(src, cfg.mixture_labels, cfg.mixture_levels)
    if "length" in cfg.series:
        built += length_series(src, cfg.length_levels)
    if "injection" in cfg.series:
        built += injection_series(src, cfg.injection_levels)
    return built


# -- embeddings for every built corpus, from one pass over the labelled set ----------------------
# -- the stage -----------------------------------------------------------------------------------
class ValidateMetricsStage(BaseStage):
    name: ClassVar[str] = "validate_metrics"

    def run(self, ctx: StageContext) -> StageResult:
        cfg = self.config
        corpus, report = read_corpus(cfg.labelled, quarantine_dir=f"{ctx.output_dir}/quarantine")
        groups, unlabelled = group_by_label(corpus, cfg.label_field)
        if len(groups) < 2:
            raise ValueError(
                "validate-metrics needs >= 2 distinct labels "
                f"in {cfg.label_field!r}; found {len(groups)}"
            )
        ctx.tracker.log_dataset(
            name="labelled", digest=corpus.digest, source=cfg.labelled.path, n_rows=len(corpus)
        )
        ctx.tracker.log_metrics(
            report.metrics() | {"validate.labels": len(groups), "validate.unlabelled": unlabelled}
        )
        local = (
            Path(ctx.output_dir)
            if not is_remote(ctx.output_dir)
            else Path(".synthdiv/work/validate_metrics")
        )
        local_embed = cfg.embed_runner == "local" or (
            cfg.embed_runner == "auto" and len(corpus) < LOCAL_EMBED_MAX_DOCS
        )
        embeddings = LazyEmbeddings(corpus, cfg.embed, f"{ctx.output_dir}/embeddings", local_embed)
        resources: dict[Any, Any] = {}
        shards = ShardedOutput(f"{ctx.output_dir}/values", "jsonl")
        shards.clean_temporaries()
        rows: list[dict[str, Any]] = []
        try:
            for repeat in range(cfg.repeats):
                self.progress("repeats", repeat, cfg.repeats)
                if not shards.is_done(repeat):
                    built = build_corpora(corpus, groups, cfg, repeat)
                    embeddings.expect([t for b in built for t in b.corpus.texts])
                    fresh = [value_row(b, name, params, cfg, local, embeddings, resources)
                             for b in built for name, params in cfg.metrics.items()]  # fmt: skip
                    shards.write(
                        repeat,
                        lambda fh, r=fresh: fh.write(jsonl(r).encode()),
                        {"rows": len(fresh)},
                    )
                rows += read_jsonl(shards, repeat)
            self.progress("repeats", cfg.repeats, cfg.repeats)
        finally:
            close_resources(resources)
        shards.mark_complete({"repeats": cfg.repeats})
        correlations = correlation_rows(rows, cfg)
        controls = control_rows(rows, directions(cfg), list(cfg.series))
        report_dir = write_report(correlations, rows, local / "report", controls)
        failed = sum(1 for r in rows if r["error"])
        return StageResult(
            metrics={
                f"rho.{c['metric']}.{c['series']}": c["rho"]
                for c in correlations
                if c["rho"] is not None
            }
            | {
                f"shift_ci_widths.{c['metric']}.{c['series']}": c["shift_ci_widths"]
                for c in controls
                if c["shift_ci_widths"] is not None
            }
            | {
                f"one_cluster_share.{c['metric']}.{c['series']}_{end}": c[f"one_cluster_{end}"]
                for c in controls
                for end in ("low", "high")
                if c.get(f"one_cluster_{end}") is not None
            }
            | {"validate.values": len(rows), "validate.failed_values": failed},
            tables={"rank_correlation": correlations, "controls": controls, "values": rows},
            artifacts={"validation": report_dir},
            outputs={"report": str(report_dir), "values": f"{ctx.output_dir}/values"},
            extra={"correlations": correlations, "controls": controls, "rows": rows},
        )


def value_row(
    built: BuiltCorpus,
    name: str,
    params: dict[str, Any],
    cfg: ValidateMetricsConfig,
    work: Path,
    embeddings: LazyEmbeddings,
    resources: dict[Any, Any],
) -> dict[str, Any]:
    """One metric on one built corpus; a failure is recorded (value NaN), never raised."""
    ctx = MetricContext(
        seed=cfg.seed + built.repeat, n_seeds=cfg.metric_seeds, confidence=cfg.confidence,
        work_dir=work / "metrics", embeddings=embeddings, resources=resources,
    )  # fmt: skip
    row = {"series": built.series, "level": built.level, "order": built.order,
           "repeat": built.repeat, "metric": name, "n_docs": len(built.corpus),
           "value": math.nan, "error": None}  # fmt: skip
    started = time.perf_counter()
    try:
        metric = create(name, **(params or {}))
        result = metric.compute(built.corpus, ctx)
        row |= {
            "value": float(result.value),
            "ci_low": _float_or_none(result.ci_low),
            "ci_high": _float_or_none(result.ci_high),
            "higher_is_more_diverse": metric.higher_is_more_diverse,
            "one_cluster_share": one_cluster_share(result.details),
        }
    except Exception as err:  # noqa: BLE001 — one failing metric must not lose the others
        row["error"] = f"{type(err).__name__}: {err}".splitlines()[0][:500]
        row["traceback"] = traceback.format_exc(limit=3)
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def directions(cfg: ValidateMetricsConfig) -> dict[str, int]:
    """metric → +1 if higher values mean more diverse, else -1."""
    return {
        name: 1 if create(name, **(params or {})).higher_is_more_diverse else -1
        for name, params in cfg.metrics.items()
    }


def correlation_rows(
    rows: list[dict[str, Any]], cfg: ValidateMetricsConfig
) -> list[dict[str, Any]]:
    """Per metric × series: Spearman of the known order with the direction-corrected value."""
    return _correlations(
        rows, directions(cfg), list(cfg.series),
        n_boot=cfg.n_boot, seed=cfg.seed, confidence=cfg.confidence,
    )  # fmt: skip


def _float_or_none(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, allow_nan=True) + "\n" for r in rows)


def read_jsonl(shards: ShardedOutput, index: int) -> list[dict[str, Any]]:
    with shards.fs.open(shards.shard_path(index), "r") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def validate_metrics(
    config: ValidateMetricsConfig, progress: ProgressFn = no_progress, parent: Any = None
) -> StageResult:
    """Run the validation as a tracked stage (the library entry point behind the CLI);
    ``extra["below_min_rho"]`` lists the rows that miss ``config.min_rho``."""
    result = run_stage(ValidateMetricsStage(config, progress), parent=parent)
    result.extra["below_min_rho"] = below_min_rho(result.extra["correlations"], config.min_rho)
    return result
