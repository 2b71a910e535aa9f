"""Typed config of the eval stage: which model, which tasks, how, and which lineage to record."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from synthdiv.config import RuntimeConfig, StrictModel


class ModelConfig(StrictModel):
    """The model under evaluation: a Hugging Face directory (local, s3://…) or a hub id."""

    path: str = Field(
        ...,
        description="HF checkpoint dir (config + weights + tokenizer), an fsspec URI of one "
        "(s3://…, copied to a local cache first), a hub id, or 'smollm2-135m-instruct' for the "
        "packaged model.",
    )
    tokenizer: str | None = Field(
        None,
        description="Tokenizer dir or id when the checkpoint has none (e.g. the one used for "
        "training). None = the checkpoint's own; a checkpoint without one is an error.",
    )
    dtype: str = Field(
        "auto", description="torch dtype; 'auto' = float32 on CPU, the checkpoint's on GPU."
    )
    device: str = Field(
        "cpu",
        description="'cpu', 'cuda', 'cuda:0', … (lm-eval defaults to CUDA). "
        "On cuda the harness runs as a Ray task that requests `num_gpus`, so it "
        "lands where the GPUs are, not on a GPU-less head or driver.",
    )
    num_gpus: float = Field(1.0, gt=0, description="GPUs the eval task requests when on cuda.")
    batch_size: int = Field(16, ge=1)
    max_length: int | None = Field(None, gt=0, description="Context cap; None = model config.")


class Paper8Data(StrictModel):
    """Where the paper's eight benchmark datasets come from (never downloaded in offline mode)."""

    source: Literal["hub", "hf_cache", "mirror"] = Field(
        "hf_cache",
        description="hub: download as lm-eval does (needs network). hf_cache: a pre-populated "
        "Hugging Face datasets cache (e.g. a PVC), read offline. mirror: a directory holding a "
        "local copy of each dataset repo under its hub id (<dir>/allenai/ai2_arc, …).",
    )
    dir: str | None = Field(
        None,
        description="hf_cache: the HF_DATASETS_CACHE dir (None = the environment's); "
        "mirror: the root holding the dataset repos.",
    )

    @model_validator(mode="after")
    def _mirror_needs_dir(self) -> Paper8Data:
        if self.source == "mirror" and not self.dir:
            raise ValueError("paper8_data.source 'mirror' needs paper8_data.dir")
        return self


class Lineage(StrictModel):
    """Tags linking this eval to what produced the model (set by studies, optional by hand)."""

    checkpoint_run_id: str | None = Field(None, description="MLflow run that trained the model.")
    dataset_digest: str | None = Field(
        None, description="Digest of the synthetic corpus the model was trained on (join key)."
    )
    model_size: str | None = Field(None, description="Size label, e.g. tiny, 350M, 1.4B.")
    variant: Literal["base", "sft"] | None = Field(None, description="Pre-trained or fine-tuned.")
    corpus_name: str | None = None


class EvalConfig(StrictModel):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    model: ModelConfig
    suite: Literal["local", "paper8"] | None = Field(
        "local",
        description="local: the offline tasks shipped with synthdiv. paper8: ARC-C, ARC-E, "
        "HellaSwag, BoolQ, SIQA, WinoGrande, PIQA, COPA (needs their data). None: only task_dirs.",
    )
    task_dirs: list[str] = Field(
        default_factory=list,
        description=(
            "Extra directories of task YAML + JSONL (the local format); all their tasks run."
        ),
    )
    tasks: list[str] | None = Field(
        None, description="Run only these task names (from the suite and task_dirs)."
    )
    paper8_data: Paper8Data = Field(default_factory=Paper8Data)
    limit: int | None = Field(
        None, gt=0, description="Questions per task, for quick runs (first N rows). None = all."
    )
    num_fewshot: int = Field(0, ge=0, description="The paper evaluates zero-shot.")
    system_instruction: str | None = Field(
        None, description="System prompt (use the one the SFT model was fine-tuned with)."
    )
    apply_chat_template: bool = Field(
        False, description="Wrap prompts in the tokenizer's chat template (SFT models)."
    )
    bootstrap_iters: int = Field(
        1000, ge=0, description="lm-eval's bootstrap for stderr of non-mean metrics."
    )
    seed: int = 1234
    lineage: Lineage = Field(default_factory=Lineage)

    @model_validator(mode="after")
    def _has_tasks(self) -> EvalConfig:
        if self.suite is None and not self.task_dirs:
            raise ValueError("nothing to evaluate: set suite or task_dirs")
        return self
