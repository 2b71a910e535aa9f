"""``synthdiv sft``: fine-tune a pretrained HF checkpoint on chat data, loss on assistant turns."""

from __future__ import annotations

from typing import ClassVar

from synthdiv.stage import BaseStage, StageContext, StageResult
from synthdiv.tracking import TAG_DATASET
from synthdiv.train.config import TokenizeOptions
from synthdiv.train.model import count_parameters
from synthdiv.train.sft_data import ChatTemplate
from synthdiv.train.sft_store import build_sft_store, finish
from synthdiv.train.store import localize, reuse_or_build, stable_digest
from synthdiv.train.trainer import (
    absolute_output,
    absolute_uri,
    layout,
    log_trained_model,
    loop_spec,
    run_training,
    steps_for,
)


class SftStage(BaseStage):
    name: ClassVar[str] = "sft"

    def _base(self):
        from transformers import AutoConfig, AutoTokenizer

        base_dir = localize(self.config.base_model)
        if not (base_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"base_model {self.config.base_model} is not a Hugging Face model directory "
                "(no config.json): point it at a pretrain run's model/ output"
            )
        return AutoConfig.from_pretrained(base_dir), AutoTokenizer.from_pretrained(base_dir)

    def prepare_data(self, data_uri: str, tokenizer) -> dict:
        cfg = self.config
        # How tokenizing is spread (Ray or not, actors, batches) does not change the store.
        what = cfg.data.model_dump(mode="json", exclude=TokenizeOptions.TOKENIZE_FIELDS)
        recipe = stable_digest([what, cfg.base_model])

        def build() -> None:
            template = ChatTemplate(tokenizer, cfg.data.template)
            template.install()  # saved with the store's tokenizer, which the export copies
            meta = build_sft_store(cfg.data, tokenizer, template, data_uri)
            if meta["conversations"] == 0:
                raise ValueError(
                    f"SFT dataset {meta['path']}: no usable conversation "
                    f"({len(meta['rejected'])} rejected)"
                )
            finish(data_uri, meta | {"recipe": recipe}, tokenizer)

        return reuse_or_build(data_uri, recipe, build)

    def run(self, ctx: StageContext) -> StageResult:
        cfg = self.config
        paths = layout(absolute_output(ctx))
        base_config, tokenizer = self._base()
        if cfg.data.seq_len > base_config.max_position_embeddings:
            raise ValueError(
                f"data.seq_len {cfg.data.seq_len} exceeds the base model's context "
                f"{base_config.max_position_embeddings}"
            )
        meta = self.prepare_data(paths["data"], tokenizer)
        ctx.tracker.log_dataset(
            name="sft",
            digest=meta["digest"],
            source=meta["path"],
            n_rows=meta["rows"],
            context="train",
        )
        ctx.tracker.set_tags({TAG_DATASET: meta["digest"], "synthdiv.base_model": cfg.base_model})
        if meta["rejected"]:
            ctx.tracker.log_table_rows(meta["rejected"], "data/rejected.jsonl")
        total_steps = steps_for(cfg.train, meta["rows"], cfg.data.seq_len, default_epochs=3)
        n_params = count_parameters(base_config)
        ctx.tracker.log_params(
            {
                "derived.total_steps": total_steps,
                "derived.data_rows": meta["rows"],
                "derived.conversations": meta["conversations"],
                "derived.rejected_rows": len(meta["rejected"]),
                # real tokens / (rows × seq_len): what packing saved is 1 - this of padding
                "derived.data_fill": round(meta["fill"], 4),
            }
        )
        spec = loop_spec(
            self.name,
            paths,
            cfg,
            total_steps,
            base_config,
            pretrained_dir=absolute_uri(cfg.base_model),
        )
        final = run_training(spec, ctx.tracker)
        model = log_trained_model(
            ctx,
            spec,
            name="sft",
            register_as=cfg.register_as,
            tags={TAG_DATASET: meta["digest"], "synthdiv.base_model": cfg.base_model},
            params={"parameters": n_params, "steps": total_steps},
        )
        return StageResult(
            metrics={
                "final_loss": final.get("train/loss", float("nan")),
                "steps": total_steps,
                "rows": meta["rows"],
                "conversations": meta["conversations"],
                "data_fill": meta["fill"],
                "rejected_rows": len(meta["rejected"]),
            },
            outputs={
                "model": paths["model"],
                "data": paths["data"],
                "checkpoints": paths["run_root"],
                **model,
            },
        )
