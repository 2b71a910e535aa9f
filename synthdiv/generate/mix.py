"""``synthdiv mix``: a training mixture of real and synthetic corpora by effective token counts.

The paper up-weights synthetic data to a target number of *effective* tokens: a source with
T tokens and target E is repeated ⌊E/T⌋ times in full, plus a seeded random subset of its
documents covering the remaining E mod T tokens (so E < T subsamples it). Every output document
carries ``meta.source`` and ``meta.repeat``; the manifest records tokens per source.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from synthdiv.config import CorpusConfig, RuntimeConfig, StrictModel
from synthdiv.generate.config import OutputConfig
from synthdiv.shards import filesystem
from synthdiv.stage import BaseStage, StageContext, StageResult

_WORDS = re.compile(r"\S+")


class MixSource(StrictModel):
    name: str = Field(..., min_length=1, description="Label in meta.source and the manifest.")
    corpus: CorpusConfig
    target_tokens: int | None = Field(None, gt=0, description="Effective tokens of this source.")
    weight: float | None = Field(
        None, gt=0, description="Share of total_tokens (instead of a target)."
    )


class MixConfig(StrictModel):
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    name: str | None = None
    sources: list[MixSource] = Field(..., min_length=1)
    total_tokens: int | None = Field(None, gt=0, description="With per-source weights.")
    tokenizer: Literal["whitespace", "smollm2"] = Field(
        "whitespace", description="How tokens are counted: words, or the SmolLM2 tokenizer."
    )
    seed: int = 0
    output: OutputConfig = Field(default_factory=lambda: OutputConfig(shard_size=10_000))

    @model_validator(mode="after")
    def _targets(self) -> MixConfig:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"sources: names must be unique, got {names}")
        by_target = [s.target_tokens is not None for s in self.sources]
        by_weight = [s.weight is not None for s in self.sources]
        if all(by_target) and not any(by_weight) and self.total_tokens is None:
            return self
        if all(by_weight) and not any(by_target) and self.total_tokens is not None:
            return self
        raise ValueError(
            "give every source a target_tokens, or give every source a weight and set "
            "total_tokens (not a mix of both)"
        )

    def targets(self) -> dict[str, int]:
        if self.total_tokens is None:
            return {s.name: int(s.target_tokens or 0) for s in self.sources}
        total_weight = sum(s.weight or 0 for s in self.sources)
        return {
            s.name: round(self.total_tokens * (s.weight or 0) / total_weight) for s in self.sources
        }


@dataclass(frozen=True)
class Selection:
    """Which documents of one source enter the mixture, and how often."""

    copies: np.ndarray  # per document: times it appears
    tokens: int  # effective tokens = Σ copies × tokens

    @property
    def repeat_factor(self) -> float:
        return float(self.copies.mean()) if len(self.copies) else 0.0


def select(token_counts: np.ndarray, target: int, seed: int) -> Selection:
    """⌊E/T⌋ full passes, then documents in seeded random order until the remainder is covered
    (overshooting by less than one document)."""
    total = int(token_counts.sum())
    if total <= 0:
        raise ValueError("source has no tokens")
    passes, remainder = divmod(target, total)
    copies = np.full(len(token_counts), passes, dtype=np.int64)
    if remainder:
        order = np.random.default_rng(seed).permutation(len(token_counts))
        cumulative = np.cumsum(token_counts[order])
        n_take = int(np.searchsorted(cumulative, remainder) + 1)
        copies[order[:n_take]] += 1
    return Selection(copies, int((copies * token_counts).sum()))


def token_counter(kind: str):
    if kind == "whitespace":
        return lambda texts: np.array([len(_WORDS.findall(t)) for t in texts], dtype=np.int64)
    from transformers import AutoTokenizer

    from synthdiv.models import smollm2_gguf_path

    gguf = smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return lambda texts: np.array([len(ids) for ids in tok(texts)["input_ids"]], dtype=np.int64)


def write_text(uri: str, text: str) -> None:
    fs, path = filesystem(uri)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path, "w") as fh:
        fh.write(text)


class MixStage(BaseStage):
    name: ClassVar[str] = "mix"
    needs_ray: ClassVar[bool] = False  # reads, counts and writes in-process

    def run(self, ctx: StageContext) -> StageResult:
        from synthdiv.corpus import read_corpus, write_corpus

        cfg = self.config
        targets = cfg.targets()
        count = token_counter(cfg.tokenizer)
        rng = np.random.default_rng(cfg.seed)
        docs: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for i, source in enumerate(cfg.sources):
            corpus, report = read_corpus(
                source.corpus, quarantine_dir=f"{ctx.output_dir}/quarantine/{source.name}"
            )
            ctx.tracker.log_dataset(
                name=source.name,
                digest=corpus.digest,
                source=source.corpus.path,
                n_rows=len(corpus),
                context="input",
            )
            tokens = count(corpus.texts)
            chosen = select(tokens, targets[source.name], seed=cfg.seed * 1000 + i)
            for j in np.flatnonzero(chosen.copies):
                for repeat in range(int(chosen.copies[j])):
                    meta = {
                        **corpus.metas[j],
                        "source": source.name,
                        "repeat": repeat,
                        "source_id": corpus.ids[j],
                    }
                    docs.append(
                        {
                            "id": f"{source.name}:{corpus.ids[j]}:{repeat}",
                            "text": corpus.texts[j],
                            "meta": meta,
                        }
                    )
            rows.append(
                {
                    "source": source.name,
                    "path": source.corpus.path,
                    "docs_in": len(corpus),
                    "rejected_rows": report.n_rejected,
                    "raw_tokens": int(tokens.sum()),
                    "target_tokens": targets[source.name],
                    "effective_tokens": chosen.tokens,
                    "docs_out": int(chosen.copies.sum()),
                    "repeat_factor": chosen.repeat_factor,
                }
            )
        order = rng.permutation(len(docs))  # interleave sources: pretraining reads in order
        out_uri = cfg.output.path or f"{ctx.output_dir}/corpus"
        manifest = write_corpus(
            (docs[k] for k in order), out_uri, cfg.output.shard_size, cfg.output.format
        )
        ctx.tracker.log_dataset(
            name=cfg.name or ctx.job_id,
            digest=manifest["digest"],
            source=out_uri,
            n_rows=manifest["n_docs"],
            context="output",
        )
        metrics = {"mix.n_docs": float(manifest["n_docs"])}
        for row in rows:
            for key in ("raw_tokens", "target_tokens", "effective_tokens", "repeat_factor"):
                metrics[f"mix.{row['source']}.{key}"] = float(row[key])
        mix_manifest = {
            "sources": rows,
            "corpus": out_uri,
            "n_docs": manifest["n_docs"],
            "digest": manifest["digest"],
            "seed": cfg.seed,
            "tokenizer": cfg.tokenizer,
        }
        write_text(f"{ctx.output_dir}/mix_manifest.json", json.dumps(mix_manifest, indent=2))
        ctx.tracker.log_dict(mix_manifest, "mix/mix_manifest.json")
        return StageResult(
            metrics=metrics,
            outputs={"corpus": out_uri},
            tables={"mix_sources": rows},
            extra={"manifest": mix_manifest},
        )


def mix_corpora(config: MixConfig) -> StageResult:
    """Build a mixture as a tracked stage; the library entry point behind ``synthdiv mix``."""
    from synthdiv.stage import run_stage

    return run_stage(MixStage(config))
