"""`synthdiv score` and `synthdiv metrics`."""

from __future__ import annotations

from pathlib import Path

import typer

from synthdiv.cli import app
from synthdiv.cli.common import console, fail, given, load_or_fail, out, print_rows, split_names


@app.command("metrics")
def list_metrics() -> None:
    """List every registered diversity metric, its version and direction."""
    from synthdiv.metrics import available, metric_class

    rows = [
        {
            "metric": name,
            "version": cls.version,
            "higher = more diverse": "yes" if cls.higher_is_more_diverse else "no",
            "about": (cls.__doc__ or "").strip().splitlines()[0],
        }
        for name, cls in ((n, metric_class(n)) for n in available())
    ]
    print_rows("synthdiv metrics", rows)


@app.command("score")
def score(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Score config YAML (see examples/score.yaml)."
    ),
    corpus: str | None = typer.Option(
        None,
        "--corpus",
        help=(
            "JSONL/Parquet file, shard directory or s3:// URI. Default: the bundled example corpus."
        ),
    ),
    text_field: str | None = typer.Option(None, help="Field holding the text (default 'text')."),
    metrics: str | None = typer.Option(
        None,
        "--metrics",
        "-m",
        help="Comma-separated metric names (see `synthdiv metrics`). Default: all.",
    ),
    limit: int | None = typer.Option(None, help="Read at most this many valid documents."),
    seed: int | None = typer.Option(None, help="Seed for subsamples and the cluster-agent."),
    tracking_uri: str | None = typer.Option(
        None, help="MLflow tracking URI (default: sqlite in ./.synthdiv)."
    ),
    experiment: str | None = typer.Option(None, help="MLflow experiment name."),
) -> None:
    """Score the diversity of a text corpus with every metric, with confidence intervals.

    Reads and validates the corpus (bad rows are quarantined and counted), embeds it once with
    Ray Data, runs the baseline metrics and the paper's LLM cluster-agent, prints a table and
    records everything in one MLflow run. Examples:

      synthdiv score                                   # the bundled example corpus

      synthdiv score --corpus docs.jsonl -m vendi,distinct_n

      synthdiv score -c examples/score.yaml --tracking-uri http://mlflow:5000
    """
    from synthdiv.corpus import CorpusError
    from synthdiv.progress import rich_progress
    from synthdiv.score import ScoreConfig, score_corpus

    overrides = given(
        {
            "corpus.path": corpus,
            "corpus.text_field": text_field,
            "corpus.limit": limit,
            "seed": seed,
            "runtime.tracking_uri": tracking_uri,
            "runtime.experiment": experiment,
        }
    )
    if names := split_names(metrics):
        overrides["metrics"] = {name: {} for name in names}
    cfg = load_or_fail(config, ScoreConfig, overrides)
    try:
        with rich_progress(console) as progress:
            result = score_corpus(cfg, progress)
    except (CorpusError, FileNotFoundError, ValueError) as err:
        fail(str(err) or type(err).__name__)
        return
    extra = result.extra
    report = extra["validation"]
    console.print(
        f"corpus [bold]{extra['corpus_name']}[/]: {report.n_ok} documents "
        f"({report.n_rejected} "
        f"rejected{', see ' + str(report.quarantine_path) if report.n_rejected else ''})"
    )
    print_rows(
        f"Diversity of {extra['corpus_name']}",
        extra["rows"],
        ["metric", "value", "ci_low", "ci_high", "n", "higher_is_more_diverse", "seconds"],
    )
    for name, error in extra["failures"].items():
        console.print(f"[red]metric {name} failed:[/] {error.strip().splitlines()[-1]}")
    out.print(f"MLflow: {extra['run_link']}")
    if extra["failures"]:
        raise typer.Exit(1)
