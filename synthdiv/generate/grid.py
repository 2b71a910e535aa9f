"""Generate grids (docs/method.md §3 experiments): one config that expands into one corpus per cell
of its ``grid:`` axes (the one grid syntax, :mod:`synthdiv.grid`: dotted generate keys → values),
each its own generate job and MLflow run, children of one grid run, tagged with its lineage (grid
name, cell, axis values). To score and train on the cells as well, put the same grid in a study."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from synthdiv.config import RuntimeConfig, StrictModel, deep_merge, parse_config
from synthdiv.generate.config import GenerateConfig
from synthdiv.generate.pipeline import GenerateStage
from synthdiv.grid import GridAxes, check_grid, expand_grid
from synthdiv.progress import ProgressFn, no_progress
from synthdiv.stage import BaseStage, StageResult, parent_run, run_stage


class GenerateGridConfig(StrictModel):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    name: str = Field("grid", description="Grid name: prefix of each cell's corpus name.")
    base: dict[str, Any] = Field(
        default_factory=dict, description="GenerateConfig every cell starts from."
    )
    grid: GridAxes = Field(
        default_factory=dict,
        description="Dotted generate keys → a list of values, or label → value; one corpus per "
        "cell of their product (synthdiv.grid).",
    )

    @field_validator("grid")
    @classmethod
    def _axes(cls, value: GridAxes) -> GridAxes:
        return check_grid(value)

    @model_validator(mode="after")
    def _cells_valid(self) -> GenerateGridConfig:
        if "runtime" in self.base:
            raise ValueError("base: set runtime at the top level of a grid config, not in base")
        grid_cells(self)  # every cell must validate before any of them runs
        return self


@dataclass(frozen=True)
class GenerateCell:
    name: str
    config: GenerateConfig
    lineage: dict[str, str]


def grid_cells(cfg: GenerateGridConfig) -> list[GenerateCell]:
    cells = []
    for cell in expand_grid(cfg.grid) or [None]:
        label = cell.label if cell else "base"
        data = deep_merge(cfg.base, cell.overrides if cell else {})
        data |= {"runtime": cfg.runtime.model_dump(), "name": f"{cfg.name}/{label}"}
        config = parse_config(data, GenerateConfig, f"grid cell {label}")
        lineage = {"grid": cfg.name, **(cell.axes if cell else {}), "cell": label}
        cells.append(GenerateCell(label, config, lineage))
    return cells


class GenerateGridStage(BaseStage):
    """The parent run of a grid: each cell's generate stage runs as its child."""

    name: ClassVar[str] = "generate_grid"

    def run_all(self) -> dict[str, StageResult]:
        """Every cell, sequentially (each already fans out over the backend)."""
        cells = grid_cells(self.config)
        stages = [GenerateStage(c.config, lineage=c.lineage, progress=self.progress) for c in cells]
        results: dict[str, StageResult] = {}
        with parent_run(self) as parent:
            parent.log_params({"grid.cells": [c.name for c in cells]})
            for cell, stage in zip(cells, stages, strict=True):
                results[cell.name] = run_stage(stage, parent=parent)
                self.progress("grid cells", len(results), len(cells))
            parent.log_metrics({"grid.cells_done": float(len(results))})
        return results


def run_grid(cfg: GenerateGridConfig, progress: ProgressFn = no_progress) -> dict[str, StageResult]:
    return GenerateGridStage(cfg, progress).run_all()
