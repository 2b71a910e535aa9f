"""Corpora of known diversity for ``validate-metrics``, built from labelled documents.

- :func:`topic_series`: equal-size corpora over 1, 2, 4, … labels (more labels = more diverse);
- :func:`duplication_series`: one corpus in which a growing fraction of the documents is replaced
  by copies of the rest (more copies = less diverse).

Each :class:`BuiltCorpus` carries its ``order``: the known diversity a metric should agree with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from synthdiv.corpus import Corpus

Series = Literal["topics", "duplication"]


@dataclass
class BuiltCorpus:
    series: Series
    level: float  # label count, or duplicated fraction
    order: float  # known diversity: higher = more diverse
    repeat: int
    corpus: Corpus


def label_of(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def group_by_label(corpus: Corpus, label_field: str) -> tuple[dict[str, list[int]], int]:
    """label → document indices, and how many documents had no (scalar) label."""
    groups: dict[str, list[int]] = {}
    missing = 0
    for i, doc in enumerate(corpus.documents()):
        label = label_of(doc, label_field)
        if label is None or isinstance(label, dict | list):
            missing += 1
            continue
        groups.setdefault(str(label), []).append(i)
    return groups, missing


def default_topic_levels(n_labels: int) -> list[int]:
    levels = [2**i for i in range(int(math.log2(n_labels)) + 1)]
    return levels if levels[-1] == n_labels else [*levels, n_labels]


def topic_series(
    corpus: Corpus,
    groups: dict[str, list[int]],
    levels: Sequence[int],
    size: int,
    rng: np.random.Generator,
    repeat: int,
) -> list[BuiltCorpus]:
    """Equal-size corpora over a growing number of labels (documents split evenly)."""
    built = []
    for level in levels:
        per_label = [size // level + (1 if j < size % level else 0) for j in range(level)]
        eligible = [lab for lab, idx in groups.items() if len(idx) >= per_label[0]]
        if len(eligible) < level:
            raise ValueError(
                f"topics series: {level} labels with >= {per_label[0]} documents each are needed "
                f"for corpus_size={size}, but only {len(eligible)} labels have that many; lower "
                "corpus_size or the topic levels"
            )
        labels = rng.choice(sorted(eligible), size=level, replace=False)
        picked = [
            int(i)
            for lab, k in zip(labels, per_label, strict=True)
            for i in rng.choice(groups[lab], size=k, replace=False)
        ]
        built.append(
            BuiltCorpus("topics", level, float(level), repeat, corpus.take(sorted(picked)))
        )
    return built


def duplication_series(
    corpus: Corpus,
    groups: dict[str, list[int]],
    levels: Sequence[float],
    size: int,
    rng: np.random.Generator,
    repeat: int,
) -> list[BuiltCorpus]:
    """One base corpus (spread over all labels); level d replaces a fraction d by copies."""
    labelled = [i for idx in groups.values() for i in idx]
    if len(labelled) < size:
        raise ValueError(
            f"duplication series: {len(labelled)} labelled documents < corpus_size={size}"
        )
    base = corpus.take([int(i) for i in rng.choice(labelled, size=size, replace=False)])
    built = []
    for level in levels:
        n_unique = max(1, round((1 - level) * size))
        ids, texts, metas = base.ids[:n_unique], base.texts[:n_unique], base.metas[:n_unique]
        for copy in range(size - n_unique):  # cycle through the kept documents
            j = copy % n_unique
            ids = [*ids, f"{base.ids[j]}~copy{copy}"]
            texts, metas = [*texts, base.texts[j]], [*metas, base.metas[j]]
        built.append(BuiltCorpus("duplication", level, -level, repeat, Corpus(ids, texts, metas)))
    return built
