"""Typed configuration shared by every stage.

Every stage config is a pydantic model derived from :class:`StrictModel`, so unknown keys and wrong
types fail at load time with the offending key and file named. Blocks shared by several stages
(``runtime``, ``llm``, ``corpus``) live here; stage-specific configs live beside their stage.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthdiv.errors import SynthdivError

M = TypeVar("M", bound=BaseModel)


class ConfigError(SynthdivError, ValueError):
    """A config file that cannot be used; the message names the file and the key."""


class StrictModel(BaseModel):
    """Base for every config block: unknown keys are errors, defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class RuntimeConfig(StrictModel):
    """Where a stage runs and records. The only block that differs between laptop and cluster."""

    ray_address: str | None = Field(
        None, description="Ray cluster address ('auto', 'ray://…'); None starts a local Ray."
    )
    num_cpus: int | None = Field(
        None,
        description="Logical CPUs for a local Ray. None = max(8, cores): actor pools with "
        "fractional CPUs need headroom on small machines.",
    )
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; None = sqlite store in ./.synthdiv/mlflow.db."
    )
    experiment: str = Field("synthdiv", description="MLflow experiment (one per study).")
    storage_uri: str = Field(
        "./synthdiv_runs", description="Root for stage outputs (local path or s3://bucket/prefix)."
    )
    job_id: str | None = Field(
        None, description="Stable id of this job; None = derived from the config digest."
    )


class LLMConfig(StrictModel):
    """Which chat model answers, and how. Callers never pick a backend; the config does."""

    backend: Literal["embedded", "vllm", "openai"] = "embedded"
    model: str | None = Field(
        None,
        description="Model id or path. embedded: GGUF path (None = packaged SmolLM2-135M); "
        "vllm: HF id or local dir; openai: served model name.",
    )
    base_url: str | None = Field(None, description="openai backend: e.g. http://host:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="Env var holding the API key.")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(512, gt=0)
    max_retries: int = Field(3, ge=0, description="Extra attempts after an invalid answer.")
    timeout_s: float = Field(120.0, gt=0)
    concurrency: int = Field(1, ge=1, description="Parallel engines / HTTP workers.")
    batch_size: int = Field(8, ge=1)
    context_length: int = Field(4096, gt=0)
    cache_dir: str | None = Field(
        None, description="Response cache; None = <storage_uri>/llm_cache. '' disables it."
    )
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="vllm: extra engine kwargs (tensor_parallel_size, …)."
    )


class CorpusConfig(StrictModel):
    """A corpus to read: JSONL or Parquet, a file, a directory of shards, or an s3:// URI."""

    path: str
    format: Literal["auto", "jsonl", "parquet"] = "auto"
    text_field: str = "text"
    id_field: str = "id"
    max_chars: int = Field(200_000, gt=0, description="Longer documents are quarantined.")
    limit: int | None = Field(None, gt=0, description="Read at most this many valid documents.")
    quarantine_path: str | None = Field(
        None, description="Where rejected rows go; None = beside the stage output."
    )


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")  # a validator's own message says it all
        lines.append(f"  {key}: {msg}" if key else f"  {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], model: type[M], source: str = "<dict>") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_config(path: str | Path, model: type[M], overrides: dict[str, Any] | None = None) -> M:
    """Read YAML at ``path`` into ``model``; ``overrides`` are dotted keys (``runtime.job_id``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    return parse_config(data, model, str(path))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, nested dicts merged key by key (a new dict; inputs untouched)."""
    out = dict(base)
    for key, value in override.items():
        both_dicts = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = deep_merge(out[key], value) if both_dicts else value
    return out


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def resolved_dict(cfg: BaseModel) -> dict[str, Any]:
    """The config with every default filled in: what was actually run."""
    return cfg.model_dump(mode="json")


def resolved_yaml(cfg: BaseModel) -> str:
    return yaml.safe_dump(resolved_dict(cfg), sort_keys=False)


def config_digest(cfg: BaseModel, exclude: set[str] | None = None) -> str:
    """Content hash of what determines the outputs. Excluded by default: ``runtime`` (moving a
    job from a laptop to a cluster must not change its identity) and the config class's
    ``IDENTITY_EXCLUDE``, dotted paths of settings that do not change the result (how many
    workers, how often to checkpoint): a rerun with other values resumes the same job."""
    data = resolved_dict(cfg)
    default = {"runtime", *getattr(cfg, "IDENTITY_EXCLUDE", ())}
    for key in exclude if exclude is not None else default:
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict → dotted keys, for MLflow params."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out
