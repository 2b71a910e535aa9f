"""Experiment grids (docs/method.md §3 experiments): one config that expands into one corpus per
cell of 𝒯 × 𝒢 × families × generator mixes, each its own generate job and MLflow run (children of
one grid run), tagged with its lineage (grid name, cell, axis values)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from synthdiv.config import RuntimeConfig, StrictModel, parse_config
from synthdiv.generate.config import GenerateConfig, WeightedGenerator
from synthdiv.generate.pipeline import GenerateStage
from synthdiv.progress import ProgressFn, no_progress
from synthdiv.runtime import ray_session
from synthdiv.stage import StageResult, run_stage
from synthdiv.tracking import stage_run


class GridAxes(StrictModel):
    """Each non-empty axis multiplies the cells; an empty axis keeps the base value."""

    n_topics: list[int] = Field(default_factory=list)
    generations_per_topic: list[int] = Field(default_factory=list)
    family: list[str] = Field(default_factory=list)
    generators: dict[str, list[WeightedGenerator]] = Field(
        default_factory=dict, description="mix name → weighted generators (one entry = one model)."
    )


class GenerateGridConfig(StrictModel):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    name: str = Field("grid", description="Grid name: prefix of each cell's corpus name.")
    base: dict[str, Any] = Field(
        default_factory=dict, description="GenerateConfig every cell starts from."
    )
    grid: GridAxes = Field(default_factory=GridAxes)

    @model_validator(mode="after")
    def _cells_valid(self) -> GenerateGridConfig:
        if "runtime" in self.base:
            raise ValueError("base: set runtime at the top level of a grid config, not in base")
        expand_grid(self)  # every cell must validate before any of them runs
        return self


@dataclass(frozen=True)
class GridCell:
    name: str
    config: GenerateConfig
    lineage: dict[str, str]


def expand_grid(cfg: GenerateGridConfig) -> list[GridCell]:
    axes = cfg.grid
    values: dict[str, list[Any]] = {
        "n_topics": axes.n_topics or [None],
        "generations_per_topic": axes.generations_per_topic or [None],
        "family": axes.family or [None],
        "generators": list(axes.generators) or [None],
    }
    cells = []
    for combo in itertools.product(*values.values()):
        chosen = dict(zip(values, combo, strict=True))
        data = {**cfg.base, "runtime": cfg.runtime.model_dump()}
        parts, lineage = [], {"grid": cfg.name}
        for key, value in chosen.items():
            if value is None:
                continue
            if key == "generators":
                data[key] = [g.model_dump() for g in axes.generators[value]]
                parts.append(f"gen-{value}")
            else:
                data[key] = value
                parts.append(
                    {"n_topics": "T", "generations_per_topic": "G"}.get(key, "") + str(value)
                )
            lineage[key] = str(value)
        cell = "-".join(parts) or "base"
        lineage["cell"] = cell
        data["name"] = f"{cfg.name}/{cell}"
        config = parse_config(data, GenerateConfig, f"grid cell {cell}")
        cells.append(GridCell(cell, config, lineage))
    return cells


def run_grid(cfg: GenerateGridConfig, progress: ProgressFn = no_progress) -> dict[str, StageResult]:
    """Run every cell (sequentially: each cell already fans out over the backend)."""
    cells = expand_grid(cfg)
    stages = [
        GenerateStage(c.config, lineage=c.lineage, progress=progress) for c in cells
    ]  # fail fast
    results: dict[str, StageResult] = {}
    with ray_session(cfg.runtime), stage_run("generate_grid", cfg, cfg.runtime) as parent:
        parent.log_params({"grid.cells": [c.name for c in cells]})
        for cell, stage in zip(cells, stages, strict=True):
            results[cell.name] = run_stage(stage, parent=parent)
            progress("grid cells", len(results), len(cells))
        parent.log_metrics({"grid.cells_done": float(len(results))})
    return results
