"""The one grid syntax of synthdiv configs (a study's ``grid:``, a generate grid's ``grid:``).

A grid maps dotted config keys to the values they take; the cells are the product of the axes.
An axis is a list of values, labelled by their text (``n_topics: [2, 4]``), or a mapping
label → value, for values that read badly as labels (``generators: {smollm2: [...], mix: [...]}``).
A cell's label joins ``<last key part>-<value label>`` with ``_``, e.g. ``n_topics-2_family-topic``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synthdiv.config import set_dotted

# As a config field: checked by check_grid, so a bad axis gets one message naming it.
GridAxes = dict[str, Any]


@dataclass(frozen=True)
class GridCell:
    label: str
    overrides: dict[str, Any]  # nested, ready to deep-merge into the base config
    axes: dict[str, str]  # dotted key → value label (for lineage tags)


def check_grid(grid: Mapping[str, Any]) -> GridAxes:
    """A grid block as given in a config: every axis a non-empty list or label → value mapping."""
    for key, values in grid.items():
        if isinstance(values, str) or not isinstance(values, Sequence | Mapping) or not values:
            raise ValueError(
                f"grid axis {key!r} must be a non-empty list of values or a mapping "
                f"label → value, not {values!r}"
            )
    return dict(grid)


def _labelled(values: Sequence[Any] | Mapping[str, Any]) -> list[tuple[str, Any]]:
    if isinstance(values, Mapping):
        return [(str(label), value) for label, value in values.items()]
    return [(str(value), value) for value in values]


def expand_grid(grid: Mapping[str, Sequence[Any] | Mapping[str, Any]]) -> list[GridCell]:
    """Every cell of ``grid``, in axis order (the first axis varies slowest)."""
    if not grid:
        return []
    keys = list(grid)
    cells = []
    for combo in itertools.product(*(_labelled(grid[k]) for k in keys)):
        overrides: dict[str, Any] = {}
        for key, (_, value) in zip(keys, combo, strict=True):
            set_dotted(overrides, key, value)
        label = "_".join(
            f"{k.split('.')[-1]}-{lbl}" for k, (lbl, _) in zip(keys, combo, strict=True)
        )
        axes = {k: lbl for k, (lbl, _) in zip(keys, combo, strict=True)}
        cells.append(GridCell(label, overrides, axes))
    return cells
