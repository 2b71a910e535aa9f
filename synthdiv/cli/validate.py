"""`synthdiv validate-metrics`: rank correlation of every metric with a known diversity order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from synthdiv.cli import app
from synthdiv.cli.common import console, fail, load_or_fail, out, print_rows


@app.command("validate-metrics")
def validate_metrics(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Validation config YAML (see docs/validate_metrics.md)."
    ),
    labelled: str | None = typer.Option(
        None,
        "--labelled",
        help="Labelled JSONL/Parquet. Default: the bundled example corpus (12 topics).",
    ),
    label_field: str | None = typer.Option(
        None, help="Dotted path of the label (default 'meta.topic')."
    ),
    metrics: str | None = typer.Option(
        None,
        "--metrics",
        "-m",
        help="Comma-separated metric names (see `synthdiv metrics`). Default: the cheap baselines.",
    ),
    corpus_size: int | None = typer.Option(None, help="Documents per built corpus (default 20)."),
    repeats: int | None = typer.Option(
        None, help="Rebuilds of each series with new seeds (default 3)."
    ),
    seed: int | None = typer.Option(None, help="Base seed."),
    min_rho: float | None = typer.Option(
        None,
        "--min-rho",
        help="Exit non-zero when any metric's rho on any series is below this (or undefined); "
        "the table marks which. Overrides the config's min_rho.",
    ),
    tracking_uri: str | None = typer.Option(
        None, help="MLflow tracking URI (default: sqlite in ./.synthdiv)."
    ),
    experiment: str | None = typer.Option(None, help="MLflow experiment name."),
) -> None:
    """Check that diversity metrics rank corpora of KNOWN diversity correctly.

    From labelled text it builds series of equal-size corpora whose diversity order is known:
    1, 2, 4, … labels; a growing share of exact or word-edited copies; unequal label mixtures
    (order: entropy). It scores each with every selected metric and reports Spearman's rho with
    the known order (sign-corrected: +1 = perfect ranking) with a bootstrap CI. Two control
    series hold diversity fixed: documents cut shorter (length) and documents carrying
    prompt-injection canaries; for them it reports how far each metric moves, in its own CI
    widths, and how often an LLM judge obeyed the canary. Tables and a plot go to MLflow.

      synthdiv validate-metrics

      synthdiv validate-metrics -m vendi,distinct_n,cluster_agent --repeats 2

      synthdiv validate-metrics --labelled mine.jsonl --label-field meta.category

      synthdiv validate-metrics -m distinct_n,vendi --min-rho 0.8   # a check that can fail
    """
    from synthdiv.corpus import CorpusError
    from synthdiv.progress import rich_progress
    from synthdiv.validation import ValidateMetricsConfig
    from synthdiv.validation import validate_metrics as run_validation

    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "labelled.path": labelled,
            "label_field": label_field,
            "corpus_size": corpus_size,
            "repeats": repeats,
            "seed": seed,
            "min_rho": min_rho,
            "runtime.tracking_uri": tracking_uri,
            "runtime.experiment": experiment,
        }.items()
        if value is not None
    }
    if metrics:
        overrides["metrics"] = {m.strip(): {} for m in metrics.split(",") if m.strip()}
    cfg = load_or_fail(config, ValidateMetricsConfig, overrides)
    try:
        with rich_progress(console) as progress:
            result = run_validation(cfg, progress)
    except (CorpusError, FileNotFoundError, ValueError) as err:
        fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
        return
    below = result.extra["below_min_rho"]
    columns = [
        "metric", "series", "kind", "rho", "ci_low", "ci_high", "n_points", "n_failed", "note"
    ]  # fmt: skip
    rows = result.extra["correlations"]
    if cfg.min_rho is not None:
        columns.append("min_rho")
        rows = [r | {"min_rho": "BELOW" if r in below else "ok"} for r in rows]
    print_rows("Spearman rho with the known diversity order (+1 = perfect)", rows, columns)
    if result.extra["controls"]:
        print_rows(
            "Controls: shift from lowest to highest level (+ = looks more diverse)",
            result.extra["controls"],
            ["metric", "series", "shift", "ci_width", "shift_ci_widths", "one_cluster_low",
             "one_cluster_high", "note"],
        )  # fmt: skip
    for row in below:
        rho = "undefined" if row["rho"] is None else f"{row['rho']:.3f}"
        reason = f" ({row['note']})" if row["note"] else ""
        console.print(
            f"below --min-rho {cfg.min_rho:g}: {row['metric']} on {row['series']}, "
            f"rho {rho}{reason}",
            style="red",
            markup=False,
        )
    failed = [r for r in result.extra["rows"] if r["error"]]
    for row in failed[:5]:
        console.print(
            f"[red]{row['metric']} failed on {row['series']} "
            f"level {row['level']}:[/] {row['error']}"
        )
    out.print(f"report: {result.outputs['report']}")
    out.print(f"MLflow: {result.extra['run_link']}")
    if failed or below:
        raise typer.Exit(1)
