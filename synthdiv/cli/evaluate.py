"""`synthdiv eval` and `synthdiv correlate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from synthdiv.cli import app
from synthdiv.cli.common import console, fail, given, load_or_fail, out, print_rows, split_names


@app.command("eval")
def eval_command(
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="HF checkpoint dir, s3:// URI, hub id, or 'smollm2-135m-instruct' (packaged).",
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Eval config YAML (see examples/eval_local.yaml)."
    ),
    suite: str | None = typer.Option(
        None, help="'local' (offline, default) or 'paper8' (needs the benchmark data)."
    ),
    tasks: str | None = typer.Option(
        None, "--tasks", "-t", help="Comma-separated task names to run (default: the whole suite)."
    ),
    task_dir: list[Path] | None = typer.Option(
        None, "--task-dir", help="Extra directory of task YAML + JSONL (repeatable)."
    ),
    tokenizer: str | None = typer.Option(
        None, help="Tokenizer to use when the checkpoint has none."
    ),
    limit: int | None = typer.Option(None, help="Questions per task, for quick runs."),
    system_instruction: str | None = typer.Option(
        None, help="System prompt (SFT models: the fine-tuning one)."
    ),
    chat_template: bool | None = typer.Option(
        None,
        "--chat-template/--no-chat-template",
        help="Wrap prompts in the model's chat template (SFT).",
    ),
    dataset_digest: str | None = typer.Option(
        None, help="Lineage: digest of the corpus the model was trained on."
    ),
    model_size: str | None = typer.Option(None, help="Lineage: size label (tiny, 350M, 1.4B)."),
    variant: str | None = typer.Option(None, help="Lineage: base or sft."),
    device: str | None = typer.Option(None, help="cpu (default), cuda, cuda:0 …"),
    tracking_uri: str | None = typer.Option(
        None, help="MLflow tracking URI (default: sqlite in ./.synthdiv)."
    ),
    experiment: str | None = typer.Option(None, help="MLflow experiment name."),
) -> None:
    """Zero-shot accuracy of a model on multiple-choice tasks, through lm-eval, logged to MLflow.

    The default suite runs offline on tasks shipped with synthdiv; add your own by pointing
    --task-dir at a directory of task YAML + JSONL (see docs/evaluate.md). Examples:

      synthdiv eval -m smollm2-135m-instruct --limit 50

      synthdiv eval -m runs/pretrain/ckpt --tasks local_arithmetic,local_world_facts

      synthdiv eval -c examples/eval_paper_suite.yaml -m /models/sft --chat-template
    """
    from synthdiv.evaluate import CheckpointError, EvalConfig, TaskDataError, evaluate_model
    from synthdiv.models import ModelNotFoundError

    overrides = given(
        {
            "model.path": model,
            "model.tokenizer": tokenizer,
            "model.device": device,
            "suite": suite,
            "tasks": split_names(tasks),
            "task_dirs": [str(d) for d in task_dir] if task_dir else None,
            "limit": limit,
            "system_instruction": system_instruction,
            "apply_chat_template": chat_template,
            "lineage.dataset_digest": dataset_digest,
            "lineage.model_size": model_size,
            "lineage.variant": variant,
            "runtime.tracking_uri": tracking_uri,
            "runtime.experiment": experiment,
        }
    )
    if config is None and model is None:
        fail("give --model (or a --config with model.path)")
    cfg = load_or_fail(config, EvalConfig, overrides)
    try:
        result = evaluate_model(cfg)
    except (TaskDataError, CheckpointError, ModelNotFoundError) as err:
        fail(str(err))
        return
    report = result.extra["report"]
    rows = [
        {"task": t.task, "metric": t.metric, "score": t.score, "stderr": t.stderr, "n": t.n}
        for t in report.tasks
    ]
    rows.append({"task": "average", "score": report.average, "stderr": report.average_stderr})
    print_rows("Zero-shot accuracy", rows, ["task", "metric", "score", "stderr", "n"])
    if cfg.limit:
        console.print(
            f"[yellow]limit={cfg.limit} questions per task: a quick check, not a result.[/]"
        )
    out.print(f"results: {result.outputs['results']}")
    out.print(f"MLflow: {result.extra.get('run_link', result.outputs.get('mlflow_run_id'))}")


@app.command("correlate")
def correlate_command(
    config: Path | None = typer.Option(None, "--config", "-c", help="Correlate config YAML."),
    study: str | None = typer.Option(
        None, "--study", help="MLflow experiment of the study (default: runtime.experiment)."
    ),
    parent: str | None = typer.Option(
        None, "--parent", help="Only runs under this parent run id (one `synthdiv run`)."
    ),
    target: str | None = typer.Option(
        None, help="Eval metric to correlate with (default eval.avg)."
    ),
    metrics: str | None = typer.Option(
        None, help="Comma-separated diversity metrics (default: all found)."
    ),
    n_boot: int | None = typer.Option(None, help="Bootstrap resamples (default 2000)."),
    seed: int | None = typer.Option(None, help="Bootstrap seed."),
    tracking_uri: str | None = typer.Option(
        None, help="MLflow tracking URI (default: sqlite in ./.synthdiv)."
    ),
    experiment: str | None = typer.Option(
        None, help="MLflow experiment for the correlate run (and the default study)."
    ),
) -> None:
    """Correlate every diversity metric with model accuracy, from MLflow alone.

    Joins the study's score runs to its eval runs by dataset digest, computes Spearman and Pearson
    with paired bootstrap CIs (accuracies redrawn from their stderr), Fisher-z CIs, permutation
    p-values and the OLS slope per metric × model size × base/SFT, ranks the metrics, and logs
    tables (markdown + CSV) and plots to a `correlate` run. Panels with fewer than 4 corpora get
    no bootstrap CI; fewer than 5 make no claim (each panel's verdict is printed). Example:

      synthdiv correlate --study my-study --tracking-uri http://mlflow:5000
    """
    from synthdiv.evaluate.correlate import CorrelateConfig, correlate_study
    from synthdiv.tracking.query import StudyNotFoundError

    cfg = load_or_fail(
        config,
        CorrelateConfig,
        given(
            {
                "study": study,
                "parent_run_id": parent,
                "target": target,
                "metrics": split_names(metrics),
                "n_boot": n_boot,
                "seed": seed,
                "runtime.tracking_uri": tracking_uri,
                "runtime.experiment": experiment,
            }
        ),
    )
    try:
        result = correlate_study(cfg)
    except StudyNotFoundError as err:
        fail(str(err))
        return
    print_correlation(result)
    extra = result.extra
    out.print(f"MLflow: {extra.get('run_link', result.outputs.get('mlflow_run_id'))}")


def _print_verdicts(extra: dict[str, Any]) -> None:
    """Whether any panel supports a claim, by the stated rule: the line a reader must not miss."""
    correlations = extra["correlations"]
    supported = [c for c in correlations if c.verdict == "supported"]
    too_few = [c for c in correlations if c.verdict == "too few corpora"]
    if supported:
        head = f"[green]{len(supported)} of {len(correlations)} panel(s) support a claim[/]"
    elif correlations and len(too_few) == len(correlations):
        head = "[yellow]Too few corpora for a claim in every panel[/]"
    else:
        head = "[yellow]No claim: no panel meets the rule[/]"
    console.print(f"{head}. {extra.get('claim_rule', '')}")
    for line in extra.get("verdicts", []):
        console.print(f"[dim]verdict:[/] {line}")


def print_correlation(result: Any, panels: bool = True) -> None:
    """The metric ranking and (``panels``) every correlation panel of a correlate result."""
    extra = result.extra
    if not extra["points"]:
        console.print("[yellow]no eval run could be joined to a score run (see notes below)[/]")
    print_rows(
        "Metrics ranked by |Spearman ρ| with " + extra["target"],
        [
            {
                "metric": r.metric,
                "mean |ρ|": r.mean_abs_spearman,
                "mean directional ρ": r.mean_directional_spearman,
                "panels": r.n_panels,
                "min n": r.min_n,
            }
            for r in extra["ranks"]
        ],
    )
    _print_verdicts(extra)
    if not panels:
        return
    print_rows("Correlations", [_panel_row(c) for c in extra["correlations"]])
    for note in extra["notes"]:
        console.print(f"[dim]note:[/] {note}")


def _panel_row(c: Any) -> dict[str, Any]:
    """One correlation panel in a row that fits a terminal: each estimate with its interval,
    printed to the digits the interval supports (the CSV and markdown keep every column)."""
    from synthdiv.report_numbers import fmt_ci

    rho = fmt_ci(c.spearman, c.spearman_ci_low, c.spearman_ci_high)
    return {
        "metric": c.metric,
        "panel": f"{c.model_size}/{c.variant}",
        "n": c.n,
        "ρ [bootstrap CI]": rho if c.spearman is not None else f"undefined ({c.note})",
        "Fisher-z CI": _interval(c.spearman_fisher_low, c.spearman_fisher_high),
        "perm. p": fmt_ci(c.spearman_perm_p),
        "slope [CI]": fmt_ci(c.slope, c.slope_ci_low, c.slope_ci_high),
        "verdict": c.verdict,
    }


def _interval(low: Any, high: Any) -> str:
    from synthdiv.report_numbers import fmt_ci

    if low is None or high is None:
        return "—"
    return f"[{fmt_ci(low)}, {fmt_ci(high)}]"
