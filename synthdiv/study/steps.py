"""How one corpus's branch of a study runs, and how each stage's outputs feed the next.

Kept apart from :mod:`synthdiv.study` (config and planning) so the DAG's wiring — which output
key becomes which input field — reads in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synthdiv.evaluate.config import EvalConfig
from synthdiv.evaluate.correlate import CorrelateConfig, CorrelateStage
from synthdiv.evaluate.stage import EvalStage
from synthdiv.generate.mix import MixStage
from synthdiv.generate.pipeline import GenerateStage
from synthdiv.score import METRIC_PREFIX, ScoreStage
from synthdiv.stage import StageResult, run_stage
from synthdiv.study.config import (
    CorpusPlan,
    CorpusVariant,
    StudyConfig,
    correlate_config_data,
    eval_config_data,
    mix_config,
)
from synthdiv.tracking import Tracker
from synthdiv.train.pretrain import PretrainStage
from synthdiv.train.sft import SftStage


def diversity_values(score: StageResult) -> dict[str, float]:
    """``div.<metric>.value`` metrics of a score run → {metric: value}."""
    prefix, suffix = f"{METRIC_PREFIX}.", ".value"
    return {
        key[len(prefix) : -len(suffix)]: value
        for key, value in score.metrics.items()
        if key.startswith(prefix) and key.endswith(suffix)
    }


class StudySteps:
    def __init__(self, cfg: StudyConfig, parent: Tracker, step: Callable[[str], None]):
        self.cfg = cfg
        self.parent = parent
        self.step = step
        self.runtime = cfg.runtime.model_copy(update={"job_id": None}).model_dump()

    def _child(self, stage: Any, label: str) -> StageResult:
        result = run_stage(stage, parent=self.parent, reuse=True)
        self.step(label)
        return result

    def _corpus(self, plan: CorpusPlan) -> str:
        """The corpus of a branch: generated, or the external one at ``corpora[].path``, whose
        path the study's run records (``synthdiv.corpus.<name>.path``) beside the score run's
        ``synthdiv.corpus_source``."""
        if plan.generate is None:
            self.parent.set_tags(
                {
                    f"synthdiv.corpus.{plan.name}.origin": "external",
                    f"synthdiv.corpus.{plan.name}.path": plan.variant.path,
                }
            )
            return plan.variant.path
        generated = self._child(GenerateStage(plan.generate), f"generate {plan.name}")
        return generated.outputs["corpus"]

    def corpus_branch(self, plan: CorpusPlan) -> dict[str, Any]:
        corpus = self._corpus(plan)
        score = self._child(ScoreStage(plan.score), f"score {plan.name}")
        digest = score.outputs["dataset_digest"]
        scores = diversity_values(score)
        train_corpus = self._mixed(plan.variant, corpus)
        summary: dict[str, Any] = {
            "corpus": corpus,
            "origin": "generated" if plan.generate else "external",
            "digest": digest,
            "scores": scores,
        }
        for size, pre_cfg in plan.pretrain.items():
            data = pre_cfg.data.model_copy(deep=True)
            data.corpora[0].corpus.path = train_corpus
            pre_cfg = pre_cfg.model_copy(update={"data": data, "diversity_scores": scores})
            pretrained = self._child(PretrainStage(pre_cfg), f"pretrain {plan.name}/{size}")
            lineage = {"dataset_digest": digest, "model_size": size, "corpus_name": plan.name}
            summary[f"{size}.base"] = self._eval(pretrained, lineage | {"variant": "base"}, None)
            if size in plan.sft:
                sft_cfg = plan.sft[size].model_copy(
                    update={"base_model": pretrained.outputs["model"]}
                )
                tuned = self._child(SftStage(sft_cfg), f"sft {plan.name}/{size}")
                system = sft_cfg.data.system_prompt
                summary[f"{size}.sft"] = self._eval(
                    tuned, lineage | {"variant": "sft"}, system or ""
                )
        return summary

    def _mixed(self, variant: CorpusVariant, synthetic_uri: str) -> str:
        """The corpus pretraining reads: the synthetic one, or its mixture with real data."""
        if self.cfg.real_data is None:
            return synthetic_uri
        config = mix_config(self.cfg, variant, synthetic_uri, self.runtime)
        return self._child(MixStage(config), f"mix {variant.name}").outputs["corpus"]

    def _eval(
        self, trained: StageResult, lineage: dict[str, Any], system: str | None
    ) -> float | None:
        lineage["checkpoint_run_id"] = trained.outputs.get("mlflow_run_id")
        extra: dict[str, Any] = {}
        if system is not None:  # an SFT model is evaluated as it was fine-tuned: chat + system
            extra = {"apply_chat_template": True, "system_instruction": system or None}
        data = eval_config_data(self.cfg, self.runtime, trained.outputs["model"], extra)
        config = EvalConfig.model_validate(data | {"lineage": lineage})
        result = self._child(
            EvalStage(config), f"eval {lineage['corpus_name']}/{lineage['variant']}"
        )
        return result.metrics.get("eval.avg")

    def correlate(self) -> StageResult:
        config = CorrelateConfig.model_validate(
            correlate_config_data(self.cfg, self.runtime, self.parent.run_id)
        )
        return run_stage(CorrelateStage(config), parent=self.parent)
