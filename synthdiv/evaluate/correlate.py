"""The correlate stage: a study's score and eval runs from MLflow → correlations, tables, plots.

Joins each eval run to the score runs of the corpus its model was trained on through the
``synthdiv.dataset_digest`` tag that both stages set, then hands plain data to
:mod:`synthdiv.analysis`. Everything it needs is read from MLflow, so ``synthdiv correlate``
reproduces a study's numbers on any machine that can reach the tracking server.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from synthdiv import analysis
from synthdiv.config import RuntimeConfig, StrictModel
from synthdiv.evaluate.correlation_plots import write_plots
from synthdiv.evaluate.stage import TAG_CORPUS_NAME, TAG_MODEL_SIZE, TAG_VARIANT
from synthdiv.shards import is_remote
from synthdiv.stage import BaseStage, StageContext, StageResult, local_artifact_dir, run_stage
from synthdiv.tracking import TAG_DATASET, Tracker, resolve_tracking_uri
from synthdiv.tracking.query import RunRecord, StudyQuery

SCORE_PREFIX = "div."  # the score stage logs div.<metric>.value / .ci_low / .ci_high
DIRECTION_SUFFIX = ".higher_is_more_diverse"  # optional score-run tag: div.<metric>.<suffix>
UNKNOWN = "unknown"


class CorrelateConfig(StrictModel):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    study: str | None = Field(
        None, description="MLflow experiment holding the study; None = runtime.experiment."
    )
    parent_run_id: str | None = Field(
        None, description="Only runs under this parent run (one `synthdiv run`); None = all."
    )
    target: str = Field("eval.avg", description="Eval metric to correlate with (any eval.* key).")
    metrics: list[str] | None = Field(
        None, description="Diversity metrics; None = every one found."
    )
    n_boot: int = Field(2000, ge=100, description="Paired bootstrap resamples over corpora.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    seed: int = 0
    min_points: int = Field(
        analysis.MIN_POINTS_FOR_CI,
        ge=analysis.MIN_POINTS_FOR_CI,
        description="Fewer corpora per panel than this: CI reported as undefined.",
    )
    directions: dict[str, bool] = Field(
        default_factory=dict,
        description="metric → higher_is_more_diverse, overriding MLflow tags and the registry.",
    )
    propagate_stderr: bool = Field(
        True,
        description="Redraw each accuracy from N(accuracy, stderr²) in the bootstrap, the stderr "
        "being the eval run's `<target>_stderr` (all of a panel's, or none, are used).",
    )
    n_permutations: int = Field(
        10_000,
        ge=100,
        description="Monte Carlo permutations for p-values above 8 corpora (exact at ≤ 8).",
    )
    min_corpora_for_claim: int = Field(
        analysis.MIN_CORPORA_FOR_CLAIM,
        ge=analysis.MIN_CORPORA_FOR_CLAIM,
        description="Fewer corpora per panel than this: verdict 'too few corpora', whatever the "
        "CI (with 4, even a perfect ordering has permutation p = 0.083).",
    )


# --------------------------------------------------------------------------- join


def diversity_scores(run: RunRecord) -> dict[str, analysis.Score]:
    scores = {}
    for key, value in run.metrics.items():
        if key.startswith(SCORE_PREFIX) and key.endswith(".value"):
            metric = key[len(SCORE_PREFIX) : -len(".value")]
            base = f"{SCORE_PREFIX}{metric}"
            scores[metric] = analysis.Score(
                value, run.metrics.get(f"{base}.ci_low"), run.metrics.get(f"{base}.ci_high")
            )
    return scores


def stderr_key(target: str) -> str:
    """The eval stage logs each score's stderr beside it: eval.avg → eval.avg_stderr,
    eval.<task>.score → eval.<task>.score_stderr."""
    return f"{target}_stderr"


def join_runs(
    score_runs: list[RunRecord], eval_runs: list[RunRecord], target: str
) -> tuple[list[analysis.Point], list[str]]:
    """Points (one per model) and notes on every run that could not be used, and why.

    Runs come oldest first; a later run for the same corpus (scores) or the same corpus × size
    × variant (evals) supersedes an earlier one, so a rerun replaces instead of double-counting.
    """
    notes: list[str] = []
    by_digest: dict[str, dict[str, analysis.Score]] = {}
    for run in score_runs:
        digest = run.tags.get(TAG_DATASET)
        if not digest:
            notes.append(f"score run {run.run_id}: no {TAG_DATASET} tag, skipped")
            continue
        by_digest.setdefault(digest, {}).update(diversity_scores(run))
    latest: dict[tuple[str, str, str], analysis.Point] = {}
    superseded: Counter[tuple[str, str, str]] = Counter()
    for run in eval_runs:
        digest = run.tags.get(TAG_DATASET)
        if not digest:
            notes.append(f"eval run {run.run_id}: no {TAG_DATASET} tag, skipped")
            continue
        if target not in run.metrics:
            notes.append(f"eval run {run.run_id}: no metric {target!r}, skipped")
            continue
        if not by_digest.get(digest):
            notes.append(f"eval run {run.run_id}: no score run for dataset {digest}, skipped")
            continue
        # One point per trained model: a study's corpus name tells apart models trained on one
        # synthetic corpus mixed at different ratios (same digest, different training data).
        trained_on = run.tags.get(TAG_CORPUS_NAME) or digest
        key = (
            trained_on,
            run.tags.get(TAG_MODEL_SIZE, UNKNOWN),
            run.tags.get(TAG_VARIANT, UNKNOWN),
        )
        if key in latest:
            superseded[key] += 1
        latest[key] = analysis.Point(
            dataset_digest=digest,
            model_size=key[1],
            variant=key[2],
            accuracy=run.metrics[target],
            diversity=by_digest[digest],
            corpus_name=run.tags.get(TAG_CORPUS_NAME),
            eval_run_id=run.run_id,
            accuracy_stderr=run.metrics.get(stderr_key(target)),
        )
    for (trained_on, size, variant), count in superseded.items():
        notes.append(
            f"{count} older eval run(s) of {trained_on} {size}/{variant} superseded by the latest"
        )
    return list(latest.values()), notes


def metric_directions(
    score_runs: list[RunRecord], metrics: list[str], overrides: dict[str, bool]
) -> dict[str, bool]:
    """Direction per metric: config override, else the score run's tag, else the registry."""
    directions: dict[str, bool] = {}
    for run in score_runs:
        for key, value in run.tags.items():
            if key.startswith(SCORE_PREFIX) and key.endswith(DIRECTION_SUFFIX):
                directions[key[len(SCORE_PREFIX) : -len(DIRECTION_SUFFIX)]] = (
                    value.lower() == "true"
                )
    directions |= overrides
    if missing := [m for m in metrics if m not in directions]:
        # The registry imports every metric's dependencies (torch…): only when MLflow is silent.
        from synthdiv.metrics import available, metric_class

        known = set(available())
        directions |= {
            m: bool(metric_class(m).higher_is_more_diverse) for m in missing if m in known
        }
    return directions


# --------------------------------------------------------------------------- outputs


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        if not rows:
            return
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _metric_rows(correlations: list[analysis.Correlation]) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in correlations:
        base = f"corr.{c.metric}.{c.model_size}.{c.variant}"
        out[f"{base}.n"] = c.n
        for name in CORRELATION_METRICS:
            value = getattr(c, name)
            if value is not None:
                out[f"{base}.{name}"] = value
        out[f"{base}.supported"] = float(c.verdict == "supported")
    return out


CORRELATION_METRICS = (
    "spearman",
    "spearman_ci_low",
    "spearman_ci_high",
    "spearman_fisher_low",
    "spearman_fisher_high",
    "spearman_perm_p",
    "pearson",
    "pearson_ci_low",
    "pearson_ci_high",
    "pearson_perm_p",
    "slope",
    "slope_ci_low",
    "slope_ci_high",
)


def verdict_notes(correlations: list[analysis.Correlation]) -> list[str]:
    """One line per verdict and reason, naming its metrics and panels: what correlate says
    about the claim. Metrics with the same panels share a clause, so a study where every panel
    has too few corpora reads as two lines, not one clause per panel."""
    grouped: dict[tuple[str, str], dict[str, list[str]]] = {}
    for c in correlations:
        metrics = grouped.setdefault((c.verdict, c.verdict_reason), {})
        metrics.setdefault(c.metric, []).append(f"{c.model_size}/{c.variant}")
    lines = []
    for (verdict, reason), metrics in sorted(grouped.items()):
        by_panels: dict[tuple[str, ...], list[str]] = {}
        for metric, panels in metrics.items():
            by_panels.setdefault(tuple(sorted(panels)), []).append(metric)
        clauses = [
            f"{', '.join(sorted(names))} in {', '.join(panels)}"
            for panels, names in sorted(by_panels.items())
        ]
        lines.append(f"{verdict} ({reason}): " + "; ".join(clauses))
    return lines


class CorrelateStage(BaseStage):
    name: ClassVar[str] = "correlate"
    needs_ray: ClassVar[bool] = False  # lm-eval / MLflow queries only

    def run(self, ctx: StageContext) -> StageResult:
        cfg = self.config
        query = StudyQuery(
            resolve_tracking_uri(cfg.runtime),
            cfg.study or cfg.runtime.experiment,
            cfg.parent_run_id,
        )
        score_runs, eval_runs = query.stage_runs("score"), query.stage_runs("eval")
        points, notes = join_runs(score_runs, eval_runs, cfg.target)
        metric_list = cfg.metrics or analysis.metric_names(points)
        directions = metric_directions(score_runs, metric_list, cfg.directions)
        notes += [
            f"metric {m}: direction unknown, assumed higher = more diverse"
            for m in metric_list
            if m not in directions
        ]
        correlations = analysis.correlate_study(
            points,
            directions,
            metrics=cfg.metrics,
            n_boot=cfg.n_boot,
            seed=cfg.seed,
            confidence=cfg.confidence,
            min_points=cfg.min_points,
            min_corpora_for_claim=cfg.min_corpora_for_claim,
            propagate_stderr=cfg.propagate_stderr,
            n_permutations=cfg.n_permutations,
        )
        ranks = analysis.rank_metrics(correlations)
        point_rows = analysis.points_rows(points)
        corr_rows = [c.as_row() for c in correlations]
        rank_rows = [r.__dict__ | {"panels": ",".join(r.panels)} for r in ranks]

        out = local_artifact_dir(ctx.output_dir, "correlate")
        _write_csv(out / "correlations.csv", corr_rows)
        _write_csv(out / "ranking.csv", rank_rows)
        _write_csv(out / "points.csv", point_rows)
        (out / "correlations.md").write_text(
            analysis.correlations_markdown(
                correlations, cfg.target, cfg.confidence, cfg.min_corpora_for_claim
            )
        )
        (out / "ranking.md").write_text(analysis.ranking_markdown(ranks))
        (out / "notes.txt").write_text("\n".join(notes) + ("\n" if notes else ""))
        write_plots(out / "plots", points, correlations, ranks, cfg.target)

        input_digest = hashlib.sha256(
            json.dumps(point_rows, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        ctx.tracker.set_tags(
            {
                "synthdiv.input_digest": input_digest,
                "synthdiv.study": query.experiment,
                **({"synthdiv.study_parent": cfg.parent_run_id} if cfg.parent_run_id else {}),
            }
        )
        return StageResult(
            metrics={
                "corr.n_points": len(points),
                "corr.n_corpora": len({p.dataset_digest for p in points}),
                "corr.n_score_runs": len(score_runs),
                "corr.n_eval_runs": len(eval_runs),
                "corr.n_skipped_notes": len(notes),
                "corr.n_supported": sum(c.verdict == "supported" for c in correlations),
            }
            | _metric_rows(correlations),
            # Remote storage keeps no copy: the tables live in MLflow, their source of truth.
            outputs={}
            if is_remote(ctx.output_dir)
            else {"correlations": str(out / "correlations.csv")},
            artifacts={"correlation": out},
            extra={
                "correlations": correlations,
                "ranks": ranks,
                "points": points,
                "notes": notes,
                "target": cfg.target,
                "claim_rule": analysis.claim_rule(cfg.confidence, cfg.min_corpora_for_claim),
                "verdicts": verdict_notes(correlations),
            },
        )


def correlate_study(
    config: CorrelateConfig, parent: Tracker | None = None, reuse: bool = False
) -> StageResult:
    """Correlate a study as a tracked stage: the library entry point behind ``synthdiv correlate``.

    A study or parent run that does not exist fails here, before a correlate run is created.
    """
    if config.study or config.parent_run_id:
        StudyQuery(
            resolve_tracking_uri(config.runtime),
            config.study or config.runtime.experiment,
            config.parent_run_id,
        )
    return run_stage(CorrelateStage(config), parent=parent, reuse=reuse)
