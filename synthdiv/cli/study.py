"""`synthdiv run`, `synthdiv quickstart` and `synthdiv report`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import typer

from synthdiv.cli import app
from synthdiv.cli.common import console, fail, given, load_or_fail, out

HONESTY = (
    "Tiny models trained for minutes on a CPU give noisy accuracies (a few hundred questions, "
    "stderr ≈ ±0.03–0.05), and the 135M judge is for plumbing, not judgement: read these numbers "
    "as a working pipeline, not as evidence about diversity. Point `llm:` at a capable judge and "
    "train 350m/1b models on a GPU cluster for real results."
)


def quickstart_config_path() -> Path:
    return Path(str(resources.files("synthdiv") / "data" / "quickstart.yaml"))


def _run(config: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    from synthdiv.config import ConfigError
    from synthdiv.progress import rich_progress
    from synthdiv.study import StudyConfig, run_study

    cfg = load_or_fail(config, StudyConfig, overrides)
    try:
        with rich_progress(console) as progress:
            return run_study(cfg, progress)
    except ConfigError as err:
        fail(str(err))
        raise


def _print_summary(summary: dict[str, Any]) -> None:
    from synthdiv.cli.common import print_rows

    rows = []
    for name, branch in summary["corpora"].items():
        row: dict[str, Any] = {"corpus": name}
        row.update(
            {
                k: v
                for k, v in branch["scores"].items()
                if k in ("cluster_agent", "vendi", "distinct_n")
            }
        )
        row.update({k: v for k, v in branch.items() if k.endswith((".base", ".sft"))})
        rows.append(row)
    print_rows("Study: diversity and accuracy per corpus", rows)
    if summary.get("correlate"):
        from synthdiv.cli.evaluate import print_correlation

        print_correlation(summary["correlate"], panels=False)  # every panel: in MLflow, the report
    out.print(f"\nMLflow parent run: {summary['run_link']}")


def _overrides(tracking_uri: str | None, storage: str | None) -> dict[str, Any]:
    return given({"runtime.tracking_uri": tracking_uri, "runtime.storage_uri": storage})


@app.command("run")
def run(
    config: Path = typer.Argument(
        ..., help="Study YAML (see examples/quickstart.yaml, examples/paper_*.yaml)."
    ),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI."),
    storage_uri: str | None = typer.Option(None, help="Where stage outputs go (path or s3://)."),
) -> None:
    """Run a whole study: generate → score → (mix) → pretrain → sft → eval → correlate.

    Every stage is a child MLflow run of one parent run. Rerunning the same config skips every
    stage that already finished (identity = config digest), so a crashed study resumes.
    """
    _print_summary(_run(config, _overrides(tracking_uri, storage_uri)))


@app.command("quickstart")
def quickstart(
    tracking_uri: str | None = typer.Option(
        None, help="MLflow tracking URI (default: ./.synthdiv)."
    ),
    storage_uri: str | None = typer.Option(
        None, help="Where outputs go (default ./synthdiv_runs)."
    ),
) -> None:
    """The whole loop on tiny offline defaults, in minutes on a laptop CPU.

    Generates three corpora of designed diversity with the packaged SmolLM2, scores them with every
    metric (the cluster-agent included), pre-trains, fine-tunes and evaluates three tiny models,
    and correlates diversity with accuracy. No network, no GPU.
    """
    from synthdiv.score import example_corpus_path

    overrides = _overrides(tracking_uri, storage_uri) | {"real_data.path": example_corpus_path()}
    summary = _run(quickstart_config_path(), overrides)
    _print_summary(summary)
    out.print(f"\n[yellow]Honesty note:[/] {HONESTY}")
    out.print(
        "Browse everything: .venv/bin/mlflow ui --backend-store-uri sqlite:///.synthdiv/mlflow.db"
    )
    out.print("One-page report:   .venv/bin/synthdiv report --experiment synthdiv-quickstart")


@app.command("report")
def report(
    experiment: str = typer.Option("synthdiv-quickstart", help="The study's MLflow experiment."),
    parent_run_id: str | None = typer.Option(None, help="Only this `synthdiv run` (parent run)."),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI."),
    out_file: Path | None = typer.Option(
        None, "--out", help="HTML file (default .synthdiv/reports/<experiment>.html)."
    ),
) -> None:
    """Render one static HTML page for a study (also attached to its MLflow run)."""
    from synthdiv.report import write_report
    from synthdiv.tracking import resolve_tracking_uri
    from synthdiv.tracking.query import StudyNotFoundError

    uri = tracking_uri or resolve_tracking_uri(None)
    path = out_file or Path(".synthdiv") / "reports" / f"{experiment}.html"
    try:
        write_report(uri, experiment, path, parent_run_id)
    except StudyNotFoundError as err:
        fail(str(err))
    out.print(f"report: {path.resolve()}")
