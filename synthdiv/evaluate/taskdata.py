"""The local task row format, checked before lm-eval sees a file.

One JSON object per line: ``{"question": str, "choices": [str, ...], "answer": int}`` (the index of
the correct choice), plus any other keys (``id``, ``category``…). An eval set with a bad row is
rejected as a whole, with file and line: silently dropping questions would change the benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthdiv.errors import SynthdivError


class TaskDataError(SynthdivError, ValueError):
    """A task definition or data file that cannot be used; the message names file (and line)."""


MIN_CHOICES = 2


def row_problem(row: Any) -> str | None:
    """Why ``row`` is not a valid multiple-choice question, or None if it is."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    question, choices, answer = row.get("question"), row.get("choices"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        return "'question' must be a non-empty string"
    if not isinstance(choices, list) or len(choices) < MIN_CHOICES:
        return f"'choices' must be a list of at least {MIN_CHOICES} strings"
    if not all(isinstance(c, str) and c.strip() for c in choices):
        return "every choice must be a non-empty string"
    if len(set(choices)) != len(choices):
        return "'choices' contains duplicates (the answer would be ambiguous)"
    if isinstance(answer, bool) or not isinstance(answer, int):
        return "'answer' must be the integer index of the correct choice"
    if not 0 <= answer < len(choices):
        return f"'answer' {answer} is out of range for {len(choices)} choices"
    return None


def validate_task_file(path: str | Path) -> int:
    """Check every row of a task JSONL; returns the number of questions."""
    path = Path(path)
    if not path.is_file():
        raise TaskDataError(f"task data file not found: {path}")
    n = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise TaskDataError(f"{path}:{lineno}: not valid UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise TaskDataError(f"{path}:{lineno}: invalid JSON ({err.msg})") from None
            problem = row_problem(row)
            if problem:
                raise TaskDataError(f"{path}:{lineno}: {problem}")
            n += 1
    if n == 0:
        raise TaskDataError(f"{path}: no questions")
    return n
