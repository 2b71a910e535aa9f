"""Studies: the paper's experiment loop (generate → score → mix → pretrain → SFT → eval per
corpus, then correlate) as one config. :mod:`.config` validates and plans it, :mod:`.steps` runs
one corpus's branch, :mod:`.run` runs the whole study under one parent MLflow run."""

from synthdiv.study.config import CorpusPlan, CorpusVariant, StudyConfig, plan_study
from synthdiv.study.run import StudyStage, run_study

__all__ = ["CorpusPlan", "CorpusVariant", "StudyConfig", "StudyStage", "plan_study", "run_study"]
