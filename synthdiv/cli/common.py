"""Helpers shared by CLI modules: config loading with friendly errors, result tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synthdiv.config import ConfigError, load_config, parse_config

console = Console(stderr=True)
out = Console()
M = TypeVar("M", bound=BaseModel)


def fail(message: str, code: int = 2) -> None:
    """Print the whole error (escaped: a message's brackets are not markup) and exit: the CLI's
    only way to report bad input."""
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def given(values: dict[str, Any]) -> dict[str, Any]:
    """CLI overrides: the dotted keys whose options were given (None = not given)."""
    return {k: v for k, v in values.items() if v is not None}


def split_names(text: str | None) -> list[str] | None:
    """A comma-separated option (``-m vendi,distinct_n``) as names; None when not given."""
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def load_or_fail(
    path: Path | None,
    model: type[M],
    overrides: dict[str, Any],
    defaults: dict[str, Any] | None = None,
) -> M:
    """Load ``path`` (or ``defaults`` when no file is given), apply CLI overrides, validate."""
    try:
        if path is not None:
            return load_config(path, model, overrides)
        data: dict[str, Any] = dict(defaults or {})
        from synthdiv.config import set_dotted

        for key, value in overrides.items():
            set_dotted(data, key, value)
        return parse_config(data, model, "<command line>")
    except ConfigError as err:
        fail(str(err))
        raise  # unreachable; keeps type checkers calm


def print_rows(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    if not rows:
        return
    columns = columns or list(rows[0])
    table = Table(title=title)
    for col in columns:
        table.add_column(
            col, justify="right" if isinstance(rows[0].get(col), float | int) else "left"
        )
    for row in rows:
        table.add_row(*[_fmt(row.get(c)) for c in columns])
    out.print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
