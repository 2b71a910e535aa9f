"""Typed configs for pretraining and SFT (torchtitan style: nested blocks, validated up front).

Everything that cannot fit (a global batch not divisible by workers × micro batch, a sequence
longer than the model's context) fails here, before Ray starts, with the key named.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from synthdiv.config import CorpusConfig, RuntimeConfig, StrictModel, deep_merge


class ModelSpec(StrictModel):
    """One size dial (``preset``) plus optional overrides of single dimensions."""

    preset: Literal["tiny", "350m", "1b"] = "tiny"
    hidden_size: int | None = Field(None, gt=0)
    intermediate_size: int | None = Field(None, gt=0)
    num_layers: int | None = Field(None, gt=0)
    num_heads: int | None = Field(None, gt=0)
    num_kv_heads: int | None = Field(None, gt=0, description="None = num_heads (plain MHA).")
    context_length: int = Field(2048, gt=0)
    tie_embeddings: bool | None = Field(None, description="None = the preset's choice.")


class ScaleSpec(StrictModel):
    """How many workers, on what, with which parallelism. Applied by train/parallel.py."""

    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)
    threads_per_worker: int = Field(1, ge=1, description="torch intra-op threads per worker.")
    strategy: Literal["ddp", "fsdp"] = "ddp"
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto = bf16 autocast on GPU, fp32 on CPU."
    )
    compile: bool = Field(False, description="torch.compile the model (slow to start on CPU).")
    attention: Literal["sdpa", "eager"] = Field(
        "sdpa", description="sdpa = PyTorch fused/flash attention where the device has it."
    )


class OptimSpec(StrictModel):
    lr: float = Field(3e-4, gt=0, description="Peak learning rate.")
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup_steps: int | None = Field(None, ge=0, description="None = warmup_fraction × steps.")
    warmup_fraction: float = Field(0.01, ge=0, le=1)
    final_lr_fraction: float = Field(0.0, ge=0, le=1, description="LR at the end of decay.")
    grad_clip: float | None = Field(1.0, gt=0, description="Max global grad norm; None = off.")


class ScheduleSpec(StrictModel):
    """How long to train and how the global batch is reached."""

    global_batch_size: int = Field(8, ge=1, description="Sequences per optimizer step.")
    micro_batch_size: int = Field(2, ge=1, description="Sequences per worker forward pass.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps.")
    train_tokens: int | None = Field(
        None, ge=1, description="Pretrain: steps = tokens / (global batch × seq len)."
    )
    epochs: float | None = Field(None, gt=0, description="Passes over the data (SFT default 3).")
    seed: int = 0
    log_every: int | None = Field(
        None,
        ge=1,
        description="Steps between logged metric points; None = about 1000 points "
        "per run (every step in a short run, every 95th at the paper's 350m budget).",
    )


class CheckpointSpec(StrictModel):
    every_steps: int = Field(50, ge=1)
    num_to_keep: int | None = Field(2, ge=1, description="Ray CheckpointConfig(num_to_keep).")
    max_failures: int = Field(0, ge=-1, description="Ray FailureConfig: restarts from the latest.")


class FaultSpec(StrictModel):
    """Test hooks that exercise recovery paths. Each fires at most once per run."""

    fail_at_step: int | None = Field(None, ge=0, description="Kill a worker before this step.")
    fail_rank: int = Field(0, ge=0)
    fail_mode: Literal["raise", "exit", "abort"] = Field(
        "raise",
        description="raise = worker error; exit = the worker process exits; "
        "abort = it dies of SIGABRT, as a native crash does.",
    )
    nan_at_step: int | None = Field(None, ge=0, description="Make the loss NaN at this step.")


class CheckpointEvalSpec(StrictModel):
    """Evaluate every checkpoint while training goes on: Ray Train validation, each in its own
    Ray task (other CPUs/GPUs than the trainers'), scores logged to the run as ``val/*``."""

    eval: dict[str, Any] = Field(
        default_factory=lambda: {"suite": "local", "limit": 50},
        description="Eval config fields (suite, tasks, limit, apply_chat_template, …); the model "
        "is the checkpoint, so no 'model' or 'runtime' here.",
    )
    num_cpus: float = Field(1.0, gt=0, description="CPUs reserved by each validation task.")
    num_gpus: float = Field(0.0, ge=0)
    timeout_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _is_an_eval_config(self) -> CheckpointEvalSpec:
        from synthdiv.evaluate.config import EvalConfig

        if {"model", "runtime"} & set(self.eval):
            raise ValueError(
                "eval_checkpoints.eval: the model is the checkpoint; drop 'model'/'runtime'"
            )
        EvalConfig.model_validate(self.eval | {"model": {"path": "checkpoint"}})
        return self


class TrainBlock(StrictModel):
    """What pretraining and SFT share: optimizer, schedule, scale, checkpoints, faults."""

    optim: OptimSpec = OptimSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    scale: ScaleSpec = ScaleSpec()
    checkpoint: CheckpointSpec = CheckpointSpec()
    eval_checkpoints: CheckpointEvalSpec | None = Field(
        None, description="Evaluate each checkpoint as training proceeds (None = only at the end)."
    )
    faults: FaultSpec = FaultSpec()

    def check_batch(self) -> None:
        per_step = self.scale.num_workers * self.schedule.micro_batch_size
        if self.schedule.global_batch_size % per_step:
            raise ValueError(
                f"global_batch_size {self.schedule.global_batch_size} is not divisible by "
                f"num_workers × micro_batch_size = {self.scale.num_workers} × "
                f"{self.schedule.micro_batch_size}"
            )


class CorpusSource(StrictModel):
    """One corpus of a pretraining mixture, optionally up/down-weighted."""

    corpus: CorpusConfig
    weight: float = Field(1.0, gt=0, description="Multiplies the corpus's own token count.")
    target_tokens: int | None = Field(
        None, gt=0, description="Repeat/truncate documents to this many tokens (beats weight)."
    )
    name: str | None = Field(None, description="Label in MLflow; None = the path's basename.")


class TokenizeOptions(StrictModel):
    """How tokenizing is spread over Ray Data (none of it changes the tokens written)."""

    TOKENIZE_FIELDS: ClassVar[set[str]] = {
        "tokenize_with_ray",
        "tokenize_batch_size",
        "tokenize_actors",
        "cpus_per_tokenizer",
    }
    tokenize_with_ray: bool = Field(
        True,
        description="Tokenize and pack with Ray Data; false = the same steps in the driver "
        "process (small inputs, debugging).",
    )
    tokenize_batch_size: int = Field(256, ge=1, description="Documents per tokenizer call.")
    tokenize_actors: int = Field(2, ge=1, description="Tokenizer actors (one tokenizer each).")
    cpus_per_tokenizer: float = Field(
        0.5, gt=0, description="Fractional on purpose: whole-CPU actors starve Ray's readers."
    )


class PretrainData(TokenizeOptions):
    corpora: list[CorpusSource] = Field(min_length=1)
    tokenizer: str | None = Field(
        None, description="HF tokenizer dir/id; None = the packaged SmolLM2 tokenizer."
    )
    seq_len: int = Field(256, gt=1)
    shard_tokens: int = Field(
        50_000_000,
        gt=1,
        description="Tokens per packed output shard (~100 MB as uint16); the "
        "unit of resume and the most one packing task holds in memory.",
    )


# What does not change the trained model: where and how fast it trains, how often it is saved,
# the scores of its data (tags, for lineage) and the registry name. A rerun that changes only
# these resumes the same job instead of training a multi-day model again from step 0.
TRAIN_IDENTITY_EXCLUDE = frozenset(
    {"train.scale", "train.checkpoint", "train.eval_checkpoints", "diversity_scores", "register_as"}
)


class PretrainConfig(StrictModel):
    IDENTITY_EXCLUDE: ClassVar[frozenset[str]] = TRAIN_IDENTITY_EXCLUDE
    runtime: RuntimeConfig = RuntimeConfig()
    model: ModelSpec = ModelSpec()
    data: PretrainData
    train: TrainBlock = TrainBlock()
    diversity_scores: dict[str, float] = Field(
        default_factory=dict, description="Scores of the synthetic part; tagged on the model."
    )
    register_as: str | None = Field(None, description="Register the model under this name.")

    @model_validator(mode="after")
    def _fits(self) -> PretrainConfig:
        self.train.check_batch()
        if self.data.seq_len > self.model.context_length:
            raise ValueError(
                f"data.seq_len {self.data.seq_len} exceeds model.context_length "
                f"{self.model.context_length}"
            )
        return self


def _sft_train_defaults() -> TrainBlock:
    return TrainBlock(
        optim=OptimSpec(lr=2e-5, weight_decay=0.0, warmup_fraction=0.03),
        schedule=ScheduleSpec(epochs=3),
    )


class SftData(TokenizeOptions):
    path: str | None = Field(
        None, description="JSONL chat file or dir ({messages:[{role,content}]}); None = packaged."
    )
    seq_len: int = Field(512, gt=1, description="Longer conversations are truncated.")
    pack: bool = Field(
        True,
        description="Pack several conversations per row (best fit), attention kept within each "
        "(per-conversation position ids); false = one right-padded conversation per row.",
    )
    shard_bytes: int = Field(
        64_000_000, gt=0, description="JSONL bytes per output shard (the unit one task packs)."
    )
    system_prompt: str | None = Field(
        None, description="Inserted when a conversation has no system message."
    )
    template: Literal["auto", "chatml", "simple"] = Field(
        "auto", description="auto = the tokenizer's ChatML if it has one, else a plain template."
    )


class SftConfig(StrictModel):
    IDENTITY_EXCLUDE: ClassVar[frozenset[str]] = TRAIN_IDENTITY_EXCLUDE
    runtime: RuntimeConfig = RuntimeConfig()
    base_model: str = Field(
        description="Pretrained HF model dir (local or s3://), e.g. a pretrain run's model/ output."
    )
    data: SftData = SftData()
    train: TrainBlock = Field(default_factory=_sft_train_defaults)
    register_as: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _sft_defaults_under_user_keys(cls, data: object) -> object:
        # A partial ``train:`` block must keep SFT's optimizer defaults, not pretraining's.
        if isinstance(data, dict) and isinstance(data.get("train"), dict):
            merged = deep_merge(_sft_train_defaults().model_dump(exclude_unset=True), data["train"])
            data = {**data, "train": merged}
        return data

    @model_validator(mode="after")
    def _fits(self) -> SftConfig:
        self.train.check_batch()
        return self
