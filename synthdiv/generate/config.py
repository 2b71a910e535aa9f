"""Typed knobs of ``synthdiv generate`` (docs/method.md §3): 𝒯 topics × 𝒢 generations per topic, the
prompt family, style/persona weights, one generator or a weighted mix, seed, output layout."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from synthdiv.config import LLMConfig, RuntimeConfig, StrictModel
from synthdiv.generate.quality import QualityConfig

STYLES = ("textbook_narrative", "textbook_academic", "blog_post", "how_to_tutorial")


def _check_weights(weights: dict[str, float], what: str) -> dict[str, float]:
    bad = {k: v for k, v in weights.items() if not v >= 0}
    if bad:
        raise ValueError(f"{what} weights must be >= 0, got {bad}")
    if weights and sum(weights.values()) <= 0:
        raise ValueError(f"{what} weights sum to 0")
    return weights


class WeightedGenerator(StrictModel):
    """One generator model in a mix; its share of the samples is weight / sum(weights)."""

    name: str | None = Field(None, description="Label in meta and MLflow; default: backend:model.")
    weight: float = Field(1.0, gt=0)
    llm: LLMConfig = Field(default_factory=lambda: LLMConfig(max_tokens=1024))

    @property
    def label(self) -> str:
        return self.name or f"{self.llm.backend}:{self.llm.model or 'smollm2-135m-instruct'}"


class OutputConfig(StrictModel):
    path: str | None = Field(None, description="Corpus directory; None = <stage output>/corpus.")
    format: Literal["jsonl", "parquet"] = "jsonl"
    shard_size: int = Field(64, gt=0, description="Samples per shard (the unit of resume).")


class DedupConfig(StrictModel):
    num_perm: int = Field(128, ge=16, description="MinHash permutations.")
    threshold: float = Field(
        0.8, gt=0, lt=1, description="Jaccard similarity for a near-duplicate."
    )
    shingle_words: int = Field(5, ge=1, description="Word n-gram size of the shingles.")
    filter: Literal["none", "exact", "near"] = Field(
        "none", description="Drop duplicates from the corpus (near also drops exact)."
    )


class GenerateConfig(StrictModel):
    IDENTITY_EXCLUDE: ClassVar[frozenset[str]] = frozenset({"name"})  # a label, as for scores
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    name: str | None = Field(None, description="Corpus name in MLflow; default: the job id.")
    taxonomy: str | None = Field(
        None, description="Topic file (JSONL/YAML); None = starter taxonomy."
    )
    n_topics: int = Field(16, gt=0, description="𝒯: topics sampled from the taxonomy.")
    generations_per_topic: int = Field(4, gt=0, description="𝒢: samples per topic.")
    family: str = Field("topic_style", description="Prompt family (see synthdiv/prompts/generate).")
    prompt_version: int | None = Field(None, description="None = the family's latest version.")
    prompt_dir: str | None = Field(None, description="Extra directory of user prompt templates.")
    style_weights: dict[str, float] = Field(default_factory=lambda: {s: 1.0 for s in STYLES})
    personas: str | None = Field(None, description="Persona YAML; None = the shipped list.")
    persona_weights: dict[str, float] = Field(
        default_factory=dict, description="persona → weight; unlisted personas weigh 1."
    )
    personas_per_prompt: int = Field(5, gt=0)
    topics_per_prompt: int = Field(3, ge=2, description="multi_topic: topics offered per prompt.")
    extra_topics_from: Literal["sampled", "taxonomy"] = Field(
        "sampled",
        description="multi_topic: draw a prompt's extra topics from the 𝒯 sampled topics "
        "(the corpus "
        "covers exactly 𝒯 topics) or from the whole taxonomy (at a small 𝒯 sampled extras recur in "
        "most documents; at the paper's 𝒯, a sixth of the taxonomy, the two barely differ).",
    )
    generators: list[WeightedGenerator] = Field(default_factory=lambda: [WeightedGenerator()])
    max_text_chars: int | None = Field(
        800, gt=0, description="Bound on each text field in the JSON schema (None = unbounded)."
    )
    seed: int = 0
    requests_per_call: int = Field(
        256,
        gt=0,
        description="Samples sent to the runner at once (whole shards): large batches "
        "keep engines and Ray Data pipelines busy; a kill loses at most this much uncached work.",
    )
    output: OutputConfig = Field(default_factory=OutputConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    quality: QualityConfig = Field(
        default_factory=QualityConfig, description="Text rules a sample must pass (else retried)."
    )

    @model_validator(mode="before")
    @classmethod
    def _removed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"score_after", "score"} & set(data):
            raise ValueError(
                "'score_after' and 'score' were removed: generate only generates. Score a corpus "
                "with `synthdiv score --corpus <path>`, or chain generate → score in a study "
                "(`synthdiv run`, docs/study.md)"
            )
        return data

    @field_validator("style_weights")
    @classmethod
    def _styles(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(STYLES)
        if unknown:
            raise ValueError(f"unknown styles {sorted(unknown)}; known: {', '.join(STYLES)}")
        return _check_weights(value, "style")

    @field_validator("persona_weights")
    @classmethod
    def _persona_weights(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_weights(value, "persona")

    @model_validator(mode="after")
    def _family_and_generators(self) -> GenerateConfig:
        from synthdiv.generate.prompts import load_template

        load_template(self.family, self.prompt_version, self.prompt_dir)  # unknown → clear error
        if not self.generators:
            raise ValueError("generators: give at least one generator")
        labels = [g.label for g in self.generators]
        if len(set(labels)) != len(labels):
            raise ValueError(f"generators: labels must be unique, got {labels}")
        return self

    @property
    def n_samples(self) -> int:
        return self.n_topics * self.generations_per_topic
