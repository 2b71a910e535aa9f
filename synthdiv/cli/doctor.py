"""`synthdiv doctor`: tells whether this machine can run synthdiv."""

from __future__ import annotations

import typer

from synthdiv.cli import app
from synthdiv.cli.common import out


@app.command("doctor")
def doctor(
    chat_model: str | None = typer.Option(
        None, help="GGUF file to check instead of the packaged SmolLM2."
    ),
    tracking_uri: str | None = typer.Option(
        None, help="MLflow store to write and read (default: the one stages use)."
    ),
) -> None:
    """Check this machine: CPU and its instruction sets, package versions, the llama.cpp build,
    the packaged chat and embedding models (each loaded and asked in a child process, so a
    crash is reported, not fatal), the MLflow store, a Ray start, free disk and memory.

    Prints one line per check and exits 1 if any fails.
    """
    from synthdiv.doctor import Check, run_checks

    def show(check: Check) -> None:
        mark = "[green]ok  [/]" if check.ok else "[bold red]FAIL[/]"
        out.print(f"{mark} {check.name:<16} {check.detail}", highlight=False, soft_wrap=True)

    results = run_checks(chat_model=chat_model, tracking_uri=tracking_uri, on_check=show)
    failed = [c.name for c in results if not c.ok]
    if failed:
        out.print(
            f"[bold red]{len(failed)} of {len(results)} checks failed:[/] {', '.join(failed)}"
        )
        raise typer.Exit(1)
    out.print(f"[green]all {len(results)} checks passed[/]")
