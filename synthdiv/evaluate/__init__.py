"""Zero-shot evaluation through lm-eval: offline local tasks, the paper's eight, lineage in
MLflow."""

from synthdiv.evaluate.checkpoint import CheckpointError
from synthdiv.evaluate.config import EvalConfig, Lineage, ModelConfig, Paper8Data
from synthdiv.evaluate.stage import EvalStage, evaluate_model
from synthdiv.evaluate.suites import PAPER8_METRICS, TaskSpec, task_specs
from synthdiv.evaluate.taskdata import TaskDataError

__all__ = [
    "PAPER8_METRICS",
    "CheckpointError",
    "EvalConfig",
    "EvalStage",
    "Lineage",
    "ModelConfig",
    "Paper8Data",
    "TaskDataError",
    "TaskSpec",
    "evaluate_model",
    "task_specs",
]
