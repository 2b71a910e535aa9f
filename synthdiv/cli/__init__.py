"""The ``synthdiv`` command. Thin: parse arguments, load a config, call the library.

Each area registers its commands from its own module (``cli/score.py``, ``cli/generate.py``, …)
so adding a command never edits another area's code.
"""

from __future__ import annotations

import importlib
import os
import warnings

import typer

app = typer.Typer(
    name="synthdiv",
    help=(
        "Measure and control the diversity of synthetic text corpora, and train on them.\n\n"
        "Start with `synthdiv quickstart` (runs everything on tiny, offline defaults), or score "
        "your own corpus with `synthdiv score --corpus docs.jsonl`. Every command takes "
        "`--config FILE.yaml`; see examples/ for annotated configs. Results go to MLflow: "
        "run `mlflow ui --backend-store-uri sqlite:///.synthdiv/mlflow.db` to browse them."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
)

_COMMAND_MODULES = [
    "score",
    "validate",
    "generate",
    "train",
    "evaluate",
    "study",
    "jobs",
    "tracking",
    "doctor",
]


def _register() -> None:
    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(f"synthdiv.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"synthdiv.cli.{name}":  # a real missing dependency: surface it
                raise


_register()


def main() -> None:
    # Library progress bars and warnings (weights loading, Ray Data operators) would drown the
    # CLI's own progress display; models are offline by design.
    for key, value in {
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "TOKENIZERS_PARALLELISM": "false",
        "TQDM_DISABLE": "1",
    }.items():  # lm-eval's tqdm bars interleave with ours
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"ray\..*")
    from synthdiv.errors import SynthdivError
    from synthdiv.runtime import StageKilled

    try:
        app()
    except SynthdivError as err:  # expected and actionable: the whole message, no traceback
        typer.echo(f"error: {err}", err=True)
        raise SystemExit(1) from None
    except StageKilled as err:  # SIGTERM: the runs are marked KILLED; say so without a traceback
        typer.echo(
            f"stopped ({err}); finished work is kept: rerun the same command to resume", err=True
        )
        raise SystemExit(143) from None
