"""Parameters of the LLM cluster-agent metric (docs/method.md §1).

Defaults are CPU-small so the quickstart finishes in minutes on the packaged SmolLM2; the paper's
settings are ``preset: paper`` (:data:`PRESETS`); fields given beside a preset override it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from synthdiv.config import LLMConfig, StrictModel

MAX_NAME_CHARS = 40  # a criterion's name: a short slug


def slugify(name: str) -> str:
    """Normalised criterion name: lower snake_case, so 'Subject Domain' and 'subject-domain'
    merge."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return slug[:MAX_NAME_CHARS].rstrip("_")


# The paper's settings (Table 10 row "default"); k is not stated, its example keeps 4. Its judge
# had a 4096-token context: at K = 10 that leaves each sample ~300-360 characters (the budget and
# the share of truncated samples are logged with every score).
PAPER_DEFAULTS = {"J": 5, "M": 100, "K": 10, "N": 5000, "k": 4, "n_seeds": 10}
PRESETS: dict[str, dict[str, Any]] = {
    "paper": PAPER_DEFAULTS | {"llm": {"context_length": 4096}},
    # a smoke run: a handful of calls per stage; one seed gets the bootstrap-over-iterations CI
    "quick": {"J": 3, "M": 2, "K": 5, "N": 10, "k": 2, "n_seeds": 1},
}

# A conservative characters-per-token ratio for budgeting prompts without a tokenizer: English
# prose runs ~4 chars/token; code, numbers and non-English text run lower.
CHARS_PER_TOKEN = 3.0


class TokenBudgets(StrictModel):
    """``max_tokens`` of each call kind. Clustering answers grow with K and the criteria count."""

    criteria: int = Field(1600, gt=0)  # up to 10 definitions of max_definition_chars
    merge: int = Field(700, gt=0)
    guidance: int = Field(120, gt=0)
    clustering: int = Field(1800, gt=0)
    verification: int = Field(700, gt=0)


class CriterionSpec(StrictModel):
    name: str = Field(min_length=1, max_length=40, description="Short name, e.g. 'domain'.")
    definition: str = Field(
        min_length=1, description="What it means; for a metric, the 1-5 rubric the judge applies."
    )


class UserCriteria(StrictModel):
    """Criteria written by the user instead of Stage A (names must differ once normalised)."""

    metadata: list[CriterionSpec] = Field(default_factory=list, description="Labelled attributes.")
    metrics: list[CriterionSpec] = Field(default_factory=list, description="Scored 1-5.")

    @model_validator(mode="after")
    def _usable(self) -> UserCriteria:
        names = [slugify(c.name) for c in self.metadata + self.metrics]
        if not names:
            raise ValueError("criteria: give at least one metadata or metric item")
        if "" in names or len(set(names)) != len(names):
            raise ValueError(f"criteria: names must be non-empty and distinct, got {names}")
        return self


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` on top; nested blocks (``llm``) merge key by key, so a preset's
    context length survives an explicit ``llm: {backend: openai}``."""
    out = dict(base)
    for key, value in override.items():
        if hasattr(value, "model_dump"):  # an already-built block: its explicitly set fields
            value = value.model_dump(exclude_unset=True)
        out[key] = merged(out[key], value) if isinstance(out.get(key), dict) else value
    return out


class ClusterAgentParams(StrictModel):
    """Everything that determines a cluster-agent score (the LLM block included)."""

    llm: LLMConfig = Field(default_factory=LLMConfig)
    J: int = Field(3, ge=1, description="Samples shown per criteria call (paper: 5).")
    M: int = Field(4, ge=1, description="Criteria rounds (paper: 100).")
    K: int = Field(5, ge=2, description="Samples per clustering call (paper: 10).")
    N: int = Field(20, ge=1, description="Clustering iterations (paper: 5000).")
    k: int = Field(
        3, ge=1, description="Refined metadata and metrics kept each (paper example: 4)."
    )
    seed: int = Field(0, description="Offset added to the caller's seed (MetricContext.seed).")
    n_seeds: int = Field(1, ge=1, description="Repeats with consecutive seeds (paper: 10).")
    # -- presets and user-supplied criteria (issue 16 item 6) --
    preset: Literal["paper", "quick"] | None = Field(
        None,
        description="Named settings applied under the fields given beside it: 'paper' (J=5, "
        "M=100, K=10, N=5000, k=4, n_seeds=10, llm.context_length=4096) or 'quick' (J=3, M=2, "
        "K=5, N=10, k=2, n_seeds=1). The resolved values are what gets logged.",
    )
    criteria: UserCriteria | None = Field(
        None,
        description="Criteria given by the user (the paper's 'manually defined criteria' "
        "ablation): Stage A is skipped and the clusterer uses these as written.",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") not in PRESETS:
            return data  # no preset, or an unknown name the field's own check reports
        return merged(PRESETS[data["preset"]], data)

    @model_validator(mode="after")
    def _criteria_consistent(self) -> ClusterAgentParams:
        if self.criteria is not None and not self.generate_criteria:
            raise ValueError(
                "criteria are given but generate_criteria is false (the 'no criteria' ablation):"
                " drop one of the two"
            )
        return self

    temperature: float = Field(
        0.0,
        ge=0.0,
        le=2.0,
        description="Decoding temperature of every call (overrides llm.temperature).",
    )
    invalid_cluster_rule: Literal["split", "drop"] = Field(
        "split",
        description="What a cluster the verifier rejects becomes: "
        "'split' = singletons (n_i stays K), "
        "'drop' = removed with its samples (n_i shrinks).",
    )
    generate_criteria: bool = Field(
        True, description="Stage A on/off (the paper's 'without criteria generation' ablation)."
    )
    verify: bool = Field(True, description="Self-verification on/off (paper ablation).")
    repair_partitions: bool = Field(
        False,
        description="After the retries, repair a still-invalid partition (first occurrence of "
        "each index kept, missing ones become singletons) instead of failing the iteration. "
        "Counted per iteration; off = the paper-faithful validate-and-retry.",
    )
    max_sample_chars: int | None = Field(
        None,
        gt=0,
        description="Characters kept per sample (longer ones are truncated). None = derived from "
        "llm.context_length so the K samples of a clustering prompt fit.",
    )
    max_reason_chars: int = Field(
        160, ge=16, description="Length bound of every free-text field the LLM writes."
    )
    max_definition_chars: int = Field(
        400,
        ge=16,
        description="Length bound of a criterion's definition (Stage A): a metric's definition "
        "is its 1-5 rubric, which needs more room than a reason. v1 runs used max_reason_chars.",
    )
    max_tokens: TokenBudgets = Field(default_factory=TokenBudgets)
    prompt_version: str = Field(
        "v2",
        description="Version of the prompt templates (v2: specific criteria, neutral reviewer, "
        "documents quoted as data; v1 kept to reproduce recorded runs).",
    )

    @model_validator(mode="after")
    def _fits_context(self) -> ClusterAgentParams:
        # Fail at config time, not after Stage A has spent its calls.
        fitting = self.fitting_sample_chars()
        if fitting < 50 or (self.max_sample_chars or 0) > fitting:
            raise ValueError(
                f"K={self.K} samples of {self.sample_char_budget()} chars do not fit "
                f"llm.context_length={self.llm.context_length} with max_tokens.clustering="
                f"{self.max_tokens.clustering}: lower K, max_sample_chars or the token budget, "
                "or raise llm.context_length"
            )
        return self

    def fitting_sample_chars(self) -> int:
        """Most characters per sample such that instructions + criteria + K samples + the answer
        fit the context window (estimated without a tokenizer, conservatively)."""
        fixed = PROMPT_TOKENS.get(self.prompt_version, max(PROMPT_TOKENS.values()))
        reserved_tokens = self.max_tokens.clustering + fixed
        free_chars = (self.llm.context_length - reserved_tokens) * CHARS_PER_TOKEN
        return int(free_chars // self.K)

    def sample_char_budget(self) -> int:
        """Characters kept per sample: the explicit budget, else the largest that fits."""
        return self.max_sample_chars or self.fitting_sample_chars()


# Instructions + criteria of a clustering prompt, measured on the v1 templates with k=4 (~900
# tokens) plus headroom; used only to derive the per-sample budget.
FIXED_PROMPT_TOKENS = 1100
# v2 adds the documents-are-data instructions (~120 tokens), and each sample's <document> tags
# (~9 tokens; ~90 at K = 10) plus entity escaping. v1 keeps its reserve, so v1 runs truncate
# their samples exactly as recorded.
PROMPT_TOKENS = {"v1": FIXED_PROMPT_TOKENS, "v2": 1300}
