"""Running a study: the parent run, each corpus's branch of stages (:mod:`.steps`) as its children,
and the correlation at the end."""

from __future__ import annotations

from typing import Any, ClassVar

from synthdiv.progress import ProgressFn, no_progress
from synthdiv.stage import BaseStage, parent_run
from synthdiv.study.config import StudyConfig
from synthdiv.study.steps import StudySteps
from synthdiv.tracking import Tracker


class StudyStage(BaseStage):
    """The parent of a study: runs the DAG, each stage a child run, and correlates at the end."""

    name: ClassVar[str] = "study"

    def __init__(self, config: StudyConfig, progress: ProgressFn = no_progress):
        super().__init__(config, progress)
        self.plans = config.plans
        self._done = 0

    def total_steps(self) -> int:
        per_size = 2 + (2 if self.config.sft is not None else 0)  # pretrain, eval[, sft, eval]
        per_corpus = 2 + (1 if self.config.real_data is not None else 0)  # generate, score[, mix]
        external = sum(plan.generate is None for plan in self.plans)  # no generate step
        total = len(self.plans) * (per_corpus + len(self.config.model_sizes) * per_size) + 1
        return total - external

    def run_all(self) -> dict[str, Any]:
        with parent_run(self, run_name=self.config.name) as parent:
            parent.set_tags({"synthdiv.study": self.config.name})
            return self._run(parent)

    def _run(self, parent: Tracker) -> dict[str, Any]:
        steps = StudySteps(self.config, parent, self._step)
        summary = {plan.name: steps.corpus_branch(plan) for plan in self.plans}
        correlation = steps.correlate()
        self._step("correlate")
        return {
            "corpora": summary,
            "correlate": correlation,
            "parent_run_id": parent.run_id,
            "run_link": parent.link(),
        }

    def _step(self, label: str) -> None:
        self._done += 1
        self.progress("study", self._done, self.total_steps())


def run_study(config: StudyConfig, progress: ProgressFn = no_progress) -> dict[str, Any]:
    return StudyStage(config, progress).run_all()
