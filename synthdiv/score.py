"""The score stage: one corpus in, every selected diversity metric (value ± CI) out, in MLflow.

Flow: read + validate the corpus (rejects quarantined and counted) → embeddings once, on demand,
through the Ray Data pipeline → each metric → a table, a plot and per-metric details. A metric
that fails is recorded as failed and the others still run: nothing computed is lost.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from synthdiv.config import CorpusConfig, RuntimeConfig, StrictModel
from synthdiv.corpus import Corpus, example_corpus_path, read_corpus
from synthdiv.embed import EmbedConfig, LazyEmbeddings
from synthdiv.errors import EngineCrashError
from synthdiv.metrics import MetricContext, MetricResult, available, check_selection, create
from synthdiv.metrics.base import close_resources
from synthdiv.progress import ProgressFn, no_progress
from synthdiv.report_plots import plot_scores
from synthdiv.shards import SUCCESS, filesystem, is_remote, write_json_atomic
from synthdiv.stage import BaseStage, StageContext, StageResult, run_stage

# Metrics that need settings no default can supply (a second LM) are opt-in.
OPT_IN_METRICS = frozenset({"perplexity_gap"})
METRIC_PREFIX = "div"


def default_metrics() -> dict[str, dict[str, Any]]:
    return {name: {} for name in available() if name not in OPT_IN_METRICS}


class ScoreConfig(StrictModel):
    # the name labels the run; the same corpus scored under two names is one job (a ratio study's
    # variants share one synthetic corpus: it is scored once)
    IDENTITY_EXCLUDE: ClassVar[frozenset[str]] = frozenset({"name"})
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    corpus: CorpusConfig = Field(default_factory=lambda: CorpusConfig(path=example_corpus_path()))
    name: str | None = Field(None, description="Corpus name in MLflow; default: file stem.")
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    metrics: dict[str, dict[str, Any]] = Field(
        default_factory=default_metrics,
        description="metric name → its params. Default: every registered metric except "
        f"{sorted(OPT_IN_METRICS)}.",
    )
    seed: int = 0
    n_seeds: int = Field(
        3, ge=1, description="Seeded subsamples every metric is averaged over (paper: 10)."
    )
    sample_size: int | None = Field(
        2000,
        gt=0,
        description="Documents per seeded subsample, the same for every size-dependent metric so "
        "corpora of different sizes compare (None = the whole corpus).",
    )
    ci_resamples: int = Field(
        200,
        ge=2,
        description="Half-sample replicates behind the interval of the cheap metrics (lexical, "
        "Vendi, pairwise cosine); costly ones use the t-interval over n_seeds.",
    )
    confidence: float = Field(0.95, gt=0, lt=1)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return check_selection(value)


def metric_keys(name: str) -> dict[str, str]:
    base = f"{METRIC_PREFIX}.{name}"
    return {k: f"{base}.{k}" for k in ("value", "ci_low", "ci_high", "n", "seconds")}


class ScoreStage(BaseStage):
    name: ClassVar[str] = "score"

    def run(self, ctx: StageContext) -> StageResult:
        cfg = self.config
        corpus, report = read_corpus(cfg.corpus, quarantine_dir=f"{ctx.output_dir}/quarantine")
        name = cfg.name or Path(cfg.corpus.path.rstrip("/")).stem
        ctx.tracker.log_dataset(
            name=name, digest=corpus.digest, source=cfg.corpus.path, n_rows=len(corpus)
        )
        ctx.tracker.set_tags(
            {"synthdiv.corpus_name": name, "synthdiv.corpus_source": cfg.corpus.path}
        )
        ctx.tracker.log_metrics(
            {
                "corpus.n_in": report.n_in,
                "corpus.n_ok": report.n_ok,
                "corpus.n_rejected": report.n_rejected,
            }
            | {f"corpus.rejected.{k}": v for k, v in report.reasons.items()}
        )
        finished = _finished_scores(ctx.output_dir, corpus.digest)
        if finished is not None:  # this job scored this very corpus before: its marker says so
            ctx.tracker.log_metrics(finished["metrics"])
            return _result(finished, report, name)
        metric_ctx = MetricContext(
            seed=cfg.seed,
            n_seeds=cfg.n_seeds,
            sample_size=cfg.sample_size,
            n_resamples=cfg.ci_resamples,
            confidence=cfg.confidence,
            work_dir=Path(ctx.output_dir)
            if not is_remote(ctx.output_dir)
            else Path(".synthdiv/work"),
            embeddings=LazyEmbeddings(corpus, cfg.embed, f"{ctx.output_dir}/embeddings"),
            tracker=ctx.tracker,
            progress=self.progress,
        )
        try:
            rows, failures, values = self._compute_all(corpus, metric_ctx, ctx)
        finally:
            close_resources(metric_ctx.resources)
        artifacts = _write_report(rows, failures, Path(metric_ctx.work_dir) / "report", name)
        if failures:
            ctx.tracker.set_tags({"synthdiv.failed_metrics": ",".join(sorted(failures))})
        finished = {
            # The scores are part of the result (not only logged) so a study feeds the same
            # numbers downstream whether the stage ran now or was reused.
            "metrics": values
            | {"score.metrics_ok": len(rows), "score.metrics_failed": len(failures)},
            "rows": rows,
            "failures": failures,
            "dataset_digest": corpus.digest,
            "scores_json": str(artifacts / "scores.json"),
        }
        if not failures:  # a failed metric is worth another try on a rerun
            write_json_atomic(_marker(ctx.output_dir), finished)
        result = _result(finished, report, name)
        result.artifacts = {"report": artifacts}
        return result

    def _compute_all(
        self, corpus: Corpus, metric_ctx: MetricContext, ctx: StageContext
    ) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, float]]:
        """Every selected metric in turn; a failure is recorded and the others still run."""
        metrics = self.config.metrics
        rows, failures, values = [], {}, {}
        for i, (metric_name, params) in enumerate(metrics.items()):
            self.progress("metrics", i, len(metrics))
            result, error = _compute(metric_name, params, corpus, metric_ctx)
            if error is not None:
                failures[metric_name] = error
                ctx.tracker.set_tags(
                    {f"synthdiv.metric_error.{metric_name}": error.splitlines()[-1][:4000]}
                )
                continue
            rows.append(result.as_row())
            values.update(_metric_values(result))
            ctx.tracker.log_metrics(_metric_values(result))  # now, not at the end: nothing lost
            ctx.tracker.set_tags(
                {
                    f"{METRIC_PREFIX}.{metric_name}.higher_is_more_diverse": str(
                        result.higher_is_more_diverse
                    ).lower()
                }
            )
            ctx.tracker.log_dict(
                _jsonable(result.details | {"per_seed": result.per_seed}),
                f"metrics/{metric_name}.json",
            )
            for artifact_dir, path in result.artifacts.items():
                ctx.tracker.log_artifact(path, artifact_dir)
        self.progress("metrics", len(metrics), len(metrics))
        return rows, failures, values


def _compute(
    name: str, params: dict[str, Any], corpus: Corpus, ctx: MetricContext
) -> tuple[MetricResult | None, str | None]:
    started = time.perf_counter()
    try:
        result = create(name, **(params or {})).compute(corpus, ctx)
    except EngineCrashError:  # a dead engine is the stage's failure, not one metric's
        raise
    except Exception:  # one broken metric must not lose the others' results
        return None, traceback.format_exc(limit=5)
    result.seconds = result.seconds or time.perf_counter() - started
    return result, None


def _metric_values(result: MetricResult) -> dict[str, float]:
    keys = metric_keys(result.name)
    return {
        keys["value"]: result.value,
        keys["ci_low"]: result.ci_low,
        keys["ci_high"]: result.ci_high,
        keys["n"]: result.n,
        keys["seconds"]: result.seconds,
    }


def _jsonable(obj: Any) -> Any:
    return json.loads(
        json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    )


def _marker(output_dir: str) -> str:
    return f"{output_dir.rstrip('/')}/{SUCCESS}"


def _finished_scores(output_dir: str, digest: str) -> dict[str, Any] | None:
    """What a finished run of this job recorded, if it scored a corpus with this digest: a rerun
    (the MLflow server down, or the run deleted) then costs no LLM call."""
    fs, path = filesystem(_marker(output_dir))
    if not fs.exists(path):
        return None
    finished = json.loads(fs.cat_file(path))
    return finished if finished.get("dataset_digest") == digest else None


def _result(finished: dict[str, Any], report: Any, name: str) -> StageResult:
    return StageResult(
        metrics=finished["metrics"],
        tables={"scores": finished["rows"]},
        outputs={"scores": finished["scores_json"], "dataset_digest": finished["dataset_digest"]},
        extra={
            "rows": finished["rows"],
            "failures": finished["failures"],
            "validation": report,
            "corpus_name": name,
        },
    )


def _write_report(
    rows: list[dict[str, Any]], failures: dict[str, str], out: Path, name: str
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(
        json.dumps({"corpus": name, "scores": rows, "failures": failures}, indent=2)
    )
    lines = ["| metric | value | 95% CI | n | higher = more diverse |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['metric']} | {r['value']:.4g} | "
        f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}] | {r['n']} | "
        f"{'yes' if r['higher_is_more_diverse'] else 'no'} |"
        for r in rows
    ]
    lines += [f"| {m} | failed | | | |" for m in failures]
    (out / "scores.md").write_text("\n".join(lines) + "\n")
    if rows:
        plot_scores(rows, out / "scores.png", title=f"Diversity of {name}")
    return out


def score_corpus(
    config: ScoreConfig, progress: ProgressFn = no_progress, parent: Any = None
) -> StageResult:
    """Score one corpus as a tracked stage; the library entry point behind ``synthdiv score``."""
    return run_stage(ScoreStage(config, progress), parent=parent)
