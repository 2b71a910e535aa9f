"""Rich progress bars behind a plain callback, so library code never imports rich.

Library code calls ``progress(task, done, total)``; the CLI passes :func:`rich_progress`'s
callback, tests and Ray workers pass nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

ProgressFn = Callable[[str, int, int], None]


@contextlib.contextmanager
def rich_progress(console: Console | None = None) -> Iterator[ProgressFn]:
    """Yield a ``(task, done, total)`` callback that drives one bar per task name."""
    bars = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    tasks: dict[str, int] = {}

    def update(task: str, done: int, total: int) -> None:
        if task not in tasks:
            tasks[task] = bars.add_task(task, total=total)
        bars.update(tasks[task], completed=done, total=total)

    with bars:
        yield update


def no_progress(task: str, done: int, total: int) -> None:
    """The default: library code reports progress unconditionally and this discards it."""
