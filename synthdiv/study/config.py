"""A whole study from one config: generate → score → (mix) → pretrain → sft → eval → correlate.

Every stage config is built and validated before anything runs, so a study whose parts conflict
fails in seconds, not hours. The study is one parent MLflow run; each stage is a child run whose
identity is its config digest, so a rerun of a crashed study reuses every finished stage
(``run_stage(reuse=True)``) and continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from synthdiv.config import (
    ConfigError,
    CorpusConfig,
    RuntimeConfig,
    StrictModel,
    deep_merge,
)
from synthdiv.grid import GridAxes, check_grid, expand_grid


class CorpusVariant(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    generate: dict[str, Any] = Field(default_factory=dict, description="Overrides of `generate`.")
    mix: dict[str, Any] = Field(default_factory=dict, description="Overrides of `mix`.")
    path: str | None = Field(
        None,
        description="An external corpus instead of a generated one (JSONL/Parquet file, shard "
        "directory or s3://; e.g. a real-only baseline or a public synthetic set): it skips "
        "generate and is scored, mixed and trained like the others.",
    )

    @model_validator(mode="after")
    def _external_or_generated(self) -> CorpusVariant:
        if self.path is not None and self.generate:
            raise ValueError(
                f"corpus {self.name}: 'path' (external) and 'generate' exclude each other"
            )
        return self


class StudyConfig(StrictModel):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    name: str = Field("study", pattern=r"^[A-Za-z0-9_.-]+$")
    generate: dict[str, Any] = Field(default_factory=dict, description="Base generate config.")
    corpora: list[CorpusVariant] = Field(default_factory=list)
    grid: GridAxes = Field(
        default_factory=dict,
        description="Dotted generate keys → a list of values, or label → value; their product "
        "adds one corpus per cell (synthdiv.grid).",
    )
    score: dict[str, Any] = Field(default_factory=dict, description="Score config (no corpus).")
    real_data: CorpusConfig | None = Field(None, description="Real corpus mixed with each one.")
    mix: dict[str, Any] = Field(default_factory=dict, description="Mix config (with real_data).")
    model_sizes: list[str] = Field(default_factory=lambda: ["tiny"], min_length=1)
    pretrain: dict[str, Any] = Field(default_factory=dict, description="Pretrain config (no data).")
    pretrain_by_size: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Model size → overrides of `pretrain` for that size "
        "(its batch, token budget, parallelism): a 1b model does not inherit 350m's recipe.",
    )
    sft: dict[str, Any] | None = Field(default_factory=dict, description="None skips SFT.")
    sft_by_size: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Model size → overrides of `sft` for that size."
    )
    eval: dict[str, Any] = Field(default_factory=dict, description="Eval config (no model).")
    correlate: dict[str, Any] = Field(default_factory=dict)
    _plans: list[CorpusPlan] = PrivateAttr(default_factory=list)

    @property
    def plans(self) -> list[CorpusPlan]:
        """Every corpus's validated stage configs, built once when the config loaded."""
        return self._plans

    @field_validator("grid")
    @classmethod
    def _axes(cls, value: GridAxes) -> GridAxes:
        return check_grid(value)

    @model_validator(mode="after")
    def _expand_grid(self) -> StudyConfig:
        for cell in expand_grid(self.grid):
            self.corpora.append(CorpusVariant(name=cell.label, generate=cell.overrides))
        self.grid = {}
        for by_size in ("pretrain_by_size", "sft_by_size"):
            unknown = sorted(set(getattr(self, by_size)) - set(self.model_sizes))
            if unknown:
                raise ValueError(
                    f"{by_size} names sizes not in model_sizes {self.model_sizes}: {unknown}"
                )
        names = [c.name for c in self.corpora]
        if len(names) < 2:
            raise ValueError("a study needs at least two corpora (corpora: or grid:) to correlate")
        if len(set(names)) != len(names):
            raise ValueError(f"corpus names must be unique: {names}")
        # every stage config, built and validated now (not days into the study) and kept
        self._plans = plan_study(self)
        return self


@dataclass
class CorpusPlan:
    """The validated stage configs of one corpus's branch of the study DAG."""

    variant: CorpusVariant
    generate: Any  # None for an external corpus (``corpora[].path``)
    score: Any
    pretrain: dict[str, Any] = field(default_factory=dict)  # size → PretrainConfig (data pending)
    sft: dict[str, Any] = field(default_factory=dict)  # size → SftConfig (base model pending)

    @property
    def name(self) -> str:
        return self.variant.name


def _validated(model: type, data: dict[str, Any], block: str, where: str) -> Any:
    """``data`` as ``model``; errors name their key inside the study's ``block`` and, for blocks
    built per corpus or size, ``where`` (``corpus a, size tiny``)."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join([block, *(str(p) for p in e["loc"])])
            problems.append(f"{key} ({where}): {e['msg'].removeprefix('Value error, ')}")
        raise ValueError("\n  ".join(problems)) from None


PENDING = "pending://"  # an input produced by an earlier stage, filled in at run time


def plan_study(cfg: StudyConfig) -> list[CorpusPlan]:
    """Build and validate every stage config of the study before running anything."""
    from synthdiv.score import ScoreConfig
    from synthdiv.train.config import PretrainConfig, SftConfig

    child_runtime = cfg.runtime.model_copy(update={"job_id": None})
    rt = child_runtime.model_dump()
    root = f"{cfg.runtime.storage_uri.rstrip('/')}/{cfg.name}"
    plans = []
    for variant in cfg.corpora:
        gen_cfg = None if variant.path else _generate_config(cfg, variant, root, rt)
        score = cfg.score | {
            "runtime": rt,
            "name": variant.name,
            "corpus": {"path": variant.path or gen_cfg.output.path},
        }
        plan = CorpusPlan(
            variant, gen_cfg, _validated(ScoreConfig, score, "score", f"corpus {variant.name}")
        )
        if cfg.real_data is not None:
            mix_config(cfg, variant, PENDING + "corpus", rt)
        for size in cfg.model_sizes:
            recipe = deep_merge(cfg.pretrain, cfg.pretrain_by_size.get(size, {}))
            pre = deep_merge(recipe, {"model": {"preset": size}}) | {"runtime": rt}
            pre["data"] = deep_merge(
                recipe.get("data", {}), {"corpora": [{"corpus": {"path": PENDING + "corpus"}}]}
            )
            plan.pretrain[size] = _validated(
                PretrainConfig, pre, "pretrain", f"corpus {variant.name}, size {size}"
            )
            if cfg.sft is not None:
                sft = deep_merge(cfg.sft, cfg.sft_by_size.get(size, {})) | {
                    "runtime": rt,
                    "base_model": PENDING + "model",
                }
                plan.sft[size] = _validated(
                    SftConfig, sft, "sft", f"corpus {variant.name}, size {size}"
                )
        plans.append(plan)
    _validate_eval(cfg, rt)
    return plans


def _generate_config(cfg: StudyConfig, variant: CorpusVariant, root: str, rt: dict) -> Any:
    from synthdiv.generate.config import GenerateConfig

    gen = deep_merge(cfg.generate, variant.generate)
    # Content-addressed: variants with the same generation knobs share one corpus on storage.
    key = hashlib.sha256(json.dumps(gen, sort_keys=True, default=str).encode()).hexdigest()[:12]
    gen = deep_merge(gen, {"output": {"path": f"{root}/corpora/{key}"}})
    gen |= {"runtime": rt, "name": variant.name}
    return _validated(GenerateConfig, gen, "generate", f"corpus {variant.name}")


def mix_config(
    cfg: StudyConfig, variant: CorpusVariant, synthetic_uri: str, rt: dict[str, Any]
) -> Any:
    """The mixture of the study's real data with one synthetic corpus (study.mix + the corpus's
    own mix overrides, e.g. its real:synthetic weights)."""
    from synthdiv.generate.mix import MixConfig

    assert cfg.real_data is not None
    name = variant.name
    mix = deep_merge(cfg.mix, variant.mix)
    weights = mix.pop("weights", {"real": 1.0, "synthetic": 1.0})
    if set(weights) != {"real", "synthetic"}:
        raise ConfigError(
            f"study mix.weights needs exactly 'real' and 'synthetic', got {sorted(weights)}"
        )
    sources = [
        {"name": "real", "corpus": cfg.real_data.model_dump(), "weight": weights["real"]},
        {"name": "synthetic", "corpus": {"path": synthetic_uri}, "weight": weights["synthetic"]},
    ]
    root = f"{cfg.runtime.storage_uri.rstrip('/')}/{cfg.name}/mixtures/{name}"
    data = deep_merge(mix, {"output": {"path": root}}) | {
        "runtime": rt,
        "name": name,
        "sources": sources,
    }
    return _validated(MixConfig, data, "mix", f"corpus {name}")


def correlate_config_data(cfg: StudyConfig, rt: Any, parent_run_id: str) -> dict[str, Any]:
    """The correlate block of the study, pointed at the study's runs."""
    return cfg.correlate | {
        "runtime": rt,
        "study": cfg.runtime.experiment,
        "parent_run_id": parent_run_id,
    }


def _validate_eval(cfg: StudyConfig, rt: dict[str, Any]) -> None:
    from synthdiv.evaluate.config import EvalConfig
    from synthdiv.evaluate.correlate import CorrelateConfig

    _validated(CorrelateConfig, correlate_config_data(cfg, rt, "pending"), "correlate", "study")
    _validated(EvalConfig, eval_config_data(cfg, rt, PENDING + "model", {}), "eval", "every model")


def eval_config_data(
    cfg: StudyConfig, rt: dict[str, Any], model_path: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """The eval block of the study for one model (deep-merged: model settings are kept)."""
    return deep_merge(deep_merge(cfg.eval, extra), {"runtime": rt, "model": {"path": model_path}})
