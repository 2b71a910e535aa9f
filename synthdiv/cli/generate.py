"""`synthdiv generate` and `synthdiv mix`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from synthdiv.cli import app
from synthdiv.cli.common import console, fail, given, load_or_fail, out, print_rows

_GENERATE_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    ValueError,
    KeyError,
    RuntimeError,
)


def _is_grid(path: Path | None) -> bool:
    if path is None or not path.is_file():
        return False
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and "grid" in data


@app.command("generate")
def generate(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Generate (or grid) config YAML; see examples/generate_*.yaml."
    ),
    family: str | None = typer.Option(
        None, help="Prompt family: topic | topic_style | topic_style_persona | multi_topic."
    ),
    n_topics: int | None = typer.Option(
        None, "--topics", "-T", help="𝒯: topics sampled from the taxonomy."
    ),
    generations: int | None = typer.Option(
        None, "--generations", "-G", help="𝒢: samples per topic."
    ),
    taxonomy: str | None = typer.Option(
        None, help="Topic file (JSONL/YAML). Default: the shipped starter taxonomy."
    ),
    seed: int | None = typer.Option(
        None, help="Seed of topic sampling, styles, personas and decoding."
    ),
    output: str | None = typer.Option(None, help="Corpus directory (local or s3://)."),
    max_shards: int | None = typer.Option(
        None, help="Stop after this many new shards (resume by rerunning)."
    ),
    tracking_uri: str | None = typer.Option(
        None, help="MLflow tracking URI (default: sqlite in ./.synthdiv)."
    ),
    experiment: str | None = typer.Option(None, help="MLflow experiment name."),
) -> None:
    """Generate a synthetic corpus of controlled diversity (docs/method.md §3).

    Samples 𝒯 topics from a taxonomy, asks the generator for 𝒢 samples per topic with the chosen
    prompt family (passages + a multiple-choice question, as JSON), validates, renders and writes
    sharded output. Killed? Rerun the same command: finished shards are kept. A config with a
    `grid:` block expands into one corpus per cell. Examples:

      synthdiv generate -c examples/generate_topic_styles.yaml

      synthdiv generate --family topic -T 4 -G 2

      synthdiv generate -c examples/generate_grid.yaml
    """
    from synthdiv.progress import rich_progress

    if _is_grid(config):
        from synthdiv.generate.grid import GenerateGridConfig, run_grid

        cfg = load_or_fail(
            config,
            GenerateGridConfig,
            given({"runtime.tracking_uri": tracking_uri, "runtime.experiment": experiment}),
        )
        try:
            with rich_progress(console) as progress:
                results = run_grid(cfg, progress)
        except _GENERATE_ERRORS as err:
            fail(str(err))
            return
        rows = [
            {"cell": name, **_summary(r.metrics), "corpus": r.outputs.get("corpus")}
            for name, r in results.items()
        ]
        print_rows(f"grid {cfg.name}", rows)
        return

    from synthdiv.generate.config import GenerateConfig
    from synthdiv.generate.pipeline import generate_corpus

    cfg = load_or_fail(
        config,
        GenerateConfig,
        given(
            {
                "family": family,
                "n_topics": n_topics,
                "generations_per_topic": generations,
                "taxonomy": taxonomy,
                "seed": seed,
                "output.path": output,
                "runtime.tracking_uri": tracking_uri,
                "runtime.experiment": experiment,
            }
        ),
    )
    try:
        with rich_progress(console) as progress:
            result = generate_corpus(cfg, max_new_shards=max_shards, progress=progress)
    except _GENERATE_ERRORS as err:
        fail(str(err))
        return
    print_rows("generate", [_summary(result.metrics)])
    state = (
        "complete" if result.metrics.get("generate.complete") else "UNFINISHED (rerun to resume)"
    )
    out.print(f"corpus: {result.outputs.get('corpus')} [{state}]")
    out.print(f"rejects: {result.outputs.get('rejects')}")
    if "run_link" in result.extra:
        out.print(f"MLflow: {result.extra['run_link']}")


def _summary(metrics: dict[str, float]) -> dict[str, Any]:
    keys = {
        "docs": "generate.n_docs",
        "requested": "generate.n_requested",
        "rejected": "generate.n_rejected",
        "samples/s": "run.samples_per_s",
        "out tok/s": "run.output_tokens_per_s",
        "exact dup": "dedup.exact_rate",
        "near dup": "dedup.near_rate",
    }
    return {label: metrics.get(key) for label, key in keys.items()}


@app.command("mix")
def mix(
    config: Path = typer.Option(
        ..., "--config", "-c", help="Mix config YAML (see examples/mix.yaml)."
    ),
    seed: int | None = typer.Option(None, help="Seed of the subsampling and the shuffle."),
    output: str | None = typer.Option(None, help="Mixture corpus directory."),
    tracking_uri: str | None = typer.Option(None, help="MLflow tracking URI."),
) -> None:
    """Build a training mixture from real and synthetic corpora by target effective tokens.

    Each source is repeated ⌊target/tokens⌋ times plus a seeded subset (or just subsampled when
    the target is below its size); documents carry meta.source. Example:

      synthdiv mix -c examples/mix.yaml
    """
    from synthdiv.corpus import CorpusError
    from synthdiv.generate.mix import MixConfig, mix_corpora

    cfg = load_or_fail(
        config,
        MixConfig,
        given({"seed": seed, "output.path": output, "runtime.tracking_uri": tracking_uri}),
    )
    try:
        result = mix_corpora(cfg)
    except (CorpusError, ValueError, FileNotFoundError) as err:
        fail(str(err))
        return
    print_rows(
        "mixture",
        result.extra["manifest"]["sources"],
        ["source", "docs_in", "raw_tokens", "target_tokens", "effective_tokens", "docs_out"],
    )
    out.print(f"corpus: {result.outputs['corpus']}")
