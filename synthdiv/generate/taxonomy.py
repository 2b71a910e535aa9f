"""Topic taxonomies: hierarchical topic paths with keywords, loaded, validated and sampled.

File format (JSONL, one leaf per line; or YAML holding a list of the same rows)::

    {"path": ["Natural sciences", "Physics", "Optics", "Lenses"], "keywords": ["focal length", …]}

``path`` has 1–6 non-empty levels (the paper's topics have about 5), the last being the leaf
topic; ``keywords`` holds 1–12 non-empty strings. The shipped starter taxonomy is built by
``synthdiv/data/taxonomy/build_starter.py`` from hand-written lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from synthdiv.errors import SynthdivError

MAX_LEVELS = 6
MAX_KEYWORDS = 12
STARTER = "starter"


class TaxonomyError(SynthdivError, ValueError):
    """A taxonomy file that cannot be used; the message names the file and the row."""


@dataclass(frozen=True)
class Topic:
    path: tuple[str, ...]
    keywords: tuple[str, ...]

    @property
    def leaf(self) -> str:
        return self.path[-1]

    @property
    def path_str(self) -> str:
        return " > ".join(self.path)

    def as_dict(self) -> dict[str, Any]:
        return {"path": list(self.path), "keywords": list(self.keywords)}


def starter_taxonomy_path() -> Path:
    return Path(str(resources.files("synthdiv") / "data" / "taxonomy" / "starter.jsonl"))


def _read_rows(path: Path) -> list[tuple[int, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise TaxonomyError(f"taxonomy {path} is not valid YAML: {err}") from None
        if data is None:
            return []
        if isinstance(data, dict) and "topics" in data:
            data = data["topics"]
        if not isinstance(data, list):
            raise TaxonomyError(f"taxonomy {path} must be a list of {{path, keywords}} rows")
        return list(enumerate(data, 1))
    rows: list[tuple[int, Any]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((lineno, json.loads(line)))
        except json.JSONDecodeError as err:
            raise TaxonomyError(f"taxonomy {path} row {lineno}: invalid JSON ({err.msg})") from None
    return rows


def _strings(value: Any, what: str, limit: int, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise TaxonomyError(f"{where}: '{what}' must be a non-empty list of strings")
    if len(value) > limit:
        raise TaxonomyError(f"{where}: '{what}' has {len(value)} items (at most {limit})")
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise TaxonomyError(f"{where}: '{what}' holds an empty or non-string item {item!r}")
        out.append(item.strip())
    return tuple(out)


def parse_topic(row: Any, where: str) -> Topic:
    if not isinstance(row, dict):
        raise TaxonomyError(f"{where}: expected an object with 'path' and 'keywords'")
    unknown = set(row) - {"path", "keywords"}
    if unknown:
        raise TaxonomyError(f"{where}: unknown keys {sorted(unknown)}")
    return Topic(
        path=_strings(row.get("path"), "path", MAX_LEVELS, where),
        keywords=_strings(row.get("keywords"), "keywords", MAX_KEYWORDS, where),
    )


def load_taxonomy(path: str | Path | None = None) -> list[Topic]:
    """Read and validate a taxonomy (``None``/``'starter'`` = the shipped one)."""
    path = starter_taxonomy_path() if path in (None, STARTER) else Path(path)
    if not path.is_file():
        raise TaxonomyError(f"taxonomy file not found: {path}")
    topics: list[Topic] = []
    seen: set[tuple[str, ...]] = set()
    for lineno, row in _read_rows(path):
        topic = parse_topic(row, f"taxonomy {path} row {lineno}")
        if topic.path in seen:
            raise TaxonomyError(f"taxonomy {path} row {lineno}: duplicate path {topic.path_str!r}")
        seen.add(topic.path)
        topics.append(topic)
    if not topics:
        raise TaxonomyError(f"taxonomy {path} is empty: it needs at least one topic")
    return topics


def sample_topics(topics: list[Topic], n: int, seed: int) -> list[Topic]:
    """``n`` distinct topics drawn uniformly without replacement; the same seed gives the same
    topics in the same order."""
    if n <= 0:
        raise TaxonomyError(f"number of topics must be positive, got {n}")
    if n > len(topics):
        raise TaxonomyError(f"asked for {n} topics but the taxonomy has only {len(topics)}")
    idx = np.random.default_rng(seed).choice(len(topics), size=n, replace=False)
    return [topics[i] for i in idx]


def write_taxonomy(topics: list[Topic], path: str | Path) -> Path:
    """Write topics as JSONL (the format :func:`load_taxonomy` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(t.as_dict(), ensure_ascii=False) + "\n" for t in topics))
    tmp.replace(path)
    return path
