"""``synthdiv pretrain``: pack the mixture once, train a fresh Llama on Ray Train, log the model."""

from __future__ import annotations

import time
from typing import ClassVar

from synthdiv.stage import BaseStage, StageContext, StageResult
from synthdiv.tracking import TAG_DATASET
from synthdiv.train.data import load_tokenizer, prepare_pretrain_store
from synthdiv.train.model import count_parameters, llama_config
from synthdiv.train.store import reuse_or_build, stable_digest
from synthdiv.train.trainer import (
    absolute_output,
    layout,
    log_trained_model,
    loop_spec,
    run_training,
    steps_for,
)


class PretrainStage(BaseStage):
    name: ClassVar[str] = "pretrain"

    def prepare_data(self, data_uri: str, quarantine_dir: str) -> tuple[dict, float | None]:
        """Tokenize + pack unless a complete token store is already there (reruns skip it; a
        killed prepare resumes at the first unfinished shard). Returns the store's meta and the
        seconds the build took (None when a finished store was reused)."""
        cfg = self.config
        # How the work is spread (actors, batches, Ray or not) does not change the shards.
        what = cfg.data.model_dump(
            mode="json",
            exclude={
                "tokenize_with_ray",
                "tokenize_batch_size",
                "tokenize_actors",
                "cpus_per_tokenizer",
            },
        )
        recipe = stable_digest([what, cfg.train.schedule.seed])

        built: list[float] = []

        def build() -> None:
            started = time.perf_counter()
            prepare_pretrain_store(
                cfg.data,
                load_tokenizer(cfg.data.tokenizer),
                cfg.train.schedule.seed,
                data_uri,
                recipe,
                quarantine_dir,
            )
            built.append(time.perf_counter() - started)

        meta = reuse_or_build(data_uri, recipe, build)
        return meta, (built[0] if built else None)

    def run(self, ctx: StageContext) -> StageResult:
        cfg = self.config
        paths = layout(absolute_output(ctx))
        meta, prepare_s = self.prepare_data(paths["data"], paths["quarantine"])
        if prepare_s is not None:  # cost of reading, counting, tokenizing and packing the mixture
            selected = sum(c["selected_tokens"] for c in meta["corpora"])
            ctx.tracker.log_metrics(
                {
                    "data.prepare_seconds": prepare_s,
                    "data.tokens_per_s": selected / max(prepare_s, 1e-9),
                }
            )
        for corpus in meta["corpora"]:
            ctx.tracker.log_dataset(
                name=corpus["name"],
                digest=corpus["digest"],
                source=corpus["path"],
                n_rows=corpus["documents"],
                context="train",
            )
        ctx.tracker.set_tags({TAG_DATASET: meta["digest"]})
        ctx.tracker.log_dict(meta, "data/mixture.json")

        hf_config = llama_config(
            cfg.model,
            meta["vocab_size"],
            bos_id=meta["bos_id"],
            eos_id=meta["eos_id"],
            attention=cfg.train.scale.attention,
        )
        n_params = count_parameters(hf_config)
        total_steps = steps_for(cfg.train, meta["rows"], cfg.data.seq_len, default_epochs=1)
        ctx.tracker.log_params(
            {
                "derived.parameters": n_params,
                "derived.total_steps": total_steps,
                "derived.data_rows": meta["rows"],
                "derived.data_shards": meta["shards"],
            }
        )
        spec = loop_spec(
            self.name, paths, cfg, total_steps, hf_config, model_config_dict=hf_config.to_dict()
        )
        final = run_training(spec, ctx.tracker)
        lineage = {
            TAG_DATASET: meta["digest"],
            "synthdiv.preset": cfg.model.preset,
            **{f"synthdiv.diversity.{k}": v for k, v in cfg.diversity_scores.items()},
        }
        model = log_trained_model(
            ctx,
            spec,
            name=f"pretrain-{cfg.model.preset}",
            tags=lineage,
            params={"parameters": n_params, "steps": total_steps},
            register_as=cfg.register_as,
        )
        return StageResult(
            metrics={
                "final_loss": final.get("train/loss", float("nan")),
                "tokens_seen": final.get("tokens_seen", 0),
                "steps": total_steps,
                "parameters": n_params,
            },
            outputs={
                "model": paths["model"],
                "data": paths["data"],
                "checkpoints": paths["run_root"],
                **model,
            },
        )
